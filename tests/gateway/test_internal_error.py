"""A bug is not an outage: an engine that raises an unexpected exception inside ``generate``
gives a 500 ``internal_error`` naming the request id (body, log and metric), and no
fallback to the other tier; only unavailability (a timeout) still falls back.

The bug is genuine, not a mock: the small tier's tokenizer knows more tokens than its
model's embedding has rows (a mismatched tokenizer/model pair), so a prompt that uses one
of them makes torch raise ``IndexError`` inside the model's forward pass.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.configs import tiny_config
from tests.servers import metric_samples, running_gateway
from tests.tiny_models import VOCAB_SIZE

BROKEN_TOKEN = "<beyond-the-embedding>"


@pytest.fixture(scope="module")
def mismatched_model_dir(tiny_qwen3_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer

    target = tmp_path_factory.mktemp("mismatched") / "qwen3"
    shutil.copytree(tiny_qwen3_dir, target)
    tokenizer = AutoTokenizer.from_pretrained(target)
    fillers = [f"<filler-{i}>" for i in range(VOCAB_SIZE - len(tokenizer))]
    tokenizer.add_tokens([*fillers, BROKEN_TOKEN], special_tokens=True)
    assert tokenizer.convert_tokens_to_ids(BROKEN_TOKEN) >= VOCAB_SIZE
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def base_url(mismatched_model_dir: Path, tiny_gemma3_dir: Path) -> Iterator[str]:
    config = tiny_config(mismatched_model_dir, tiny_gemma3_dir)  # short prompts go small
    with running_gateway(config) as url:
        yield url


def _chat(base_url: str, **fields: object) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": f"hi {BROKEN_TOKEN}"}], "max_tokens": 4}
    return httpx.post(f"{base_url}/v1/chat/completions", json={**body, **fields}, timeout=120)


def _internal_errors(base_url: str) -> float:
    return sum(metric_samples(base_url, "thinkgate_errors_total", error_type="internal_error"))


def test_a_bug_in_the_small_tier_is_a_500_not_a_fallback(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = _internal_errors(base_url)
    with caplog.at_level(logging.ERROR, logger="thinkgate.gateway"):
        response = _chat(base_url, model="auto", routing={"mode": "auto"})
    assert response.status_code == 500, response.text
    assert "x-thinkgate-fallback" not in response.headers
    error = response.json()["error"]
    request_id = response.headers["x-request-id"]
    assert error["type"] == "internal_error" and error["code"] == "internal_error"
    assert request_id in error["message"]
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert logged[0].exc_info[0] is IndexError  # the genuine failure, with its traceback
    assert _internal_errors(base_url) == before + 1


def test_a_bug_while_streaming_is_an_internal_error_too(base_url: str) -> None:
    response = _chat(base_url, model="small", stream=True)
    request_id = response.headers["x-request-id"]
    if response.status_code == 500:  # failed before the first event: a plain 500
        error = response.json()["error"]
    else:  # failed after the headers: the error comes in-band, then [DONE]
        events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
    assert error["type"] == "internal_error" and request_id in error["message"]


def test_the_healthy_tier_still_answers(base_url: str) -> None:
    response = _chat(base_url, model="strong")
    assert response.status_code == 200, response.text
    response = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"model": "small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        timeout=120,
    )
    assert response.status_code == 200, response.text
