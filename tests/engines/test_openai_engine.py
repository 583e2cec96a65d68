"""The `openai` engine against real local HTTP servers, no mocks.

The upstream is a second thinkgate gateway over tiny models: small tier ``tiny-small`` (a
tiny Qwen3), strong tier ``tiny-strong`` (the never-close-thinking Qwen3, which emits
``" ok"`` forever and never ``</think>``). Error statuses come from a small Starlette app
served by uvicorn, because no healthy gateway answers 500 or 503 on purpose.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from router._exceptions import (
    ContextLengthError,
    InvalidRequestError,
    ModelNotFoundError,
    ThinkgateError,
    TierUnavailableError,
    UpstreamError,
)
from router.config import EngineConfig
from router.engines.base import ChatMessage, GenerationRequest, GenerationResult, StreamEvent
from router.engines.factory import create_engine
from router.engines.openai_engine import OpenAIEngine
from router.engines.openai_http import iter_sse_data
from router.sampling import SamplingParams
from tests.configs import tiny_config
from tests.servers import free_port, running_gateway, serve_app

QUESTION = [ChatMessage("user", "What is 2+2?")]


@pytest.fixture(scope="module")
def upstream(tiny_qwen3_dir: Path, never_close_thinking_dir: Path) -> Iterator[str]:
    """Base URL (``.../v1``) of a thinkgate gateway serving tiny-small and tiny-strong."""
    with running_gateway(tiny_config(tiny_qwen3_dir, never_close_thinking_dir)) as url:
        yield f"{url}/v1"


def make_engine(base_url: str, model: str = "tiny-small", **fields: Any) -> OpenAIEngine:
    engine = create_engine(EngineConfig(kind="openai", model=model, base_url=base_url, **fields))
    if not isinstance(engine, OpenAIEngine):
        raise TypeError(f"expected an OpenAIEngine, got {type(engine).__name__}")
    engine.load()
    return engine


def generate_one(engine: OpenAIEngine, params: SamplingParams, **kwargs: Any) -> GenerationResult:
    [result] = engine.generate([GenerationRequest(QUESTION, params, **kwargs)])
    return result


def strong_engine(upstream: str, **fields: Any) -> OpenAIEngine:
    """tiny-strong with two-phase forcing, phase 1 opened by prefill (as a thinkgate
    upstream needs: its own thinking mode would apply its own budget)."""
    fields.setdefault("two_phase_opening", "prefill")
    return make_engine(upstream, "tiny-strong", **fields)


# -- plain generation ------------------------------------------------------------------


def test_health_and_generate(upstream: str) -> None:
    engine = make_engine(upstream)
    engine.check_health()
    assert engine.model_name == "tiny-small"
    params = SamplingParams(max_tokens=8, temperature=0.0)
    first = generate_one(engine, params)
    again = generate_one(engine, params)
    [choice] = first.choices
    assert first.model == "tiny-small"
    assert first.prompt_tokens > 0
    assert 1 <= choice.completion_tokens <= 8
    assert choice.reasoning is None and choice.reasoning_tokens == 0
    assert choice.text == again.choices[0].text  # greedy is deterministic


def test_batch_of_requests_keeps_order(upstream: str) -> None:
    engine = make_engine(upstream)
    requests = [
        GenerationRequest(QUESTION, SamplingParams(max_tokens=k, temperature=0.0))
        for k in (2, 5, 3)
    ]
    results = engine.generate(requests)
    assert [r.choices[0].completion_tokens for r in results] == [2, 5, 3]
    assert [r.choices[0].finish_reason for r in results] == ["length"] * 3


def test_n_choices_and_seed(upstream: str) -> None:
    engine = make_engine(upstream)
    params = SamplingParams(max_tokens=6, temperature=1.0, n=3, seed=7)
    result = generate_one(engine, params)
    again = generate_one(engine, params)
    assert len(result.choices) == 3
    assert [c.text for c in result.choices] == [c.text for c in again.choices]
    assert all(1 <= c.completion_tokens <= 6 for c in result.choices)


def test_stop_cuts_the_answer(upstream: str) -> None:
    engine = make_engine(upstream)
    full = generate_one(engine, SamplingParams(max_tokens=16, temperature=0.0)).choices[0].text
    stop = full[4:6]
    assert len(full) > 6 and stop.strip(), full
    cut = generate_one(engine, SamplingParams(max_tokens=16, temperature=0.0, stop=(stop,)))
    assert cut.choices[0].text == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_logprobs(upstream: str) -> None:
    engine = make_engine(upstream)
    params = SamplingParams(max_tokens=6, temperature=0.0, logprobs=True, top_logprobs=3)
    [choice] = generate_one(engine, params).choices
    assert choice.logprobs is not None
    assert len(choice.logprobs) == choice.completion_tokens
    for entry in choice.logprobs:
        assert entry.logprob <= 0.0 and len(entry.top) == 3
        assert entry.token_id == -1
        assert entry.logprob == pytest.approx(entry.top[0].logprob)  # greedy: the top token
    assert "".join(e.token for e in choice.logprobs).strip() == choice.text.strip()


def collect(events: Iterator[StreamEvent]) -> tuple[list[StreamEvent], dict[int, StreamEvent]]:
    seen = list(events)
    finals = {e.index: e for e in seen if e.completion is not None}
    return seen, finals


def test_stream_matches_generate(upstream: str) -> None:
    engine = make_engine(upstream)
    params = SamplingParams(max_tokens=10, temperature=0.0, logprobs=True)
    whole = generate_one(engine, params)
    events, finals = collect(engine.stream(GenerationRequest(QUESTION, params)))
    assert events[0].prompt_tokens is not None
    assert "".join(e.content for e in events) == whole.choices[0].text
    final = finals[0]
    assert final.completion is not None and final.finish_reason == "length"
    assert final.completion.completion_tokens == whole.choices[0].completion_tokens
    assert final.prompt_tokens == whole.prompt_tokens
    streamed = [e.token for event in events for e in event.logprobs]
    assert streamed  # a thinkgate upstream skips log-probs of tokens whose text it holds back
    remaining = iter([e.token for e in whole.choices[0].logprobs or []])
    assert all(token in remaining for token in streamed)  # in order, some possibly missing


def test_stream_n_choices(upstream: str) -> None:
    engine = make_engine(upstream)
    params = SamplingParams(max_tokens=5, temperature=1.0, n=2, seed=3)
    whole = generate_one(engine, params)
    events, finals = collect(engine.stream(GenerationRequest(QUESTION, params)))
    assert sorted(finals) == [0, 1]
    for index, choice in enumerate(whole.choices):
        assert "".join(e.content for e in events if e.index == index) == choice.text


def test_next_token_logprobs(upstream: str) -> None:
    engine = make_engine(upstream)
    params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=5)
    # One answered token, one log-probability (a scheduler race once fed a token finished at
    # prefill a second one: tests/engines/test_continuous_batching.py pins it).
    [first] = generate_one(engine, params).choices[0].logprobs or []
    scores = engine.next_token_logprobs(QUESTION, "", [first.token, "<no such token>"])
    assert scores[first.token] == pytest.approx(first.logprob, abs=1e-4)
    assert scores["<no such token>"] == -math.inf


def test_next_token_logprobs_after_an_assistant_prefix(upstream: str) -> None:
    engine = make_engine(upstream)
    prefix = "The answer is"
    messages = [*QUESTION, ChatMessage("assistant", prefix)]
    params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=5)
    [continued] = engine.generate(
        [GenerationRequest(messages, params, continue_final_message=True)]
    )
    [first] = continued.choices[0].logprobs or []
    scores = engine.next_token_logprobs(QUESTION, prefix, [first.token])
    assert scores[first.token] == pytest.approx(first.logprob, abs=1e-4)


# -- errors ----------------------------------------------------------------------------


def test_unknown_model_is_a_client_error(upstream: str) -> None:
    engine = make_engine(upstream, "no-such-model")
    with pytest.raises(ModelNotFoundError) as caught:
        generate_one(engine, SamplingParams(max_tokens=4))
    assert 400 <= caught.value.status_code < 500
    assert "no-such-model" in caught.value.message
    with pytest.raises(UpstreamError, match="does not serve model"):
        engine.check_health()


def test_upstream_rejection_keeps_its_parameter(upstream: str) -> None:
    engine = make_engine(upstream)
    with pytest.raises(InvalidRequestError) as caught:
        generate_one(engine, SamplingParams(max_tokens=100_000))
    assert caught.value.status_code == 400
    assert caught.value.param == "max_tokens"
    with pytest.raises(InvalidRequestError):
        list(engine.stream(GenerationRequest(QUESTION, SamplingParams(max_tokens=100_000))))


def test_a_rejected_request_fails_alone_in_its_batch(upstream: str) -> None:
    engine = make_engine(upstream)
    ok = GenerationRequest(QUESTION, SamplingParams(max_tokens=3, temperature=0.0))
    bad = GenerationRequest(QUESTION, SamplingParams(max_tokens=100_000))
    outcomes = engine.generate_each([ok, bad, ok])
    assert isinstance(outcomes[1], InvalidRequestError)
    assert [isinstance(o, GenerationResult) for o in outcomes] == [True, False, True]
    with pytest.raises(InvalidRequestError):
        engine.generate([ok, bad])


def test_upstream_down_is_unavailable() -> None:
    engine = make_engine(f"http://127.0.0.1:{free_port()}/v1", timeout_s=5)
    with pytest.raises(TierUnavailableError, match="unreachable"):
        generate_one(engine, SamplingParams(max_tokens=4))
    with pytest.raises(TierUnavailableError):
        list(engine.stream(GenerationRequest(QUESTION, SamplingParams(max_tokens=4))))
    with pytest.raises(TierUnavailableError):
        engine.check_health()


async def _status_endpoint(request: Request) -> Response:
    """Answers like a failing upstream: the status is the model name."""
    body = await request.json()
    status = int(body["model"])
    if body.get("stream") and status == 200:

        async def events() -> AsyncIterator[str]:
            yield 'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
            error = {"error": {"message": "engine crashed", "type": "internal_error"}}
            yield f"data: {json.dumps(error)}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    if status == 400:
        error = {"message": "This model's maximum context length is 8 tokens", "param": None}
        return JSONResponse({"error": {**error, "type": "invalid_request_error"}}, 400)
    if status == 418:
        return Response("not json", status_code=418)
    return JSONResponse({"error": {"message": f"failed with {status}", "type": "x"}}, status)


@pytest.fixture(scope="module")
def failing_upstream() -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/chat/completions", _status_endpoint, methods=["POST"])])
    with serve_app(app) as url:
        yield f"{url}/v1"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ContextLengthError),
        (401, UpstreamError),
        (418, InvalidRequestError),
        (429, TierUnavailableError),
        (500, UpstreamError),
        (503, TierUnavailableError),
    ],
)
def test_status_mapping(failing_upstream: str, status: int, error: type[ThinkgateError]) -> None:
    engine = make_engine(failing_upstream, str(status))
    with pytest.raises(error) as caught:
        generate_one(engine, SamplingParams(max_tokens=4))
    assert type(caught.value) is error


def test_error_inside_a_stream(failing_upstream: str) -> None:
    engine = make_engine(failing_upstream, "200")
    events = engine.stream(GenerationRequest(QUESTION, SamplingParams(max_tokens=4)))
    assert next(events).content == "Hi"
    with pytest.raises(UpstreamError, match="engine crashed"):
        next(events)


class _HangingUpstream:
    """Answers no non-streamed call: records each call's start and when its client left."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.left = threading.Event()

    async def chat(self, request: Request) -> Response:
        self.started.set()
        for _ in range(600):  # 60 s, far past the test's waits
            if await request.is_disconnected():
                self.left.set()
                return Response(status_code=499)
            await asyncio.sleep(0.1)
        return JSONResponse({"error": {"message": "nobody left", "type": "x"}}, 500)


