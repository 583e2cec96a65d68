"""Tokens per minute are charged from a streamed answer's real usage, not its chunk count.

An escalated answer is replayed to the client in one chunk (the small answer is generated
whole, judged, then the strong answer is sent): counting chunks charged one or two tokens
for it. Here the client does not ask for a usage chunk; the charge (which the access log
shows, and the rate limiter enforces) must still be the usage the same greedy request
reports when it does ask.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.gateway.access_log import ACCESS_LOGGER
from tests.configs import tiny_config
from tests.servers import running_gateway

KEY, OTHER_KEY = "sk-usage-test-key-000001", "sk-usage-test-key-000002"
BODY: dict[str, Any] = {
    "model": "auto",
    "messages": [{"role": "user", "content": "What is 2+2?"}],
    "max_tokens": 24,
    "temperature": 0,
    "stream": True,
}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def base_url(tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> Iterator[str]:
    config = tiny_config(
        tiny_qwen3_dir,
        tiny_gemma3_dir,
        escalation={"enabled": True, "scorer": "mean_logprob", "tau": 0.0},  # always escalate
        security={"api_key_hashes": [_digest(KEY), _digest(OTHER_KEY)], "tokens_per_minute": 10**6},
    )
    with running_gateway(config) as url:
        yield url


def _stream(base_url: str, key: str, **fields: Any) -> tuple[httpx.Response, list[str]]:
    response = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={**BODY, **fields},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    data = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    return response, data


def test_a_replayed_escalated_stream_is_charged_its_real_usage(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    response, data = _stream(base_url, OTHER_KEY, stream_options={"include_usage": True})
    assert response.headers["x-thinkgate-route"] == "escalated"
    usage = json.loads(data[-2])["usage"]
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response, data = _stream(base_url, KEY)
        # the access line is written once the server has finished the response, which
        # may be just after the client read its end
        deadline = time.monotonic() + 10
        lines: list[dict[str, Any]] = []
        while not lines and time.monotonic() < deadline:
            lines = [
                json.loads(r.getMessage())
                for r in caplog.records
                if r.name == ACCESS_LOGGER and response.headers["x-request-id"] in r.getMessage()
            ]
            time.sleep(0.05)
    assert response.headers["x-thinkgate-route"] == "escalated"
    content_chunks = [d for d in data[1:-1] if '"content"' in d or '"reasoning_content"' in d]
    # the premise: fewer chunks than tokens, so counting chunks under-charges
    assert len(content_chunks) < usage["completion_tokens"]
    [line] = lines
    assert line["completion_tokens"] == usage["completion_tokens"]
    assert line["prompt_tokens"] == usage["prompt_tokens"]
