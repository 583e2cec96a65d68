"""FastAPI routes of the gateway: thin; logic lives in `serving`, errors in `errors`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Security
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.background import BackgroundTask
from starlette.types import Receive, Scope, Send

from router._exceptions import (
    AuthenticationError,
    NotReadyError,
    OverloadedError,
    RateLimitError,
    ThinkgateError,
)
from router.config import ThinkgateConfig
from router.gateway.access_log import AccessRecord, access_record
from router.gateway.errors import error_response, internal_error
from router.gateway.limits import ConcurrencyGate, RateLimits, check_value_limits
from router.gateway.security import ApiKeys
from router.gateway.serving import ChatReply, ChatService
from router.metrics import GatewayMetrics
from router.protocol.chat import ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse
from router.protocol.errors import ErrorResponse
from router.protocol.models import ModelList

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_ERROR_TEXTS: list[tuple[int | str, str]] = [
    (400, "Invalid request; `error.param` names the parameter"),
    (401, "Missing or wrong API key"),
    (404, "Unknown model"),
    (413, "Request body too large"),
    (429, "Rate limit exceeded (see Retry-After)"),
    (500, "Internal error"),
    (502, "Upstream error"),
    (503, "Overloaded or a tier is unavailable (see Retry-After)"),
    ("4XX", "Any other client error, in the same shape"),
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in _ERROR_TEXTS
}
for _code in (429, 503):
    _ERRORS[_code]["headers"] = _RETRY_AFTER
_OPEN_ERRORS = {code: _ERRORS[code] for code in (500, "4XX")}
"""Errors of the unauthenticated probe routes (/health, /ready)."""

ReadyCheck = Callable[[], Awaitable[bool]]
_REF = "#/components/schemas/"


_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One server-sent event (OpenAPI 3.1: the schema of each event). Its "
    "`data` is a ChatCompletionChunk as JSON; an error after the stream started comes "
    "in-band as an ErrorResponse; the last event's data is `[DONE]`.",
    "properties": {
        "event": {"type": "string"},
        "data": {
            "anyOf": [
                {"const": "[DONE]"},
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "anyOf": [
                            {"$ref": _REF + "ChatCompletionChunk"},
                            {"$ref": _REF + "ErrorResponse"},
                        ]
                    },
                },
            ]
        },
    },
    "required": ["data"],
}


def add_stream_chunk_schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """Put `ChatCompletionChunk` (the JSON in each streamed event) and the models it uses
    into ``spec``'s components: FastAPI only collects models of JSON bodies."""
    chunk = ChatCompletionChunk.model_json_schema(
        ref_template=_REF + "{model}", mode="serialization"
    )
    definitions = chunk.pop("$defs", {})
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in {**definitions, ChatCompletionChunk.__name__: chunk}.items():
        schemas.setdefault(name, schema)
    return spec


