"""Hand-written hostile inputs: every one gets a 4xx in the OpenAI error shape (or a 200
where the input is legal), never a 5xx, and the gateway keeps serving afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.security.conftest import CHAT, SecuredGateway

MAX_BODY = 100_000


def msg(content: Any, role: Any = "user") -> dict[str, Any]:
    return {"role": role, "content": content}


def chat(**fields: Any) -> dict[str, Any]:
    return {**CHAT, **fields}


def raw(data: bytes, content_type: str = "application/json") -> tuple[bytes, str]:
    return data, content_type


def escaped(**fields: Any) -> tuple[bytes, str]:
    """A body whose non-ASCII characters (lone surrogates too) are JSON \\u escapes."""
    return raw(json.dumps(chat(**fields), ensure_ascii=True).encode("ascii"))


# (name, body (dict/list/scalar -> JSON, or (bytes, content-type)), expected status, param)
# expected None = "200 or a 4xx" (legal input whose handling is the engine's choice).
CASES: list[Any] = [
    # size
    ("body over the limit", chat(messages=[msg("x" * (MAX_BODY + 10))]), 413, None),
    ("body over the limit, no content-length", ("chunked", MAX_BODY + 10), 413, None),
    ("long prompt under the byte limit", chat(messages=[msg("ab " * 30_000)]), 400, None),
    ("too many messages", chat(messages=[msg("x")] * 300), 400, "messages"),
    ("huge user field", chat(user="u" * 10_000), 400, "user"),
    ("thousand stop strings", chat(stop=["s"] * 1000), 400, "stop"),
    ("huge n", chat(n=10**6), 400, "n"),
    ("huge max_tokens", chat(max_tokens=10**30), 400, "max_tokens"),
    ("zero max_tokens", chat(max_tokens=0), 400, "max_tokens"),
    ("negative max_tokens", chat(max_tokens=-5), 400, "max_tokens"),
    ("huge seed", chat(seed=2**80), None, None),
    ("negative seed", chat(seed=-1), None, None),
    ("huge top_logprobs", chat(logprobs=True, top_logprobs=10**4), 400, "top_logprobs"),
    ("huge top_k", chat(top_k=10**12), None, None),
    # nesting
    ("deep list nesting", raw(b'{"model":"small","messages":' + b"[" * 50_000), 400, None),
    ("deep object nesting", raw(b'{"a":' * 15_000 + b"1" + b"}" * 15_000), 400, None),
    ("nested list as content", chat(messages=[msg([[["x"]]])]), 400, "messages[0].content"),
    ("object as content", chat(messages=[msg({"text": "x"})]), 400, "messages[0].content"),
    # encodings and odd characters
    (
        "invalid UTF-8",
        raw(b'{"model":"small","messages":[{"role":"user","content":"\xff\xfe"}]}'),
        400,
        None,
    ),
    ("UTF-16 body", raw(json.dumps(CHAT).encode("utf-16")), None, None),
    ("lone surrogate in content", escaped(messages=[msg("a\ud800b")]), 400, "messages[0].content"),
    (
        "lone surrogate in a content part",
        escaped(messages=[msg([{"type": "text", "text": "\udfff"}])]),
        400,
        "messages[0].content[0].text",
    ),
    ("lone surrogate in stop", escaped(stop=["\ud800"]), 400, "stop[0]"),
    ("lone surrogate in model", escaped(model="\ud800"), 404, "model"),
    ("lone surrogate in a field name", escaped(**{"\ud800": 1}), 400, None),
    (
        "lone surrogate in role",
        escaped(messages=[msg("x", role="\ud800")]),
        400,
        "messages[0].role",
    ),
    (
        "surrogate pair escape",
        raw(
            b'{"model":"small","max_tokens":2,"messages":[{"role":"user","content":"\\ud83d\\ude00"}]}'
        ),
        200,
        None,
    ),
    ("null bytes in content", chat(messages=[msg("a\x00b\x00")]), None, None),
    ("null byte in model", chat(model="sm\x00all"), 404, "model"),
    ("control characters", chat(messages=[msg("".join(chr(i) for i in range(32)))]), None, None),
    ("emoji and RTL", chat(messages=[msg("🙂‮abc ﷽")]), 200, None),
    (
        "NaN temperature",
        raw(b'{"model":"small","messages":[{"role":"user","content":"x"}],"temperature":NaN}'),
        400,
        "temperature",
    ),
    (
        "Infinity top_p",
        raw(b'{"model":"small","messages":[{"role":"user","content":"x"}],"top_p":Infinity}'),
        400,
        "top_p",
    ),
    # content parts
    (
        "text content parts",
        chat(messages=[msg([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])]),
        200,
        None,
    ),
    ("empty content parts", chat(messages=[msg([])]), None, None),
    (
        "image content part",
        chat(messages=[msg([{"type": "image_url", "image_url": {"url": "http://x"}}])]),
        400,
        "messages[0].content",
    ),
    ("part without text", chat(messages=[msg([{"type": "text"}])]), 400, "messages[0].content"),
    ("null content", chat(messages=[msg(None)]), None, None),
    # roles
    ("unknown role", chat(messages=[msg("x", role="robot")]), 400, "messages[0].role"),
    ("tool role", chat(messages=[msg("x", role="tool")]), 400, "messages[0].role"),
    ("role as number", chat(messages=[msg("x", role=1)]), 400, "messages[0].role"),
    ("missing role", chat(messages=[{"content": "x"}]), 400, "messages[0].role"),
    ("assistant only", chat(messages=[msg("x", role="assistant")]), None, None),
    ("no messages", chat(messages=[]), 400, "messages"),
    # shapes and types
    ("JSON array", [CHAT], 400, None),
    ("JSON string", "hello", 400, None),
    ("JSON number", 42, 400, None),
    ("JSON null", None, 400, None),
    ("empty body", raw(b""), 400, None),
    ("not JSON at all", raw(b"model=small"), 400, None),
    (
        "form content type",
        raw(json.dumps(CHAT).encode(), "application/x-www-form-urlencoded"),
        400,
        None,
    ),
    ("text content type", raw(json.dumps(CHAT).encode(), "text/plain"), 400, None),
    ("max_tokens as string", chat(max_tokens="5"), 400, "max_tokens"),
    ("n as string", chat(n="2"), 400, "n"),
    ("stream as string", chat(stream="true"), 400, "stream"),
    ("logprobs as number", chat(logprobs=1), 400, "logprobs"),
    ("max_tokens as float", chat(max_tokens=2.5), 400, "max_tokens"),
    ("temperature as string", chat(temperature="0.5"), None, None),
    ("temperature out of range", chat(temperature=1e308), 400, "temperature"),
    ("model as number", chat(model=5), 400, "model"),
    ("empty model", chat(model=""), 404, "model"),
    ("unknown field", chat(functions=[]), 400, "functions"),
    ("routing as string", chat(routing="strong"), 400, "routing"),
    ("stop as number", chat(stop=5), 400, "stop"),
]


@pytest.fixture(scope="module")
def base_url(secured_gateway: SecuredGateway) -> Iterator[str]:
    with secured_gateway(gateway={"max_body_bytes": MAX_BODY}) as url:
        yield url


def _send(client: httpx.Client, url: str, body: Any) -> httpx.Response:
    if isinstance(body, tuple) and body and body[0] == "chunked":
        size = body[1]

        def chunks() -> Iterator[bytes]:
            yield b'{"model":"small","messages":[{"role":"user","content":"'
            for _ in range(size // 10_000 + 1):
                yield b"x" * 10_000
            yield b'"}]}'

        return client.post(url, content=chunks(), headers={"content-type": "application/json"})
    if isinstance(body, tuple):
        data, content_type = body
        return client.post(url, content=data, headers={"content-type": content_type})
    return client.post(url, json=body)


@pytest.mark.parametrize(
    ("name", "body", "status", "param"),
    [c if hasattr(c, "marks") else pytest.param(*c, id=c[0]) for c in CASES],
)
def test_hostile_input_is_refused_cleanly(
    base_url: str, name: str, body: Any, status: int | None, param: str | None
) -> None:
    url = f"{base_url}/v1/chat/completions"
    with httpx.Client(timeout=60) as client:
        response = _send(client, url, body)
        if status is None:
            assert response.status_code == 200 or 400 <= response.status_code < 500, response.text
        else:
            assert response.status_code == status, response.text
        if response.status_code != 200:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["message"]
            if param is not None:
                assert error["param"] == param, error
        # and the gateway still serves
        assert client.post(url, json=CHAT).status_code == 200
