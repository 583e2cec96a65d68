"""Schema versions of the learning database, applied in order at start.

Each step has a number, a name and a function of a connection; `migrate` applies the steps
not yet in ``schema_migrations``, in one transaction, under a lock on PostgreSQL (several
gateway replicas may start at once). A new schema change is a new step at the end; steps
already released are never edited.

Example::

    engine = create_engine("sqlite:///learning.db")
    migrate(engine)          # -> the applied versions, e.g. [1, 2]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, inspect, select, text

from router.learning import schema

_PG_LOCK_ID = 7_311_004_211
"""pg_advisory_xact_lock key of thinkgate's migrations."""


@dataclass(frozen=True)
class Step:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _create(*tables: str) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        schema.metadata.create_all(conn, tables=[schema.metadata.tables[t] for t in tables])

    return apply


def _add_columns(table: str, *names: str) -> Callable[[Connection], None]:
    """Add ``names`` (as declared in `schema`) to ``table`` where missing: a database made
    by step 1 after the columns were declared has them already."""

    def apply(conn: Connection) -> None:
        have = {c["name"] for c in inspect(conn).get_columns(table)}
        declared = schema.metadata.tables[table]
        for name in names:
            if name in have:
                continue
            column = declared.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))

    return apply


STEPS: tuple[Step, ...] = (
    Step(1, "decision log and labels", _create("decisions", "labels")),
    Step(2, "artifacts, active versions, events", _create("artifacts", "active", "events")),
    Step(
        3,
        "thinking probes in the decision log",
        _add_columns("decisions", "thinking_stop", "probes", "probe_trace"),
    ),
)
LATEST = STEPS[-1].version


def applied_versions(conn: Connection) -> list[int]:
    schema.schema_migrations.create(conn, checkfirst=True)
    rows = conn.execute(select(schema.schema_migrations.c.version)).scalars()
    return sorted(int(v) for v in rows)


def migrate(engine: Engine) -> list[int]:
    """Bring the database to the latest schema; returns the versions newly applied."""
    done: list[int] = []
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
        have = set(applied_versions(conn))
        for step in STEPS:
            if step.version in have:
                continue
            step.apply(conn)
            conn.execute(
                schema.schema_migrations.insert().values(
                    version=step.version, name=step.name, applied_at=time.time()
                )
            )
            done.append(step.version)
    return done
