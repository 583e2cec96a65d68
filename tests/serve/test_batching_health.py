"""Dynamic batching and health checks of a tier replica on real local Ray Serve.

- concurrent requests share decoding steps (continuous batching: the replica's requests per
  recent step, `TierServer.batch_sizes`), each with its own sampling settings, and each
  answer equals the answer to the same request sent alone;
- one over-long request among 16 concurrent ones fails alone;
- streams stay per request while batches run beside them;
- a replica whose model breaks fails `check_health` and Serve replaces it.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.config import ThinkgateConfig
from tests.serve.conftest import TINY_DEPLOYMENT, serve_tiny_config, start_app

pytestmark = pytest.mark.serve

APP = "thinkgate"

SETTINGS: list[dict[str, Any]] = [
    {"temperature": 0},
    {"temperature": 0, "max_tokens": 3},
    {"temperature": 0.8, "seed": 7},
    {"temperature": 1.0, "top_k": 5, "seed": 3},
    {"temperature": 1.0, "top_p": 0.5, "seed": 1},
    {"temperature": 1.0, "n": 2, "seed": 11},
    {"temperature": 0, "logprobs": True, "top_logprobs": 3},
    {"temperature": 0, "stop": ["a"]},
]


@pytest.fixture(scope="module")
def config(tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> ThinkgateConfig:
    # A longer batch wait than production, so the concurrent test requests surely meet.
    deployment = {**TINY_DEPLOYMENT, "batch_wait_timeout_s": 0.2, "health_check_period_s": 1}
    return serve_tiny_config(
        tiny_qwen3_dir,
        tiny_gemma3_dir,
        small={"deployment": deployment},
        escalation={"enabled": False},
    )


@pytest.fixture(scope="module")
def base_url(ray_cluster: None, config: ThinkgateConfig) -> Iterator[str]:
    yield start_app(config)


def chat(base_url: str, i: int, settings: dict[str, Any]) -> dict[str, Any]:
    body = {
        "model": "small",
        "messages": [{"role": "user", "content": f"number {i}"}],
        "max_tokens": 6,
        **settings,
    }
    r = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text
    reply: dict[str, Any] = r.json()
    return reply


def recent_batch_sizes() -> list[int]:
    from ray import serve

    handle = serve.get_deployment_handle("SmallTier", app_name=APP)
    sizes: list[int] = handle.batch_sizes.remote().result()
    return sizes


def test_concurrent_requests_share_decoding_steps_each_with_its_settings(base_url: str) -> None:
    before = len(recent_batch_sizes())
    with concurrent.futures.ThreadPoolExecutor(len(SETTINGS)) as pool:
        together = list(pool.map(lambda a: chat(base_url, *a), enumerate(SETTINGS)))
    sizes = recent_batch_sizes()[before:]
    print(f"\nrequests per decoding step, {len(SETTINGS)} concurrent requests: {sizes}")
    assert max(sizes) > 1, sizes
    before = len(recent_batch_sizes())
    alone = [chat(base_url, i, s) for i, s in enumerate(SETTINGS)]
    assert set(recent_batch_sizes()[before:]) == {1}
    for settings, a, b in zip(SETTINGS, together, alone, strict=True):
        texts_a = [c["message"]["content"] for c in a["choices"]]
        texts_b = [c["message"]["content"] for c in b["choices"]]
        assert texts_a == texts_b, settings  # greedy and seeded rows ignore their batch-mates
        assert len(a["choices"]) == settings.get("n", 1)
        assert a["usage"]["completion_tokens"] <= settings.get("max_tokens", 6) * len(texts_a)
        has_logprobs = a["choices"][0].get("logprobs") is not None
        assert has_logprobs == bool(settings.get("logprobs"))
    assert "a" not in together[-1]["choices"][0]["message"]["content"]


def test_an_over_long_request_fails_alone_among_concurrent_ones(base_url: str) -> None:
    """16 concurrent requests, one with a prompt beyond the context (512 tokens): exactly
    one 4xx, naming the problem, and 15 answers (issue 14 item 1: one over-long prompt used
    to fail its whole batch)."""

    def post(i: int) -> httpx.Response:
        text = "word " * 800 if i == 5 else f"number {i}"
        body = {
            "model": "small",
            "messages": [{"role": "user", "content": text}],
            "max_tokens": 4,
            "temperature": 0,
        }
        return httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=120)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(post, range(16)))
    codes = [r.status_code for r in responses]
    assert codes == [200] * 5 + [400] + [200] * 10, codes
    error = responses[5].json()["error"]
    assert error["code"] == "context_length_exceeded", error
    assert all(r.json()["choices"][0]["message"]["content"] is not None for r in responses[6:])


def stream_text(base_url: str, i: int) -> str:
    import json

    body = {
        "model": "small",
        "messages": [{"role": "user", "content": f"number {i}"}],
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
    }
    parts = []
    with httpx.stream(
        "POST", f"{base_url}/v1/chat/completions", json=body, timeout=120
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for choice in json.loads(line[6:])["choices"]:
                    parts.append(choice["delta"].get("content") or "")
    return "".join(parts)


def test_streams_stay_per_request_beside_batches(base_url: str) -> None:
    greedy = {"temperature": 0, "max_tokens": 8}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        streams = [pool.submit(stream_text, base_url, i) for i in (0, 1, 0, 1)]
        batched = [pool.submit(chat, base_url, i, greedy) for i in (0, 1, 0, 1)]
        texts = [f.result() for f in streams]
        answers = [f.result()["choices"][0]["message"]["content"] for f in batched]
    # Each stream carries its own request's text, the same as the non-streamed answer.
    assert texts == answers, (texts, answers)


def breakable_tier_server() -> type:
    """`TierServer` plus a way to break its model from outside, as a GPU fault would
    (weights turned to NaN); the health check itself is TierServer's own."""
    from deployments.tiers import TierServer

    class BreakableTierServer(TierServer):
        def break_model(self) -> None:
            import torch

            with torch.no_grad():
                for parameter in self.local.engine._model.parameters():
                    parameter.fill_(float("nan"))

    return BreakableTierServer


def test_broken_model_fails_health_check_and_serve_replaces_the_replica(
    base_url: str, config: ThinkgateConfig
) -> None:
    import ray
    from ray import serve

    from deployments.app import deployment_options
    from router.engines.base import ChatMessage, GenerationRequest
    from router.sampling import SamplingParams

    options = deployment_options(config.small.deployment, "Breakable")
    app = serve.deployment(breakable_tier_server()).options(**options)
    handle = serve.run(
        app.bind("small", config.model_dump(mode="json")), name="health", route_prefix=None
    )
    request = GenerationRequest([ChatMessage("user", "hi")], SamplingParams(max_tokens=2))
    assert handle.generate.remote(request).result().choices

    def replicas() -> list[str]:
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
        return [n for n in names if n.startswith("SERVE_REPLICA::health#Breakable#")]

    [broken] = replicas()
    handle.break_model.remote().result()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        running = serve.status().applications["health"].deployments["Breakable"]
        states = {str(getattr(k, "value", k)): v for k, v in running.replica_states.items() if v}
        if broken not in replicas() and states == {"RUNNING": 1}:
            break
        time.sleep(1)
    else:
        pytest.fail(f"the broken replica was not replaced: {replicas()}")
    assert handle.generate.remote(request).result().choices  # the new replica works
    serve.delete("health")
