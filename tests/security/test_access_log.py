"""The JSON access log: one line per request, key id not key, no text unless opted in."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from router.gateway.access_log import ACCESS_LOGGER
from router.gateway.security import hash_key, key_id
from tests.security.conftest import CHAT, SecuredGateway

SECRET_PROMPT = "my-secret-prompt-7f3a"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]


def test_one_line_per_request_with_ids_tokens_and_latency(
    secured_gateway: SecuredGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger=ACCESS_LOGGER)
    body = {**CHAT, "messages": [{"role": "user", "content": SECRET_PROMPT}]}
    with secured_gateway(env={"THINKGATE_API_KEYS": "k1"}) as url:
        auth = {"Authorization": "Bearer k1", "x-request-id": "req-123"}
        ok = httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth)
        denied = httpx.post(f"{url}/v1/chat/completions", json=body)
        stream = httpx.post(
            f"{url}/v1/chat/completions", json={**body, "stream": True}, headers=auth
        )
        httpx.get(f"{url}/health", headers={"x-request-id": "bad id with spaces"})
    assert ok.status_code == 200 and denied.status_code == 401 and stream.status_code == 200
    assert ok.headers["x-request-id"] == "req-123"
    lines = access_lines(caplog)
    assert len(lines) == 4
    first, second, third, fourth = lines
    assert first["request_id"] == "req-123"
    assert first["status"] == 200 and first["path"] == "/v1/chat/completions"
    assert first["key_id"] == key_id(hash_key("k1"))
    assert first["model"] == "small" and first["served_model"] == "tiny-small"
    assert first["route"] == "small" and first["stream"] is False
    usage = ok.json()["usage"]
    assert first["prompt_tokens"] == usage["prompt_tokens"]
    assert first["completion_tokens"] == usage["completion_tokens"]
    assert first["latency_ms"] > 0 and first["disconnected"] is False
    assert second["status"] == 401 and second["error_code"] == "missing_api_key"
    assert third["stream"] is True and third["completion_tokens"] >= 1
    assert third["disconnected"] is False
    assert fourth["path"] == "/health" and fourth["request_id"] != "bad id with spaces"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET_PROMPT not in text and "Bearer k1" not in text and '"k1"' not in text
    assert "debug" not in first


def test_log_prompts_opt_in_adds_the_text(
    secured_gateway: SecuredGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger=ACCESS_LOGGER)
    body = {**CHAT, "messages": [{"role": "user", "content": SECRET_PROMPT}]}
    with secured_gateway(gateway={"log_prompts": True}) as url:
        assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 200
    [line] = access_lines(caplog)
    assert line["key_id"] == "anonymous"
    assert line["debug"]["messages"][0]["content"] == SECRET_PROMPT
    assert isinstance(line["debug"]["completion"], list)
