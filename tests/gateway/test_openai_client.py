"""End to end through the official `openai` client against the in-process gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.configs import tiny_config
from tests.servers import running_gateway

LONG_PROMPT = " ".join(["explain the proof step by step"] * 20)  # 120 words: p = 0.3


@pytest.fixture(scope="module")
def base_url(tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> Iterator[str]:
    config = tiny_config(tiny_qwen3_dir, tiny_gemma3_dir, routing={"threshold": 0.2})
    with running_gateway(config) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0)


def test_health_ready_and_models(base_url: str, client: OpenAI) -> None:
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{base_url}/ready").status_code == 200
    ids = {m.id for m in client.models.list()}
    assert {"auto", "small", "strong", "tiny-small", "tiny-strong"} <= ids


def test_auto_short_prompt_is_answered_by_the_small_tier(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "What is 2+2?"}], max_tokens=8
    )
    reply = raw.parse()
    assert raw.headers["x-thinkgate-route"] == "small"
    assert raw.headers["x-thinkgate-model"] == "tiny-small" == reply.model
    assert 0.0 <= float(raw.headers["x-thinkgate-difficulty"]) < 0.2
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens >= 1


def test_auto_long_prompt_goes_strong_with_thinking(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": LONG_PROMPT}], max_tokens=40
    )
    reply = raw.parse()
    assert raw.headers["x-thinkgate-route"] == "strong"
    assert reply.model == "tiny-strong"
    budget = int(raw.headers["x-thinkgate-thinking-budget"])
    details = reply.usage.completion_tokens_details  # type: ignore[union-attr]
    assert details is not None and details.reasoning_tokens <= budget


def test_forced_strong_returns_reasoning(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="strong",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=40,
        extra_body={"max_thinking_tokens": 6},
    )
    reply = raw.parse()
    assert raw.headers["x-thinkgate-route"] == "strong"
    assert raw.headers["x-thinkgate-thinking-budget"] == "6"
    message = reply.choices[0].message
    assert getattr(message, "reasoning_content", None) is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens <= 6  # type: ignore[union-attr]


def test_streaming_chunks_end_with_done(client: OpenAI, base_url: str) -> None:
    stream = client.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "count"}],
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) >= 3 and text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1
    with httpx.stream(
        "POST",
        f"{base_url}/v1/chat/completions",
        json={
            "model": "small",
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 3,
            "stream": True,
        },
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


def test_greedy_is_deterministic_and_n_gives_choices(client: OpenAI) -> None:
    kwargs = {"model": "small", "messages": [{"role": "user", "content": "abc"}], "max_tokens": 6}
    a = client.chat.completions.create(temperature=0, **kwargs)  # type: ignore[call-overload]
    b = client.chat.completions.create(temperature=0, **kwargs)  # type: ignore[call-overload]
    assert a.choices[0].message.content == b.choices[0].message.content
    many = client.chat.completions.create(n=3, seed=1, **kwargs)  # type: ignore[call-overload]
    assert [c.index for c in many.choices] == [0, 1, 2]


def test_logprobs_are_returned_when_asked(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "abc"}],
        max_tokens=4,
        temperature=0,  # deterministic: a sampled first token may be EOS (empty answer)
        logprobs=True,
        top_logprobs=2,
    )
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and all(len(t.top_logprobs) == 2 for t in content)


BAD_REQUESTS = [
    ("malformed JSON", b'{"model": "auto", "messages": [', None),
    ("missing field", {"model": "auto"}, "messages"),
    ("ill-typed field", {"model": "auto", "messages": "hi"}, "messages"),
    (
        "out-of-range top_p",
        {"model": "auto", "messages": [{"role": "user", "content": "x"}], "top_p": 1.5},
        "top_p",
    ),
    ("unknown model", {"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]}, "model"),
    (
        "max_tokens beyond context",
        {"model": "small", "messages": [{"role": "user", "content": "x"}], "max_tokens": 4000},
        "max_tokens",
    ),
    (
        "unknown parameter",
        {"model": "auto", "messages": [{"role": "user", "content": "x"}], "tools": []},
        "tools",
    ),
    (
        "bad role",
        {"model": "auto", "messages": [{"role": "robot", "content": "x"}]},
        "messages[0].role",
    ),
    (
        "negative thinking cap",
        {
            "model": "strong",
            "messages": [{"role": "user", "content": "x"}],
            "max_thinking_tokens": -1,
        },
        "max_thinking_tokens",
    ),
]


@pytest.mark.parametrize(("name", "body", "param"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_gets_openai_shaped_4xx(
    base_url: str, name: str, body: object, param: str | None
) -> None:
    url = f"{base_url}/v1/chat/completions"
    if isinstance(body, bytes):
        response = httpx.post(url, content=body, headers={"content-type": "application/json"})
    else:
        response = httpx.post(url, json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param, error
    assert error["message"]
    # and the server keeps serving
    ok = httpx.post(
        url,
        json={"model": "small", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2},
    )
    assert ok.status_code == 200


def test_openai_client_raises_typed_errors(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "x"}], temperature=3
        )
    assert "temperature" in str(info.value)


def test_auto_stream_with_possible_escalation_is_replayed_token_by_token(client: OpenAI) -> None:
    # escalation is possible (enabled, tau=1): the small answer is checked first, then sent
    chunks = list(
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "What is 2+2?"}],
            max_tokens=6,
            temperature=0,
            stream=True,
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    whole = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "What is 2+2?"}],
        max_tokens=6,
        temperature=0,
    )
    assert "".join(pieces) == whole.choices[0].message.content
    assert len(pieces) > 1
    assert chunks[-1].choices == [] or chunks[-1].choices[0].finish_reason is not None
