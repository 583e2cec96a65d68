"""The Ray Serve application, really started on local Ray, called with the `openai` client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.serve.conftest import serve_tiny_config, start_app

pytestmark = pytest.mark.serve


@pytest.fixture(scope="module")
def base_url(ray_cluster: None, tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> Iterator[str]:
    yield start_app(serve_tiny_config(tiny_qwen3_dir, tiny_gemma3_dir))


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

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(call, range(16))) == [200] * 16


def test_bad_input_through_serve_is_4xx(base_url: str) -> None:
    r = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"model": "small", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4000},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"
    assert httpx.get(f"{base_url}/metrics").text.count("thinkgate_requests_total") >= 1
