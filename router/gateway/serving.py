"""Chat-completion logic of the gateway, without FastAPI: request -> cascade -> response.

`ChatService.chat` validates an already-parsed `ChatCompletionRequest`, runs the cascade and
returns a `ChatReply`: a response body or an async iterator of server-sent-event lines, plus
the routing headers. Errors are raised as `ThinkgateError` values; the edge maps them to HTTP.

Example::

    service = ChatService(config, cascade, metrics)
    reply = await service.chat(ChatCompletionRequest(model="auto", messages=[...]))
    reply.headers["x-thinkgate-route"]
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from router._exceptions import InvalidRequestError, ModelNotFoundError, ThinkgateError
from router.cascade import Cascade, CascadeRequest, Decision, Mode
from router.config import ThinkgateConfig
from router.engines.base import ChatMessage, Completion, StreamEvent, TokenLogprob
from router.metrics import GatewayMetrics
from router.protocol.chat import (
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessageOut,
    ChoiceLogprobs,
    ChunkChoice,
    CompletionTokensDetails,
    DeltaMessage,
    RoutingTrace,
    TokenLogprobOut,
    TopLogprobOut,
    Usage,
)
from router.protocol.models import ModelCard, ModelList
from router.sampling import SamplingParams

if TYPE_CHECKING:
    from router.learning.loop import LearningLoop
    from router.learning.records import DecisionRecord

ROUTED_MODELS = ("auto", "small", "strong")


@dataclass
class StreamUsage:
    """The tokens of a streamed answer, filled in as it ends (also when the client left
    early): what the rate limits charge and the access log shows, whether or not the client
    asked for a usage chunk. ``prompt_tokens`` is None when no tier reported it."""

    prompt_tokens: int | None = None
    completion_tokens: int = 0


@dataclass
class ChatReply:
    headers: dict[str, str] = field(default_factory=dict)
    body: ChatCompletionResponse | None = None
    events: AsyncIterator[str] | None = None
    usage: StreamUsage = field(default_factory=StreamUsage)
    """For ``events``: the stream's real token counts once it has ended."""
    route: str = "none"
    after: Callable[[], Awaitable[None]] | None = None
    """Work to run once the client has the whole answer (learning: shadow + judge)."""


def routing_headers(decision: Decision, model: str) -> dict[str, str]:
    headers = {"x-thinkgate-route": decision.route, "x-thinkgate-model": model}
    if decision.difficulty is not None:
        headers["x-thinkgate-difficulty"] = f"{decision.difficulty:.4f}"
    if decision.uncertainty is not None:
        headers["x-thinkgate-uncertainty"] = f"{decision.uncertainty:.4f}"
    if decision.thinking_budget is not None and decision.tier == "strong":
        headers["x-thinkgate-thinking-budget"] = str(decision.thinking_budget)
    if decision.thinking_stop is not None and decision.tier == "strong":
        headers["x-thinkgate-thinking-stop"] = decision.thinking_stop
    if decision.probes is not None and decision.tier == "strong":
        headers["x-thinkgate-probes"] = str(decision.probes)
    if decision.fallback_from is not None:
        headers["x-thinkgate-fallback"] = f"{decision.fallback_from}->{decision.tier}"
    return headers


def routing_trace(decision: Decision) -> RoutingTrace:
    return RoutingTrace(
        route=decision.route,
        reason=decision.reason,
        difficulty=decision.difficulty,
        threshold=decision.threshold,
        uncertainty=decision.uncertainty,
        escalation_scorer=decision.escalation_scorer,
        thinking_budget=decision.thinking_budget if decision.tier == "strong" else None,
        thinking_stop=decision.thinking_stop if decision.tier == "strong" else None,
        probes=decision.probes if decision.tier == "strong" else None,
        fallback_from=decision.fallback_from,
    )


def _logprobs_out(items: list[TokenLogprob] | tuple[TokenLogprob, ...] | None) -> ChoiceLogprobs:
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                token=t.token,
                logprob=t.logprob,
                bytes=list(t.token.encode("utf-8")),
                top_logprobs=[
                    TopLogprobOut(token=a.token, logprob=a.logprob, bytes=list(a.token.encode()))
                    for a in t.top
                ],
            )
            for t in items or ()
        ]
    )


