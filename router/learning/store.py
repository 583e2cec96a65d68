"""The learning database: decision records, labels, promoted artifacts, active versions.

`LearningStore` wraps one SQLAlchemy engine (SQLite by default, PostgreSQL for several
replicas). Every method is blocking: the gateway calls them from the writer thread or
through ``asyncio.to_thread``, never on the event loop. The engine is created and the
schema migrated on first use (`connect`), so a database that is down at start only delays
the log; `reset` drops the connection pool after a failure.

Example::

    store = LearningStore(database_url(config.learning))
    store.insert_decisions([row, ...])
    store.decision("chatcmpl-...")["route"]       # "small"
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, create_engine, event, select
from sqlalchemy.exc import OperationalError

from router.config import LearningConfig
from router.learning import schema
from router.learning.migrations import migrate

KINDS = ("router", "budget", "tau")


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$THINKGATE_CACHE_DIR`` or ``~/.cache/thinkgate``."""
    env = os.environ if environ is None else environ
    base = env.get("THINKGATE_CACHE_DIR")
    return Path(base) if base else Path.home() / ".cache" / "thinkgate"


def database_url(config: LearningConfig, environ: Mapping[str, str] | None = None) -> str:
    """The URL in force: ``$<database_url_env>`` > ``database_url`` > SQLite in the cache."""
    env = os.environ if environ is None else environ
    url = env.get(config.database_url_env) or config.database_url
    if url:
        return url
    return f"sqlite:///{cache_dir(env) / 'learning.db'}"


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, creds = head.partition("://")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class LearningStore:
    """One learning database; thread-safe (SQLAlchemy's pool)."""

    def __init__(self, url: str, *, connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    # ----- connection ------------------------------------------------------------------
    def connect(self) -> Engine:
        """The engine, created and migrated on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = self._create()
            return self._engine

    def _create(self) -> Engine:
        if self.url.startswith("sqlite"):
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                self.url,
                pool_pre_ping=True,
                connect_args={"connect_timeout": max(1, round(self.connect_timeout_s))},
            )
        for attempt in range(5):
            try:
                migrate(engine)
                break
            except OperationalError:
                # another process migrating the same SQLite file; PostgreSQL locks instead
                if attempt == 4 or not self.url.startswith("sqlite"):
                    engine.dispose()
                    raise
                time.sleep(0.2 * (attempt + 1))
        return engine

    def reset(self) -> None:
        """Forget the engine after a failure; the next call reconnects (and re-migrates)."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def close(self) -> None:
        self.reset()

    # ----- decision log ----------------------------------------------------------------
    def insert_decisions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        with self.connect().begin() as conn:
            conn.execute(schema.decisions.insert(), [dict(r) for r in rows])

    def decision(self, request_id: str) -> dict[str, Any] | None:
        with self.connect().connect() as conn:
            row = conn.execute(
                select(schema.decisions).where(schema.decisions.c.request_id == request_id)
            ).first()
        return None if row is None else dict(row._mapping)

    def decisions(self, *, since: float | None = None) -> list[dict[str, Any]]:
        query = select(schema.decisions).order_by(schema.decisions.c.created_at)
        if since is not None:
            query = query.where(schema.decisions.c.created_at >= since)
        with self.connect().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def count_decisions(self) -> int:
        from sqlalchemy import func

        with self.connect().connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(schema.decisions)).scalar_one()
            )

    def count_labelled(self) -> int:
        """Requests with at least one label."""
        from sqlalchemy import distinct, func

        query = select(func.count(distinct(schema.labels.c.request_id)))
        with self.connect().connect() as conn:
            return int(conn.execute(query).scalar_one())

    # ----- labels ----------------------------------------------------------------------
    def upsert_label(self, row: Mapping[str, Any]) -> None:
        """Insert or replace the label of (request_id, source): idempotent."""
        table = schema.labels
        where = and_(table.c.request_id == row["request_id"], table.c.source == row["source"])
        with self.connect().begin() as conn:
            conn.execute(table.delete().where(where))
            conn.execute(table.insert().values(**row))

    def labels(self, request_id: str | None = None) -> list[dict[str, Any]]:
        query = select(schema.labels).order_by(schema.labels.c.created_at)
        if request_id is not None:
            query = query.where(schema.labels.c.request_id == request_id)
        with self.connect().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def labelled_records(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every decision that has at least one label, with its labels."""
        by_request: dict[str, list[dict[str, Any]]] = {}
        for label in self.labels():
            by_request.setdefault(label["request_id"], []).append(label)
        if not by_request:
            return []
        out = []
        with self.connect().connect() as conn:
            ids = list(by_request)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                query = select(schema.decisions).where(schema.decisions.c.request_id.in_(chunk))
                for row in conn.execute(query):
                    record = dict(row._mapping)
                    out.append((record, by_request[record["request_id"]]))
        out.sort(key=lambda item: item[0]["created_at"])
        return out

    # ----- artifacts and active versions -----------------------------------------------
    def put_artifact(
        self,
        version: str,
        kind: str,
        metadata: Mapping[str, Any],
        payload: bytes | None = None,
        value: float | None = None,
    ) -> None:
        """Store an artifact once (same version = same bytes; a second put is a no-op)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        table = schema.artifacts
        with self.connect().begin() as conn:
            exists = conn.execute(select(table.c.version).where(table.c.version == version))
            if exists.first() is None:
                conn.execute(
                    table.insert().values(
                        version=version,
                        kind=kind,
                        created_at=time.time(),
                        metadata_json=json.dumps(dict(metadata), sort_keys=True),
                        payload=payload,
                        value=value,
                    )
                )

    def artifact(self, version: str) -> dict[str, Any] | None:
        with self.connect().connect() as conn:
            row = conn.execute(
                select(schema.artifacts).where(schema.artifacts.c.version == version)
            ).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out["metadata"] = json.loads(out.pop("metadata_json"))
        return out

    def active_versions(self) -> dict[str, str]:
        with self.connect().connect() as conn:
            rows = conn.execute(select(schema.active.c.kind, schema.active.c.version))
            return {str(kind): str(version) for kind, version in rows}

    def activate(
        self, kind: str, version: str, *, forced: bool, detail: Mapping[str, Any]
    ) -> str | None:
        """Make ``version`` the active ``kind``; records an event; returns the previous one."""
        table = schema.active
        now = time.time()
        with self.connect().begin() as conn:
            previous = conn.execute(select(table.c.version).where(table.c.kind == kind)).scalar()
            conn.execute(table.delete().where(table.c.kind == kind))
            conn.execute(table.insert().values(kind=kind, version=version, updated_at=now))
            conn.execute(
                schema.events.insert().values(
                    created_at=now,
                    kind=kind,
                    version=version,
                    previous=previous,
                    forced=forced,
                    detail_json=json.dumps(dict(detail), sort_keys=True, default=str),
                )
            )
        return None if previous is None else str(previous)

    def events(self) -> list[dict[str, Any]]:
        with self.connect().connect() as conn:
            rows = conn.execute(select(schema.events).order_by(schema.events.c.id))
            return [dict(r._mapping) for r in rows]


def every_column(store: LearningStore) -> Iterable[tuple[str, str, Any]]:
    """(table, column, value) of every cell of every table: what a privacy test reads."""
    with store.connect().connect() as conn:
        for table in schema.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    yield table.name, str(column), value
