"""One error body, built in one place; every status inside the exception tree; value ranges on
the protocol fields, so /openapi.json shows them and a bad value is named.

The gateway here is real (uvicorn, the production app) but its models are never loaded:
nothing below needs an answer, only validation, routing and readiness.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from router._exceptions import (
    InternalError,
    InvalidRequestError,
    NotReadyError,
    OverloadedError,
    RequestTooLargeError,
    ThinkgateError,
)
from router.protocol.errors import ErrorResponse
from tests.configs import tiny_config
from tests.servers import gateway_for, serve_app

ROOT = Path(__file__).resolve().parents[2]
CHAT: dict[str, Any] = {"model": "small", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def unloaded(tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> Iterator[str]:
    config = tiny_config(tiny_qwen3_dir, tiny_gemma3_dir, gateway={"max_body_bytes": 2000})
    with serve_app(gateway_for(config).app) as base_url:
        yield base_url


def _error(response: httpx.Response) -> dict[str, Any]:
    parsed = ErrorResponse.model_validate(response.json())  # exactly the one shape
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    return parsed.error.model_dump()


def test_no_module_writes_an_error_body_by_hand() -> None:
    by_hand = []
    for package in ("router", "deployments"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Dict) and any(
                    isinstance(k, ast.Constant) and k.value == "error" for k in node.keys
                ):
                    by_hand.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert by_hand == []


def test_every_status_is_a_class_of_the_tree() -> None:
    assert issubclass(RequestTooLargeError, InvalidRequestError)
    assert RequestTooLargeError(10).status_code == 413
    assert issubclass(NotReadyError, OverloadedError) and NotReadyError().status_code == 503
    assert NotReadyError().code == "not_ready"
    assert issubclass(InternalError, ThinkgateError) and InternalError("r").status_code == 500
    assert "r-1" in InternalError("r-1").to_dict()["error"]["message"]


def test_openapi_document_has_the_value_ranges(unloaded: str) -> None:
    spec = httpx.get(f"{unloaded}/openapi.json", timeout=30).json()
    fields = spec["components"]["schemas"]["ChatCompletionRequest"]["properties"]

    def bounds(name: str) -> dict[str, Any]:
        [schema] = [s for s in fields[name].get("anyOf", [fields[name]]) if s.get("type") != "null"]
        keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "maxItems")
        return {k: schema[k] for k in keys if k in schema}

    assert bounds("temperature") == {"minimum": 0, "maximum": 2}
    assert bounds("top_p") == {"exclusiveMinimum": 0, "maximum": 1}
    assert bounds("n") == {"minimum": 1, "maximum": 16}
    assert bounds("top_logprobs") == {"minimum": 0, "maximum": 20}
    assert bounds("max_tokens") == {"minimum": 1}
    assert bounds("top_k") == {"minimum": 0}
    assert bounds("max_thinking_tokens") == {"minimum": 0}
    assert {"type": "array", "items": {"type": "string"}, "maxItems": 8} in fields["stop"]["anyOf"]


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("temperature", 3.5, "temperature must be <= 2.0, got 3.5"),
        ("top_p", 0, "top_p must be > 0.0, got 0"),
        ("n", 17, "n must be <= 16, got 17"),
        ("max_tokens", 0, "max_tokens must be >= 1, got 0"),
        ("top_logprobs", 21, "top_logprobs must be <= 20, got 21"),
        ("stop", ["s"] * 9, "stop may hold at most 8 items"),
    ],
)
def test_out_of_range_values_are_named(unloaded: str, field: str, value: Any, text: str) -> None:
    response = httpx.post(
        f"{unloaded}/v1/chat/completions", json={**CHAT, field: value}, timeout=30
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == field and error["type"] == "invalid_request_error"
    assert text in error["message"]


def test_413_not_ready_and_unknown_path_have_the_one_shape(unloaded: str) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    response = httpx.post(f"{unloaded}/v1/chat/completions", json=big, timeout=30)
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"
    response = httpx.get(f"{unloaded}/ready", timeout=30)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert _error(response)["code"] == "not_ready"
    response = httpx.get(f"{unloaded}/v1/nothing-here", timeout=30)
    assert response.status_code == 404 and _error(response)["type"] == "not_found"
    response = httpx.delete(f"{unloaded}/v1/chat/completions", timeout=30)
    assert response.status_code == 405
    assert _error(response)["type"] == "invalid_request_error"
    assert "allow" in response.headers