class ChatService:
    """Validates requests, runs the cascade, shapes OpenAI responses."""

    def __init__(
        self,
        config: ThinkgateConfig,
        cascade: Cascade,
        metrics: GatewayMetrics,
        learning: LearningLoop | None = None,
    ):
        self.config = config
        self.cascade = cascade
        self.metrics = metrics
        self.learning = learning
        self.created = int(time.time())

    # ----- models ----------------------------------------------------------------------
    def model_names(self) -> dict[str, Mode]:
        names: dict[str, Mode] = {"auto": "auto", "small": "small", "strong": "strong"}
        for tier in ("small", "strong"):
            served = self.cascade.tiers[tier].model_name
            names.setdefault(served, "small" if tier == "small" else "strong")
        return names

    async def refresh_engine_metrics(self) -> None:
        """Read each tier's engine state into the metrics (at every scrape of /metrics)."""
        tiers = self.cascade.tiers
        stats = await asyncio.gather(*(tier.engine_stats() for tier in tiers.values()))
        for name, values in zip(tiers, stats, strict=True):
            self.metrics.set_engine_stats(name, values)

    def models(self) -> ModelList:
        return ModelList(
            data=[ModelCard(id=name, created=self.created) for name in self.model_names()]
        )

    # ----- validation --------------------------------------------------------------------
    def to_cascade_request(self, req: ChatCompletionRequest, request_id: str) -> CascadeRequest:
        names = self.model_names()
        if req.model not in names:
            raise ModelNotFoundError(
                f"model {req.model!r} does not exist; choose one of {sorted(names)}"
            )
        mode = names[req.model]
        if req.routing is not None and req.routing.mode != "auto":
            if mode != "auto" and req.routing.mode != mode:
                raise InvalidRequestError(
                    f"routing.mode {req.routing.mode!r} contradicts model {req.model!r}",
                    param="routing.mode",
                )
            mode = req.routing.mode
        for name in ("frequency_penalty", "presence_penalty"):
            value = getattr(req, name)
            if value not in (None, 0, 0.0):
                raise InvalidRequestError(
                    f"{name} is not supported by thinkgate engines; send 0 or omit it, got {value}",
                    param=name,
                )
        if req.top_logprobs is not None and req.top_logprobs > 0 and not req.logprobs:
            raise InvalidRequestError("top_logprobs requires logprobs=true", param="top_logprobs")
        both = req.max_tokens is not None and req.max_completion_tokens is not None
        if both and req.max_tokens != req.max_completion_tokens:
            raise InvalidRequestError(
                "max_tokens and max_completion_tokens disagree; send one",
                param="max_completion_tokens",
            )
        max_tokens = req.max_tokens if req.max_tokens is not None else req.max_completion_tokens
        param = "max_tokens" if req.max_tokens is not None else "max_completion_tokens"
        limit = max(self.config.small.max_tokens_limit, self.config.strong.max_tokens_limit)
        if mode != "auto":
            limit = (self.config.small if mode == "small" else self.config.strong).max_tokens_limit
        if max_tokens is not None and max_tokens > limit:
            raise InvalidRequestError(
                f"{param} must be at most {limit} for model {req.model!r}, got {max_tokens}",
                param=param,
                code="max_tokens_too_large",
            )
        if len(req.messages) > self.config.gateway.max_messages:
            raise InvalidRequestError(
                f"at most {self.config.gateway.max_messages} messages are accepted, "
                f"got {len(req.messages)}",
                param="messages",
            )
        if req.max_thinking_tokens is not None and req.max_thinking_tokens < 0:
            raise InvalidRequestError(
                f"max_thinking_tokens must be >= 0, got {req.max_thinking_tokens}",
                param="max_thinking_tokens",
            )
        if req.continue_final_message and (
            req.add_generation_prompt or req.messages[-1].role != "assistant"
        ):
            raise InvalidRequestError(
                "continue_final_message needs add_generation_prompt=false and a final "
                "assistant message",
                param="continue_final_message",
            )
        if not req.add_generation_prompt and not req.continue_final_message:
            raise InvalidRequestError(
                "add_generation_prompt=false is only supported with continue_final_message",
                param="add_generation_prompt",
            )
        stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
        params = SamplingParams(
            max_tokens=max_tokens if max_tokens is not None else 1,
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            top_k=req.top_k or 0,
            n=req.n,
            stop=stop,
            seed=req.seed,
            logprobs=req.logprobs,
            top_logprobs=req.top_logprobs or 0,
        )
        messages = [ChatMessage(m.role, m.text()) for m in req.messages]
        return CascadeRequest(
            messages=messages,
            params=params,
            mode=mode,
            max_tokens_given=max_tokens is not None,
            escalate=req.routing.escalate if req.routing else None,
            max_thinking_tokens=req.max_thinking_tokens,
            reasoning_effort=req.reasoning_effort,
            thinking_probe=req.thinking_probe,
            enable_thinking=(
                req.chat_template_kwargs.enable_thinking if req.chat_template_kwargs else None
            ),
            request_id=request_id,
            continue_final_message=req.continue_final_message,
        )

    # ----- chat --------------------------------------------------------------------------
    async def chat(
        self, req: ChatCompletionRequest, key_id: str = "anonymous", request_id: str | None = None
    ) -> ChatReply:
        """``request_id``: the HTTP request's id (``x-request-id``); the completion's ``id``
        is ``chatcmpl-`` + it (a new one when None)."""
        request_id = f"chatcmpl-{request_id or uuid.uuid4().hex}"
        creq = self.to_cascade_request(req, request_id)
        started = time.perf_counter()
        if req.stream:
            return await self._chat_stream(req, creq, request_id, key_id, started)
        outcome = await self.cascade.complete(creq)
        decision, result = outcome.decision, outcome.result
        choices = [
            ChatChoice(
                index=i,
                message=ChatMessageOut(content=c.text, reasoning_content=c.reasoning),
                logprobs=_logprobs_out(c.logprobs) if req.logprobs else None,
                finish_reason=c.finish_reason,
            )
            for i, c in enumerate(result.choices)
        ]
        body = ChatCompletionResponse(
            id=request_id,
            created=int(time.time()),
            model=result.model,
            choices=choices,
            usage=Usage(
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                total_tokens=result.prompt_tokens + result.completion_tokens,
                completion_tokens_details=CompletionTokensDetails(
                    reasoning_tokens=result.reasoning_tokens
                ),
            ),
            routing=routing_trace(decision) if self.config.gateway.include_routing_body else None,
        )
        reply = ChatReply(
            headers=routing_headers(decision, result.model), body=body, route=decision.route
        )
        if self.learning is not None:
            record = self.learning.record(
                creq,
                decision,
                key_id=key_id,
                answer_model=result.model,
                prompt_tokens=result.prompt_tokens,
                completions=result.choices,
                latency_s=time.perf_counter() - started,
                stream=False,
            )
            reply.after = functools.partial(self.learning.after_answer, record)
        return reply

    async def _chat_stream(
        self,
        req: ChatCompletionRequest,
        creq: CascadeRequest,
        request_id: str,
        key_id: str,
        started: float,
    ) -> ChatReply:
        decision, events = await self.cascade.stream(creq)
        iterator = aiter(events)
        # Pull the first event before answering, so a tier error is still a proper HTTP
        # error (and a fallback can change the tier) instead of a broken stream.
        try:
            first: StreamEvent | None = await anext(iterator)
        except StopAsyncIteration:
            first = None
        model = self.cascade.tiers[decision.tier].model_name
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        trace = routing_trace(decision) if self.config.gateway.include_routing_body else None
        on_complete, after = self._stream_learning(creq, decision, key_id, model, started)
        usage = StreamUsage()
        sse = _sse_events(
            first,
            iterator,
            request_id=request_id,
            model=model,
            n=req.n,
            logprobs=req.logprobs,
            include_usage=include_usage,
            trace=trace,
            on_complete=on_complete,
            usage=usage,
        )
        return ChatReply(
            headers=routing_headers(decision, model),
            events=sse,
            usage=usage,
            route=decision.route,
            after=after,
        )

    def _stream_learning(
        self, creq: CascadeRequest, decision: Decision, key_id: str, model: str, started: float
    ) -> tuple[
        Callable[[int, dict[int, Completion]], None] | None,
        Callable[[], Awaitable[None]] | None,
    ]:
        """Callbacks that record a finished stream and then run the learning work."""
        learning = self.learning
        if learning is None:
            return None, None
        records: list[DecisionRecord] = []

        def on_complete(prompt_tokens: int, completions: dict[int, Completion]) -> None:
            records.append(
                learning.record(
                    creq,
                    decision,
                    key_id=key_id,
                    answer_model=model,
                    prompt_tokens=prompt_tokens,
                    completions=[completions[i] for i in sorted(completions)],
                    latency_s=time.perf_counter() - started,
                    stream=True,
                )
            )

        async def after() -> None:
            for record in records:
                await learning.after_answer(record)

        return on_complete, after