@pytest.fixture
def hanging_upstream() -> Iterator[tuple[str, _HangingUpstream]]:
    upstream = _HangingUpstream()
    app = Starlette(routes=[Route("/v1/chat/completions", upstream.chat, methods=["POST"])])
    with serve_app(app) as url:
        yield f"{url}/v1", upstream


def test_cancelled_aborts_a_non_streamed_upstream_call(
    hanging_upstream: tuple[str, _HangingUpstream],
) -> None:
    """The caller leaves (``cancelled``): the upstream call is aborted, its connection
    closed (the upstream sees the client leave and stops), and ``generate_each`` returns."""
    url, upstream = hanging_upstream
    engine = make_engine(url, "m", timeout_s=60)
    cancelled = threading.Event()
    returned = threading.Event()

    def call() -> None:
        engine.generate_each(
            [GenerationRequest(QUESTION, SamplingParams(max_tokens=4))], cancelled=cancelled
        )
        returned.set()

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    assert upstream.started.wait(30)
    cancelled.set()
    assert returned.wait(5), "generate_each still waits on the upstream"
    assert upstream.left.wait(5), "the upstream call was not aborted"


def test_a_client_leaving_through_local_tier_aborts_the_upstream_call(
    hanging_upstream: tuple[str, _HangingUpstream],
) -> None:
    """What a Serve replica runs: the awaiting task is cancelled, as when the client
    disconnects; `LocalTier` sets ``cancelled`` and the upstream sees the client leave."""
    from router.tiers import LocalTier

    url, upstream = hanging_upstream
    tier = LocalTier("small", make_engine(url, "m", timeout_s=60))
    tier.load()

    async def leave_early() -> None:
        task = asyncio.ensure_future(
            tier.generate(GenerationRequest(QUESTION, SamplingParams(max_tokens=4)))
        )
        while not upstream.started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(leave_early(), 30))
    assert upstream.left.wait(5), "the upstream call was not aborted"


