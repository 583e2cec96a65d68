"""The decision log keeps the thinking probes: why thinking stopped, how many probes, where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai import OpenAI
from sqlalchemy import create_engine, inspect, text

from router.learning import schema
from router.learning.migrations import migrate
from router.learning.store import LearningStore
from tests.learning.conftest import KEY_A, learning_config, learning_gateway

PROBED = {"budget": {"enabled": False, "max_tokens": 80, "probe": {"interval": 16}}}


@pytest.mark.parametrize("store_text", [False, True])
def test_probes_and_the_stop_point_are_logged(
    tiny_qwen3_dir: Path,
    never_close_thinking_dir: Path,
    tmp_path: Path,
    store_text: bool,
) -> None:
    url = f"sqlite:///{tmp_path / 'learning.db'}"
    config = learning_config(
        tiny_qwen3_dir, never_close_thinking_dir, url, PROBED, store_text=store_text
    )
    with learning_gateway(config) as (base_url, gateway):
        client = OpenAI(base_url=f"{base_url}/v1", api_key=KEY_A, max_retries=0)
        messages = [{"role": "user", "content": "What is 2+2?"}]
        probed = client.chat.completions.create(
            model="strong",
            messages=messages,  # type: ignore[arg-type]
            max_tokens=200,
            temperature=0,
        ).id
        opted_out = client.chat.completions.create(
            model="strong",
            messages=messages,  # type: ignore[arg-type]
            max_tokens=200,
            extra_body={"thinking_probe": False},
        ).id
        assert gateway.learning is not None and gateway.learning.writer.flush(30)
    rows = {r["request_id"]: r for r in LearningStore(url).decisions()}
    row = rows[probed]
    assert row["thinking_stop"] == "probe" and row["probes"] == 1
    assert row["reasoning_tokens"] == 16 and not row["forced_close"]
    trace = json.loads(row["probe_trace"])
    assert trace["stop"] == "probe" and trace["cap"] == 80 and trace["thinking_tokens"] == 16
    [probe] = trace["probes"]
    assert probe["at_tokens"] == 16 and probe["answered"] and probe["confidence"] > 0.99
    assert ("answer" in probe) == store_text
    other = rows[opted_out]
    assert other["thinking_stop"] == "budget" and other["probes"] is None
    assert other["probe_trace"] is None


def test_migration_adds_the_probe_columns_to_an_older_log(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine)
    with engine.begin() as conn:  # back to the schema of version 2
        for column in ("thinking_stop", "probes", "probe_trace"):
            conn.execute(text(f"ALTER TABLE decisions DROP COLUMN {column}"))
        versions = schema.schema_migrations.c.version
        conn.execute(schema.schema_migrations.delete().where(versions == 3))
    assert migrate(engine) == [3]
    columns = {c["name"] for c in inspect(engine).get_columns("decisions")}
    assert {"thinking_stop", "probes", "probe_trace"} <= columns
    assert migrate(engine) == []
