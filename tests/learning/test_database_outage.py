"""Killing the database under load: every request is answered, lost records are counted,
writing resumes by itself; a gateway restart loses no committed record."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx

from router.learning.store import LearningStore
from tests.learning.conftest import KEY_A, learning_config, learning_gateway
from tests.postgres import PostgresServer

HEADERS = {"Authorization": f"Bearer {KEY_A}"}


def _chat(client: httpx.Client, n: int) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        headers=HEADERS,
        json={
            "model": "auto",
            "messages": [{"role": "user", "content": f"q {n}"}],
            "max_tokens": 3,
        },
    )


def _counter(text: str, name: str) -> float:
    total = 0.0
    for match in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M):
        total += float(match.group(1))
    return total


def test_database_killed_under_load(tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> None:
    with PostgresServer() as pg:
        config = learning_config(tiny_qwen3_dir, tiny_gemma3_dir, pg.url, retry_interval_s=0.2)
        statuses: list[int] = []
        stop = threading.Event()
        with learning_gateway(config) as (base_url, gateway):
            assert gateway.learning is not None

            def load() -> None:
                with httpx.Client(base_url=base_url, timeout=60) as client:
                    n = 0
                    while not stop.is_set():
                        statuses.append(_chat(client, n).status_code)
                        n += 1

            threads = [threading.Thread(target=load) for _ in range(2)]
            for t in threads:
                t.start()
            try:
                time.sleep(2)
                pg.stop("immediate")  # the database dies with writes in flight
                down_at = len(statuses)
                time.sleep(3)
                assert len(statuses) > down_at + 5  # still answering while it is down
                pg.start()
                time.sleep(3)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            assert gateway.learning.writer.flush(60)
            metrics = httpx.get(f"{base_url}/metrics").text
        assert statuses and set(statuses) == {200}
        written = _counter(metrics, "thinkgate_learning_records_written_total")
        dropped = _counter(metrics, "thinkgate_learning_records_dropped_total")
        assert dropped > 0
        assert written + dropped == len(statuses)
        store = LearningStore(pg.url)
        committed = {r["request_id"] for r in store.decisions()}
        assert len(committed) == written
        newest = max(r["created_at"] for r in store.decisions())
        assert newest > time.time() - 30  # records after the outage were written

        # a restarted gateway on the same database: nothing committed is lost
        with learning_gateway(config) as (base_url, gateway):
            with httpx.Client(base_url=base_url, timeout=60) as client:
                more = [_chat(client, n).json()["id"] for n in range(3)]
            assert gateway.learning is not None and gateway.learning.writer.flush(30)
        after = {r["request_id"] for r in store.decisions()}
        assert committed | set(more) == after
        store.close()