def test_sse_data_parsing() -> None:
    lines = [": keep-alive", "data: {", "data: }", "", "event: x", "data:[DONE]", ""]
    assert list(iter_sse_data(lines)) == ["{\n}", "[DONE]"]


# -- thinking budgets ------------------------------------------------------------------


def thinking(budget: int, max_tokens: int, **kwargs: Any) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens, temperature=0.0, thinking=True, thinking_budget=budget, **kwargs
    )


def test_native_budget_is_passed_through(upstream: str) -> None:
    engine = make_engine(
        upstream, "tiny-strong", budget_mode="native", native_budget_field="max_thinking_tokens"
    )
    [choice] = generate_one(engine, thinking(5, 40)).choices
    assert 0 < choice.reasoning_tokens <= 5
    assert choice.thinking_budget == 5 and choice.forced_close
    assert choice.text.strip()


@pytest.mark.parametrize("budget", [3, 7])
def test_two_phase_cuts_thinking_exactly_at_the_budget(upstream: str, budget: int) -> None:
    engine = strong_engine(upstream)
    result = generate_one(engine, thinking(budget, 20))
    [choice] = result.choices
    assert choice.reasoning == " ".join(["ok"] * budget)
    assert choice.reasoning_tokens == budget
    assert choice.forced_close and choice.thinking_budget == budget
    assert choice.text.startswith("ok")  # the answer, after the forced close
    assert choice.completion_tokens == 20 and choice.finish_reason == "length"


