"""Shadow answers and the judge: labels in both directions, rate limit, busy tiers skipped."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from router.learning.store import LearningStore
from tests.learning.conftest import KEY_A, learning_config, learning_gateway

LONG = " ".join(["explain the proof step by step"] * 20)  # length baseline: strong


def _chat(client: httpx.Client, content: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY_A}"},
        json={"model": "auto", "messages": [{"role": "user", "content": content}], "max_tokens": 6},
    )


def _wait_labels(store: LearningStore, n: int, timeout_s: float = 120) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        labels = store.labels()
        if len(labels) >= n:
            return labels
        time.sleep(0.2)
    raise AssertionError(f"only {len(store.labels())} of {n} labels after {timeout_s}s")


def test_shadow_answers_are_judged_both_directions(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    config = learning_config(
        tiny_qwen3_dir, tiny_gemma3_dir, url, shadow_rate=1.0, shadow_max_tokens=8, store_text=True
    )
    store = LearningStore(url)
    with learning_gateway(config) as (base_url, _gateway):
        client = httpx.Client(base_url=base_url, timeout=120)
        small = _chat(client, "What is 2+2?")
        assert small.headers["x-thinkgate-route"] == "small"
        _wait_labels(store, 1)
        strong = _chat(client, LONG)
        assert strong.headers["x-thinkgate-route"] == "strong"
        labels = {label["request_id"]: label for label in _wait_labels(store, 2)}
        metrics = client.get("/metrics").text
    on_small, on_strong = labels[small.json()["id"]], labels[strong.json()["id"]]
    assert on_small["source"] == on_strong["source"] == "judge"
    assert on_small["shadow_tier"] == "strong" and on_strong["shadow_tier"] == "small"
    for label in (on_small, on_strong):
        assert label["strong_better"] in (0.0, 0.5, 1.0)
        assert label["small_ok"] == (label["strong_better"] <= 0.5)
        assert label["judge_model"] == "tiny-strong" and label["shadow_tokens"] > 0
        assert label["shadow_text"] is not None
    for tier in ("small", "strong"):
        line = f'thinkgate_learning_shadow_calls_total{{outcome="answered",tier="{tier}"}} 1.0'
        assert line in metrics
    assert 'thinkgate_learning_judge_calls_total{outcome="answered"} 4.0' in metrics
    assert 'thinkgate_learning_labels_written_total{source="judge"} 2.0' in metrics
    store.close()


def test_rate_limit_and_busy_tier_skip_the_shadow(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    config = learning_config(
        tiny_qwen3_dir, tiny_gemma3_dir, url, shadow_rate=1.0, shadow_max_per_minute=1
    )
    with learning_gateway(config) as (base_url, gateway):
        client = httpx.Client(base_url=base_url, timeout=120)
        # the strong tier is busy (its engine lock held): skipped, not queued
        with gateway.strong._lock:
            _chat(client, "hello there")
            time.sleep(0.5)
        _chat(client, "What is 3+3?")  # answered: the one shadow this minute
        store = LearningStore(url)
        _wait_labels(store, 1)
        _chat(client, "What is 4+4?")  # over the rate
        time.sleep(0.5)
        text = client.get("/metrics").text
        assert len(store.labels()) == 1
        store.close()
    assert 'thinkgate_learning_shadow_calls_total{outcome="skipped_busy",tier="strong"} 1.0' in text
    assert 'thinkgate_learning_shadow_calls_total{outcome="skipped_rate",tier="strong"} 1.0' in text