def _chunk(request_id: str, model: str, created: int, **fields: object) -> str:
    chunk = ChatCompletionChunk(id=request_id, created=created, model=model, **fields)
    return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"


async def _sse_events(
    first: StreamEvent | None,
    rest: AsyncIterator[StreamEvent],
    *,
    request_id: str,
    model: str,
    n: int,
    logprobs: bool,
    include_usage: bool,
    trace: RoutingTrace | None,
    on_complete: Callable[[int, dict[int, Completion]], None] | None = None,
    usage: StreamUsage | None = None,
) -> AsyncIterator[str]:
    """The SSE lines of one answer. ``usage`` gets the answer's real token counts when the
    stream ends: the engines' counts for finished choices; for a choice cut short (client
    gone, error), the larger of its events and a quarter of its characters."""
    created = int(time.time())
    yield _chunk(
        request_id,
        model,
        created,
        choices=[
            ChunkChoice(index=i, delta=DeltaMessage(role="assistant", content="")) for i in range(n)
        ],
        routing=trace,
    )
    prompt_tokens = 0
    prompt_seen = False
    completions: dict[int, Completion] = {}
    partial: dict[int, tuple[int, int]] = {}  # index -> (events, characters) so far

    def fill_usage() -> None:
        if usage is None:
            return
        counted = sum(c.completion_tokens for c in completions.values())
        for index, (events, chars) in partial.items():
            if index not in completions:
                counted += max(events, math.ceil(chars / 4))
        usage.prompt_tokens = prompt_tokens if prompt_seen else None
        usage.completion_tokens = counted

    async def all_events() -> AsyncIterator[StreamEvent]:
        if first is not None:
            yield first
        async for event in rest:
            yield event

    try:
        async for event in all_events():
            if event.prompt_tokens is not None:
                prompt_tokens, prompt_seen = event.prompt_tokens, True
            if event.completion is not None:
                completions[event.index] = event.completion
            if event.content or event.reasoning:
                events, chars = partial.get(event.index, (0, 0))
                text = len(event.content or "") + len(event.reasoning or "")
                partial[event.index] = (events + 1, chars + text)
            if event.content or event.reasoning or event.finish_reason or event.logprobs:
                delta = DeltaMessage(
                    content=event.content or None, reasoning_content=event.reasoning or None
                )
                yield _chunk(
                    request_id,
                    model,
                    created,
                    choices=[
                        ChunkChoice(
                            index=event.index,
                            delta=delta,
                            logprobs=_logprobs_out(tuple(event.logprobs)) if logprobs else None,
                            finish_reason=event.finish_reason,
                        )
                    ],
                )
    except ThinkgateError as exc:
        # Headers are gone: report the error in-band, as OpenAI-compatible servers do.
        yield f"data: {json.dumps(exc.to_dict())}\n\n"
        yield "data: [DONE]\n\n"
        return
    finally:
        fill_usage()  # also when the client went away and the stream was closed
    if on_complete is not None:
        on_complete(prompt_tokens, completions)
    if include_usage:
        completion_tokens = sum(c.completion_tokens for c in completions.values())
        reasoning = sum(c.reasoning_tokens for c in completions.values())
        final = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=reasoning),
        )
        yield _chunk(request_id, model, created, choices=[], usage=final)
    yield "data: [DONE]\n\n"