def test_two_phase_streams_reasoning_then_answer(upstream: str) -> None:
    engine = strong_engine(upstream)
    params = thinking(4, 12, n=2)
    whole = generate_one(engine, params)
    events, finals = collect(engine.stream(GenerationRequest(QUESTION, params)))
    assert events[0].prompt_tokens is not None
    for index in (0, 1):
        mine = [e for e in events if e.index == index]
        first_content = next(i for i, e in enumerate(mine) if e.content)
        assert not any(e.reasoning for e in mine[first_content:])
        assert "".join(e.reasoning for e in mine) == " ".join(["ok"] * 4)
        completion = finals[index].completion
        assert completion is not None and completion.forced_close
        assert completion.reasoning_tokens == 4
        assert "".join(e.content for e in mine) == completion.text == whole.choices[index].text


def test_two_phase_budget_zero_answers_at_once(upstream: str) -> None:
    engine = strong_engine(upstream)
    [choice] = generate_one(engine, thinking(0, 6)).choices
    assert choice.reasoning_tokens == 0 and not choice.reasoning
    assert choice.text.strip() and choice.forced_close


def test_two_phase_with_template_opening(upstream: str) -> None:
    """`template` asks the upstream's own thinking mode; a thinkgate upstream then applies
    its own budget inside ours, so only the upper bound holds."""
    engine = strong_engine(upstream, two_phase_opening="template")
    [choice] = generate_one(engine, thinking(6, 20)).choices
    assert 0 < choice.reasoning_tokens <= 6 and choice.forced_close
    assert choice.text.strip() and choice.completion_tokens <= 20


# -- a thinkgate gateway whose strong tier is this engine --------------------------------


@pytest.fixture(scope="module")
def chained(tiny_qwen3_dir: Path, never_close_thinking_dir: Path, upstream: str) -> Iterator[str]:
    strong = {
        "kind": "openai",
        "model": "tiny-strong",
        "served_name": "chained-strong",
        "base_url": upstream,
        "two_phase_opening": "prefill",
    }
    config = tiny_config(tiny_qwen3_dir, never_close_thinking_dir, strong={"engine": strong})
    with running_gateway(config) as url:
        yield url


def test_chained_gateway_through_the_openai_client(chained: str) -> None:
    client = OpenAI(base_url=f"{chained}/v1", api_key="x", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="strong",
        messages=[{"role": "user", "content": "What is 2+2?"}],
        max_tokens=24,
        temperature=0,
        extra_body={"max_thinking_tokens": 6},
    )
    reply = raw.parse()
    assert reply.model == "chained-strong"
    assert raw.headers["x-thinkgate-thinking-budget"] == "6"
    message = reply.choices[0].message
    assert getattr(message, "reasoning_content", None) == " ".join(["ok"] * 6)
    assert message.content and message.content.startswith("ok")
    assert reply.usage is not None and reply.usage.completion_tokens == 24
    details = reply.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens == 6

    stream = client.chat.completions.create(
        model="strong",
        messages=[{"role": "user", "content": "What is 2+2?"}],
        max_tokens=24,
        temperature=0,
        stream=True,
        extra_body={"max_thinking_tokens": 6},
    )
    reasoning, content = "", ""
    for chunk in stream:
        for choice in chunk.choices:
            reasoning += getattr(choice.delta, "reasoning_content", None) or ""
            content += choice.delta.content or ""
    assert reasoning == " ".join(["ok"] * 6)
    assert content == message.content
