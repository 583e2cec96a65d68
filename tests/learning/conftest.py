"""Fixtures of the learning tests: a database per test, SQLite and real PostgreSQL.

``database_url`` is parametrized over ``sqlite`` (a file in ``tmp_path``) and
``postgresql`` (a fresh database on one throwaway server per session, see
`tests.postgres`); the PostgreSQL cases skip, saying why, when no server can be started.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, PostgresUnavailable


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer().__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(f"cannot start a PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        server.__exit__(None, None, None)


def fresh_postgres_database(server: PostgresServer) -> str:
    """A new, empty database on ``server``; returns its URL."""
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'learning.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return fresh_postgres_database(server)


KEY_A, KEY_B = "learning-key-a", "learning-key-b"


def learning_config(  # type: ignore[no-untyped-def]
    small: Path, strong: Path, database_url: str, sections: dict | None = None, **learning: object
):
    """Tiny-model config with two API keys and the learning loop on ``database_url``; the
    strong (judge) tier gets a 2048-token context for the judge's prompt; ``sections``
    override more."""
    from router.gateway.security import hash_key
    from tests.configs import tiny_config

    settings = {"database_url": database_url, "flush_interval_s": 0.05, "poll_interval_s": 0.2}
    settings.update(learning)
    return tiny_config(
        small,
        strong,
        **{
            "security": {"api_key_hashes": [hash_key(KEY_A), hash_key(KEY_B)]},
            "learning": settings,
            "strong": {"engine": {"context_length": 2048}},
            "routing": {"threshold": 0.2},
            **(sections or {}),
        },
    )


@contextlib.contextmanager
def learning_gateway(config):  # type: ignore[no-untyped-def]
    """The in-process gateway (learning loop started), served; yields (base_url, gateway)."""
    import asyncio

    from router.gateway.app import build_local
    from tests.servers import serve_app

    gateway = build_local(config)
    asyncio.run(gateway.start())
    try:
        with serve_app(gateway.app) as base_url:
            yield base_url, gateway
    finally:
        gateway.close()