class SSEResponse(StreamingResponse):
    """A `StreamingResponse` that always closes its event iterator when it ends.

    When the client disconnects, Starlette cancels the task that sends the stream, which
    leaves the generator suspended; closing it here runs its ``finally`` blocks at once, so
    the tier stream is closed and the engine stops generating (`router.tiers.LocalTier`).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()


async def _until_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _chat_unless_disconnected(
    service: ChatService, body: ChatCompletionRequest, request: Request, record: AccessRecord
) -> ChatReply | None:
    """Run the chat; cancel it and answer None when the client goes away first."""
    chat = asyncio.ensure_future(
        service.chat(body, key_id=record.key_id or "anonymous", request_id=record.request_id)
    )
    watch = asyncio.ensure_future(_until_disconnect(request))
    try:
        await asyncio.wait((chat, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not chat.done():
            chat.cancel()
            record.disconnected = True
            # wait for the cancellation to land (a tier call running in a worker thread
            # is abandoned there; see `router.tiers.LocalTier`)
            await asyncio.wait((chat,))
    if chat.cancelled():
        return None
    return chat.result()


class _GuardedStream:
    """The SSE lines of one answer; ``finished`` runs once
    when the stream ends, fails or is closed (even before its first line). An unexpected
    exception after the headers went out ends the stream with an in-band error made by
    ``on_error`` (the 500 ``internal_error`` naming the request id) and ``[DONE]``."""

    def __init__(
        self,
        events: AsyncIterator[str],
        record: AccessRecord,
        finished: Callable[[], None],
        on_error: Callable[[Exception], ThinkgateError],
    ) -> None:
        self.events = events
        self.record = record
        self.finished: Callable[[], None] | None = finished
        self.on_error = on_error
        self.complete = False
        self._tail: list[str] = []
        self._ended = False

    def __aiter__(self) -> _GuardedStream:
        return self

    async def __anext__(self) -> str:
        if self._ended:
            if self._tail:
                return self._tail.pop(0)
            raise StopAsyncIteration
        try:
            chunk = await anext(self.events)
        except StopAsyncIteration:
            self.complete = True
            await self.aclose()
            raise
        except Exception as exc:
            error = self.on_error(exc)
            self._ended = True
            self._tail = ["data: [DONE]\n\n"]
            await self.aclose()
            return f"data: {json.dumps(error.to_dict())}\n\n"
        except BaseException:
            await self.aclose()
            raise
        return chunk

    async def aclose(self) -> None:
        finished, self.finished = self.finished, None
        if finished is None:
            return
        if not self.complete:
            self.record.disconnected = True
        try:
            close = getattr(self.events, "aclose", None)
            if close is not None:
                await close()
        finally:
            finished()


def api_key_dependency(keys: ApiKeys, metrics: GatewayMetrics) -> Callable[..., Awaitable[str]]:
    """A FastAPI dependency that authenticates the bearer key and returns its key id.

    A refused key is counted in ``thinkgate_rejected_total{reason="auth"}`` and raises
    `AuthenticationError` (401). Every route guarded by API keys uses this one dependency.
    """
    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="ApiKey",
        description="`Authorization: Bearer <key>`; required when API keys are configured.",
    )

    async def authorize(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    ) -> str:
        record = access_record(request)
        try:
            key = keys.authenticate(request.headers.get("authorization"))
        except AuthenticationError as exc:
            record.error_code = exc.code
            metrics.rejected.labels(reason="auth").inc()
            raise
        record.key_id = key
        return key

    return authorize


def serving_tiers(config: ThinkgateConfig) -> dict[str, dict[str, str]]:
    """What serves each tier, for ``GET /ready``: ``{"small": {"engine": "vllm", "model":
    "gemma3-270m"}, "strong": {...}}``, so an operator can tell which engine answers."""
    return {
        name: {"engine": tier.engine.kind, "model": tier.engine.display_name}
        for name, tier in (("small", config.small), ("strong", config.strong))
    }


def build_router(
    service: ChatService,
    metrics: GatewayMetrics,
    ready: ReadyCheck,
    *,
    api_keys: ApiKeys | None = None,
    rate_limits: RateLimits | None = None,
    gate: ConcurrencyGate | None = None,
    log_prompts: bool = False,
) -> APIRouter:
    """The routes. Without ``api_keys`` the /v1 routes are open; without ``rate_limits`` or
    ``gate`` nothing is limited beyond the request validation."""
    api = APIRouter()
    keys = api_keys or ApiKeys()
    after_tasks: set[asyncio.Future[None]] = set()  # learning work after streamed answers
    authorize = api_key_dependency(keys, metrics)

    def charge(key: str, record: AccessRecord, prompt_estimate: int = 0) -> None:
        if rate_limits is not None:
            prompt = record.prompt_tokens if record.prompt_tokens is not None else prompt_estimate
            rate_limits.charge_tokens(key, prompt + (record.completion_tokens or 0))

    @api.post(
        "/v1/chat/completions",
        response_model=ChatCompletionResponse,
        responses={
            **_ERRORS,
            200: {
                "description": "A completion (JSON), or server-sent events when stream=true.",
                "content": {
                    "text/event-stream": {"schema": _SSE_EVENT},
                },
            },
        },
    )
    async def chat_completions(
        body: ChatCompletionRequest, request: Request, key: str = Depends(authorize)
    ) -> Response:
        record = access_record(request)
        record.model, record.stream = body.model, body.stream
        if log_prompts:
            record.debug["messages"] = [m.model_dump(mode="json") for m in body.messages]
        metrics.in_flight.inc()
        status, route = "200", "none"
        holding = False
        try:
            check_value_limits(body)
            if rate_limits is not None:
                try:
                    rate_limits.admit(key)
                except RateLimitError:
                    metrics.rejected.labels(reason="rate_limit").inc()
                    raise
            if gate is not None:
                metrics.queued.inc()
                try:
                    await gate.acquire()
                except OverloadedError:
                    metrics.rejected.labels(reason="overload").inc()
                    raise
                finally:
                    metrics.queued.dec()
                holding = True
            reply = await _chat_unless_disconnected(service, body, request, record)
            if reply is None:
                status = "499"  # client closed the request; nobody reads this answer
                return Response(status_code=499)
            route = reply.route
            record.route = route
            record.served_model = reply.headers.get("x-thinkgate-model")
            if reply.events is not None:
                estimate = sum(len(m.text()) for m in body.messages) // 4

                def finished() -> None:
                    if gate is not None:
                        gate.release()
                    # the answer's real usage (not its chunk count: a replayed escalation
                    # answer or an upstream delta carries many tokens per chunk)
                    record.prompt_tokens = reply.usage.prompt_tokens
                    record.completion_tokens = reply.usage.completion_tokens
                    charge(key, record, estimate)
                    if reply.after is not None and not record.disconnected:
                        task = asyncio.ensure_future(reply.after())
                        after_tasks.add(task)
                        task.add_done_callback(after_tasks.discard)

                def stream_failed(exc: Exception) -> ThinkgateError:
                    error = internal_error(request, exc)
                    record.error_code = error.code
                    metrics.errors.labels(error_type=error.error_type).inc()
                    return error

                events = _GuardedStream(reply.events, record, finished, stream_failed)
                holding = False  # the stream releases the slot when it ends
                return SSEResponse(
                    events,
                    media_type="text/event-stream",
                    headers={**reply.headers, "Cache-Control": "no-cache"},
                )
            if reply.body is not None:
                record.prompt_tokens = reply.body.usage.prompt_tokens
                record.completion_tokens = reply.body.usage.completion_tokens
                if log_prompts:
                    record.debug["completion"] = [c.message.content for c in reply.body.choices]
            charge(key, record)
            return JSONResponse(
                reply.body.model_dump(mode="json") if reply.body else {},
                headers=reply.headers,
                background=BackgroundTask(reply.after) if reply.after is not None else None,
            )
        except ThinkgateError as exc:
            status = str(exc.status_code)
            record.error_code = exc.code or exc.error_type
            metrics.errors.labels(error_type=exc.error_type).inc()
            return error_response(exc)
        except Exception as exc:  # a bug, not the client's fault and not an outage
            error = internal_error(request, exc)
            status = str(error.status_code)
            record.error_code = error.code
            metrics.errors.labels(error_type=error.error_type).inc()
            return error_response(error)
        finally:
            if holding and gate is not None:
                gate.release()
            metrics.requests.labels(route=route, status=status).inc()
            metrics.in_flight.dec()

    @api.get("/v1/models", response_model=ModelList, responses=_ERRORS)
    async def list_models(key: str = Depends(authorize)) -> ModelList:
        return service.models()

    @api.get("/health", responses=_OPEN_ERRORS)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get(
        "/ready",
        responses={
            **_OPEN_ERRORS,
            503: {"model": ErrorResponse, "description": "Not ready", "headers": _RETRY_AFTER},
        },
    )
    async def ready_check() -> JSONResponse:
        if await ready():
            return JSONResponse({"status": "ready", "tiers": serving_tiers(service.config)})
        return error_response(NotReadyError())

    @api.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        await service.refresh_engine_metrics()
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    return api
