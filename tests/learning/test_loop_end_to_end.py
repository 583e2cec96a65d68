"""The whole loop in-process: traffic -> decision log -> judge labels -> train-router
--from-log -> promote -> every request now scored by the new router, none failing."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from classifiers.difficulty import DEFAULT_ROUTER_PATH, DifficultyRouter
from router.cli import main as thinkgate
from router.learning.artifacts import folder_version
from router.learning.store import LearningStore
from tests.learning.conftest import KEY_A, learning_config, learning_gateway

TOPICS = ["algebra", "poetry", "history", "chemistry", "cooking", "law", "music", "physics"]
PROMPTS = [
    f"{verb} {topic} {detail}"
    for verb in ("Explain", "Summarise", "Prove or refute a claim about")
    for topic in TOPICS
    for detail in ("briefly.",)
]
HEADERS = {"Authorization": f"Bearer {KEY_A}"}


def _chat(client: httpx.Client, prompt: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        headers=HEADERS,
        json={"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 4},
    )


def _wait(predicate, timeout_s: float = 120, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_labels_retrain_promote_and_hot_reload(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path, database_url: str, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    config = learning_config(
        tiny_qwen3_dir,
        tiny_gemma3_dir,
        database_url,
        sections={"routing": {"scorer": "learned", "threshold": 0.13}},
        shadow_rate=1.0,
        shadow_max_per_minute=1000,
        shadow_max_tokens=6,
    )
    store = LearningStore(database_url)
    shipped = folder_version("router", DEFAULT_ROUTER_PATH)
    with learning_gateway(config) as (base_url, gateway):
        client = httpx.Client(base_url=base_url, timeout=120)
        assert (
            client.get("/v1/learning/status", headers=HEADERS).json()["active"]["router"] == shipped
        )
        for n, prompt in enumerate(PROMPTS, start=1):
            assert _chat(client, prompt).status_code == 200
            _wait(lambda n=n: len(store.labels()) >= n, what=f"label {n}")
        assert gateway.learning is not None and gateway.learning.writer.flush(30)
        records = store.decisions()
        assert {r["router_version"] for r in records} == {shipped}
        assert all(r["router_features"] is not None and r["prompt_text"] is None for r in records)

        out = tmp_path / "adapted"
        capsys.readouterr()
        rc = thinkgate(
            [
                "train-router",
                "--from-log",
                database_url,
                "--base",
                str(DEFAULT_ROUTER_PATH),
                "--out",
                str(out),
            ]
        )
        assert rc == 0, capsys.readouterr().err
        new_version = folder_version("router", out)
        assert new_version != shipped

        # requests keep flowing while the new router is promoted and swapped in
        failures: list[int] = []
        answered = [0]
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(base_url=base_url, timeout=120) as c:
                while not stop.is_set():
                    status = _chat(c, PROMPTS[answered[0] % len(PROMPTS)]).status_code
                    answered[0] += 1
                    if status != 200:
                        failures.append(status)

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            rc = thinkgate(["promote", str(out), "--database-url", database_url, "--force"])
            assert rc == 0, capsys.readouterr().err
            promoted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            assert promoted["version"] == new_version and promoted["previous"] is None
            _wait(
                lambda: (
                    client.get("/v1/learning/status", headers=HEADERS).json()["active"]["router"]
                    == new_version
                ),
                what="hot reload",
            )
            before = answered[0]
            _wait(lambda: answered[0] >= before + 3, what="requests after the switch")
        finally:
            stop.set()
            thread.join()
        assert failures == []
        adapted = DifficultyRouter.load(out)
        for prompt in PROMPTS[:4]:
            response = _chat(client, prompt)
            expected = float(adapted.score([prompt])[0])
            assert float(response.headers["x-thinkgate-difficulty"]) == pytest.approx(
                expected, abs=1e-4
            )
        metrics = client.get("/metrics").text
        assert (
            f'thinkgate_learning_active_version_info{{kind="router",version="{new_version}"}} 1.0'
            in metrics
        )
        assert gateway.learning.writer.flush(30)
    latest = max(store.decisions(), key=lambda r: r["created_at"])
    assert latest["router_version"] == new_version
    [event] = [e for e in store.events() if e["kind"] == "router"]
    assert event["version"] == new_version and event["forced"]
    store.close()
