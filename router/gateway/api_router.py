"""FastAPI routes of the gateway: thin; logic lives in `serving`, errors in `errors`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from router._exceptions import ThinkgateError
from router.gateway.errors import error_response
from router.gateway.serving import ChatService
from router.metrics import GatewayMetrics
from router.protocol.chat import ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse
from router.protocol.errors import ErrorResponse
from router.protocol.models import ModelList

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in [
        (400, "Invalid request; `error.param` names the parameter"),
        (401, "Missing or wrong API key"),
        (404, "Unknown model"),
        (413, "Request body too large"),
        (429, "Rate limit exceeded (see Retry-After)"),
        (500, "Internal error"),
        (502, "Upstream error"),
        (503, "Overloaded or a tier is unavailable (see Retry-After)"),
    ]
}

ReadyCheck = Callable[[], Awaitable[bool]]


def build_router(service: ChatService, metrics: GatewayMetrics, ready: ReadyCheck) -> APIRouter:
    api = APIRouter()

    @api.post(
        "/v1/chat/completions",
        response_model=ChatCompletionResponse,
        responses={
            **_ERRORS,
            200: {
                "description": "A completion (JSON), or server-sent events when stream=true.",
                "content": {
                    "text/event-stream": {
                        "schema": {"$ref": "#/components/schemas/ChatCompletionChunk"}
                    }
                },
            },
        },
        openapi_extra={"x-thinkgate-stream-chunk": ChatCompletionChunk.__name__},
    )
    async def chat_completions(body: ChatCompletionRequest) -> Response:
        metrics.in_flight.inc()
        status, route = "200", "none"
        try:
            reply = await service.chat(body)
            route = reply.route
            if reply.events is not None:
                return StreamingResponse(
                    reply.events,
                    media_type="text/event-stream",
                    headers={**reply.headers, "Cache-Control": "no-cache"},
                )
            return JSONResponse(
                reply.body.model_dump(mode="json") if reply.body else {}, headers=reply.headers
            )
        except ThinkgateError as exc:
            status = str(exc.status_code)
            metrics.errors.labels(error_type=exc.error_type).inc()
            return error_response(exc)
        finally:
            metrics.requests.labels(route=route, status=status).inc()
            metrics.in_flight.dec()

    @api.get("/v1/models", response_model=ModelList, responses=_ERRORS)
    async def list_models() -> ModelList:
        return service.models()

    @api.get("/health", responses=_ERRORS)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/ready", responses={**_ERRORS, 503: {"model": ErrorResponse}})
    async def ready_check() -> JSONResponse:
        if await ready():
            return JSONResponse({"status": "ready"})
        body = {
            "error": {
                "message": "models are still loading or a tier is unhealthy",
                "type": "service_unavailable",
                "param": None,
                "code": "not_ready",
            }
        }
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    @api.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    return api
