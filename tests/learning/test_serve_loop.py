"""The loop on a real Ray Serve application with two gateway replicas and PostgreSQL:
traffic -> records -> judge labels -> train-router --from-log -> promote -> both replicas
serve the new router, no request failing during the switch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from classifiers.difficulty import DEFAULT_ROUTER_PATH, DifficultyRouter
from router.cli import main as thinkgate
from router.learning.artifacts import folder_version
from router.learning.store import LearningStore
from tests.learning.conftest import KEY_A, fresh_postgres_database, learning_config
from tests.postgres import PostgresServer
from tests.serve.conftest import TINY_DEPLOYMENT, ray_cluster  # noqa: F401  (fixture)
from tests.servers import free_port, wait_ready

pytestmark = [pytest.mark.serve, pytest.mark.slow]
HEADERS = {"Authorization": f"Bearer {KEY_A}"}
PROMPTS = [f"Explain {t} briefly." for t in ("algebra", "poetry", "law", "music", "physics")]


@pytest.fixture(scope="module")
def database(postgres_server: PostgresServer) -> str:
    return fresh_postgres_database(postgres_server)


@pytest.fixture(scope="module")
def base_url(
    ray_cluster: None,  # noqa: F811
    tiny_qwen3_dir: Path,
    tiny_gemma3_dir: Path,
    database: str,
) -> Iterator[str]:
    from ray import serve

    from deployments.app import build_from_config

    config = learning_config(
        tiny_qwen3_dir,
        tiny_gemma3_dir,
        database,
        sections={
            "routing": {"scorer": "learned", "threshold": 0.13},
            "small": {"deployment": dict(TINY_DEPLOYMENT)},
            "strong": {
                "engine": {"context_length": 2048},
                "deployment": dict(TINY_DEPLOYMENT),
            },
        },
        shadow_rate=1.0,
        shadow_max_per_minute=1000,
        shadow_max_tokens=4,
        poll_interval_s=0.5,
    )
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_from_config(config, ingress_replicas=2), name="thinkgate", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, timeout_s=300)
    yield url
    serve.delete("thinkgate")


def _chat(client: httpx.Client, prompt: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        headers=HEADERS,
        json={"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 4},
    )


def _until(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_loop_on_ray_serve(base_url: str, database: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store = LearningStore(database)
    client = httpx.Client(base_url=base_url, timeout=120)
    shipped = folder_version("router", DEFAULT_ROUTER_PATH)
    for round_ in range(3):
        for prompt in PROMPTS:
            assert _chat(client, f"{prompt} ({round_})").status_code == 200
            time.sleep(0.3)
    _until(lambda: len(store.labels()) >= 5, 180, "judge labels")
    _until(lambda: store.count_decisions() >= 15, 60, "decision records")
    assert {r["router_version"] for r in store.decisions()} == {shipped}

    out = tmp_path / "adapted"
    rc = thinkgate(
        [
            "train-router",
            "--from-log",
            database,
            "--base",
            str(DEFAULT_ROUTER_PATH),
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    new_version = folder_version("router", out)

    failures: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=base_url, timeout=120) as c:
            n = 0
            while not stop.is_set():
                status = _chat(c, PROMPTS[n % len(PROMPTS)]).status_code
                n += 1
                if status != 200:
                    failures.append(status)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        assert thinkgate(["promote", str(out), "--database-url", database, "--force"]) == 0

        def both_replicas_switched() -> bool:
            seen = [
                client.get("/v1/learning/status", headers=HEADERS).json()["active"]["router"]
                for _ in range(8)
            ]
            return set(seen) == {new_version}

        _until(both_replicas_switched, 120, "every replica on the new router")
    finally:
        stop.set()
        thread.join()
    assert failures == []
    adapted = DifficultyRouter.load(out)
    for prompt in PROMPTS[:3]:
        header = float(_chat(client, prompt).headers["x-thinkgate-difficulty"])
        assert header == pytest.approx(float(adapted.score([prompt])[0]), abs=1e-4)
    store.close()
