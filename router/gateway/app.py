"""Gateway factories: `create_app(service, ...)` builds the FastAPI app; `build_local`
wires config -> engines -> tiers -> cascade -> service in this process (no Ray).

Example::

    config = load_config()
    gateway = build_local(config)        # engines are created, not loaded
    await gateway.start()                # loads models (blocking work in threads)
    app = gateway.app                    # serve with uvicorn
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router._exceptions import RequestTooLargeError, ThinkgateError
from router.cascade import Cascade
from router.config import ThinkgateConfig
from router.gateway.api_router import ReadyCheck, build_router
from router.gateway.errors import (
    error_response,
    handle_http_error,
    handle_thinkgate_error,
    handle_unexpected,
    handle_validation_error,
)
from router.gateway.serving import ChatService
from router.metrics import GatewayMetrics
from router.tiers import LocalTier

if TYPE_CHECKING:
    from router.learning.loop import LearningLoop

log = logging.getLogger("thinkgate.gateway")


class BodySizeLimit:
    """Rejects bodies over ``max_bytes`` with 413 before they are parsed. Plain ASGI (not
    Starlette's ``BaseHTTPMiddleware``, whose task group and streams cost every request
    time): a declared ``content-length`` over the limit is refused at once; a POST/PUT/PATCH
    body is read here (chunked ones too), counted, and handed on unchanged."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(RequestTooLargeError(self.max_bytes))(scope, receive, send)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size, more = 0, True
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client left while sending
                break
            size += len(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if size > self.max_bytes:
                await error_response(RequestTooLargeError(self.max_bytes))(scope, receive, send)
                return
        buffered = iter(messages)

        async def replay() -> Message:
            # the body as it came, then the client's own messages (a disconnect)
            return next(buffered, None) or await receive()

        await self.app(scope, replay, send)


def _counted(
    handler: Callable[[Request, Exception], Awaitable[Response]],
    metrics: GatewayMetrics,
    error_type: str | None,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """``handler``, also counting the error in ``thinkgate_requests_total`` (route ``none``)
    and ``thinkgate_errors_total`` (``error_type``, or the exception's own)."""

    async def counted(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        kind = error_type or getattr(exc, "error_type", "internal_error")
        metrics.errors.labels(error_type=kind).inc()
        metrics.requests.labels(route="none", status=str(response.status_code)).inc()
        return response

    return counted


def create_app(
    config: ThinkgateConfig,
    service: ChatService,
    metrics: GatewayMetrics,
    ready: ReadyCheck,
    *,
    echo_request_id: bool = True,
) -> FastAPI:
    """The gateway's FastAPI app. Reads the API keys (config, secret file and
    ``$THINKGATE_API_KEYS``) once, here; raises `ConfigError` for an open gateway on a
    non-loopback host (see `router.gateway.security`). ``echo_request_id=False`` where a
    proxy in front already returns the request's ``x-request-id`` (Ray Serve's)."""
    import os
    from typing import Any

    from router.gateway.access_log import AccessLog
    from router.gateway.api_router import add_stream_chunk_schemas
    from router.gateway.limits import ConcurrencyGate, RateLimits
    from router.gateway.security import ApiKeys

    api_keys = ApiKeys.from_config(config.security, os.environ)
    api_keys.check_bind(config.gateway.host, config.security)
    app = FastAPI(
        title="thinkgate",
        version="0.1.0",
        description="OpenAI-compatible adaptive router and model cascade.",
    )
    app.add_middleware(BodySizeLimit, max_bytes=config.gateway.max_body_bytes)
    # outermost of ours: sees 413s and the whole stream
    app.add_middleware(AccessLog, echo_request_id=echo_request_id)
    # Errors raised before a route's own handler runs (body validation, authentication) are
    # counted here; the chat handler counts the ones it raises itself.
    app.add_exception_handler(
        RequestValidationError, _counted(handle_validation_error, metrics, "invalid_request_error")
    )
    app.add_exception_handler(ThinkgateError, _counted(handle_thinkgate_error, metrics, None))
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)
    router = build_router(
        service,
        metrics,
        ready,
        api_keys=api_keys,
        rate_limits=RateLimits.from_config(config.security),
        gate=ConcurrencyGate.from_config(config.security),
        log_prompts=config.gateway.log_prompts,
    )
    app.include_router(router)
    if service.learning is not None:
        from router.learning.api import build_learning_router

        app.include_router(build_learning_router(service.learning, metrics, api_keys))
    fastapi_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_stream_chunk_schemas(fastapi_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook
    return app


@dataclass
class LocalGateway:
    """The whole service in one process: two `LocalTier`s and the cascade."""

    config: ThinkgateConfig
    small: LocalTier
    strong: LocalTier
    cascade: Cascade
    service: ChatService
    metrics: GatewayMetrics
    app: FastAPI
    learning: LearningLoop | None = None

    async def start(self) -> None:
        """Load both tiers (the same engine object when both tiers name one model)."""
        await self.small.start()
        if self.strong.engine is not self.small.engine:
            await self.strong.start()
        else:
            self.strong._loaded = True
        await asyncio.to_thread(self.cascade.load)
        for tier in ("small", "strong"):
            self.metrics.tier_up.labels(tier=tier).set(1)
        if self.learning is not None:
            self.learning.start()

    def close(self) -> None:
        """Write the queued decision records and stop the learning threads."""
        if self.learning is not None:
            self.learning.close()

    async def ready(self) -> bool:
        return bool(await self.small.ready() and await self.strong.ready())


def create_learning(
    config: ThinkgateConfig, cascade: Cascade, metrics: GatewayMetrics
) -> LearningLoop | None:
    """The learning loop (decision log, shadow answers, hot reload), unless it is off."""
    learning = config.learning
    if not learning.enabled and learning.shadow_rate == 0:
        return None
    from router.learning.loop import LearningLoop

    return LearningLoop(config, cascade, metrics)


def build_local(config: ThinkgateConfig) -> LocalGateway:
    """Wire a gateway with in-process engines. Models load in `LocalGateway.start`."""
    from router.engines.factory import create_engine

    small_engine = create_engine(config.small.engine)
    strong_engine = (
        small_engine
        if config.strong.engine == config.small.engine
        else create_engine(config.strong.engine)
    )
    small = LocalTier("small", small_engine, timeout_s=config.small.deployment.timeout_s)
    strong = LocalTier("strong", strong_engine, timeout_s=config.strong.deployment.timeout_s)
    metrics = GatewayMetrics()
    cascade = Cascade(config, small=small, strong=strong, metrics=metrics)
    learning = create_learning(config, cascade, metrics)
    service = ChatService(config, cascade, metrics, learning)
    holder: list[LocalGateway] = []

    async def ready() -> bool:
        return await holder[0].ready()

    app = create_app(config, service, metrics, ready)
    holder.append(LocalGateway(config, small, strong, cascade, service, metrics, app, learning))
    return holder[0]
