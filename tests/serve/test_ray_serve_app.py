"""The Ray Serve application, really started on local Ray, called with the `openai` client.

Also: concurrent requests really meet in one engine batch; overload is answered by
thinkgate's own concurrency gate (503 in the OpenAI error shape with Retry-After), never by
Ray's proxy, because the ingress takes more ongoing requests than the gate holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from router.config import ThinkgateConfig
from tests.serve.conftest import TINY_DEPLOYMENT, serve_tiny_config, start_app
from tests.servers import metric_samples

pytestmark = pytest.mark.serve

GATE = {"max_concurrent_requests": 8, "max_queued_requests": 8, "queue_timeout_s": 30}


@pytest.fixture(scope="module")
def config(tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> ThinkgateConfig:
    # a batch wait long enough that concurrent test requests surely meet in one batch
    small = {"deployment": {**TINY_DEPLOYMENT, "batch_wait_timeout_s": 0.2}}
    return serve_tiny_config(tiny_qwen3_dir, tiny_gemma3_dir, small=small, security=GATE)


@pytest.fixture(scope="module")
def base_url(ray_cluster: None, config: ThinkgateConfig) -> Iterator[str]:
    yield start_app(config)


def _small_batch_sizes() -> list[int]:
    from ray import serve

    handle = serve.get_deployment_handle("SmallTier", app_name="thinkgate")
    sizes: list[int] = handle.batch_sizes.remote().result()
    return sizes


def test_chat_json_and_stream_through_serve(base_url: str) -> None:
    client = OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "What is 2+2?"}], max_tokens=8
    )
    reply = raw.parse()
    assert raw.headers["x-thinkgate-route"] == "small"
    assert reply.model == "tiny-small" and reply.choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="strong",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=30,
            stream=True,
            extra_body={"max_thinking_tokens": 5},
        )
    )
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert len(chunks) >= 3 and reasoning


def test_concurrent_requests_are_batched_and_all_answered(base_url: str) -> None:
    import concurrent.futures

    def call(i: int) -> int:
        body = {
            "model": "small",
            "messages": [{"role": "user", "content": f"q{i}"}],
            "max_tokens": 4,
        }
        return httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=120).status_code

    before = len(_small_batch_sizes())
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(call, range(16))) == [200] * 16
    # One entry per decoding step of the replica's running batch: how many requests that
    # step advanced. Continuous batching shares steps between concurrent requests.
    sizes = _small_batch_sizes()[before:]
    assert sizes and max(sizes) > 1, sizes


def test_overload_is_answered_by_thinkgate_not_by_ray(
    base_url: str, config: ThinkgateConfig
) -> None:
    import concurrent.futures

    from deployments.app import build_from_config

    gateway = build_from_config(config)._bound_deployment
    gate = GATE["max_concurrent_requests"] + GATE["max_queued_requests"]
    assert gateway.max_ongoing_requests > gate and gateway.max_queued_requests == -1

    def call(i: int) -> httpx.Response:
        body = {
            "model": "small",
            "messages": [{"role": "user", "content": f"count to {i}"}],
            "max_tokens": 48,
        }
        return httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=120)

    with concurrent.futures.ThreadPoolExecutor(48) as pool:
        responses = list(pool.map(call, range(48)))
    refused = [r for r in responses if r.status_code != 200]
    assert refused, "48 concurrent requests against a gate of 16 were all admitted"
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "overloaded"  # thinkgate's shape
        assert response.headers["retry-after"].isdigit()


def test_bad_input_through_serve_is_4xx(base_url: str) -> None:
    r = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"model": "small", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4000},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"
    samples = metric_samples(base_url, "thinkgate_requests_total", status="400")
    assert samples and samples[0] >= 1  # a sample, not the # HELP


def test_one_request_id_through_serve_names_the_answer(base_url: str) -> None:
    """Ray's proxy returns the request's x-request-id; thinkgate adopts it (no second header,
    which a client would read as "id, id"), the completion id is ``chatcmpl-`` + it, and
    ``POST /v1/feedback`` takes the header's id."""
    import uuid

    body = {"model": "small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        chat = client.post("/v1/chat/completions", json=body)
        assert chat.status_code == 200, chat.text
        [request_id] = chat.headers.get_list("x-request-id")
        assert "," not in request_id
        assert chat.json()["id"] == f"chatcmpl-{request_id}"
        label = client.post("/v1/feedback", json={"request_id": request_id, "thumbs": "up"})
        assert label.status_code == 200, label.text
        assert label.json()["request_id"] == chat.json()["id"]

        mine = f"client-{uuid.uuid4().hex}"
        sent = client.post("/v1/chat/completions", json=body, headers={"x-request-id": mine})
        assert sent.headers.get_list("x-request-id") == [mine]
        assert sent.json()["id"] == f"chatcmpl-{mine}"
        stream = client.post("/v1/chat/completions", json={**body, "stream": True})
        assert len(stream.headers.get_list("x-request-id")) == 1
