"""Mapping of every failure to the one OpenAI error shape, at the HTTP edge."""

from __future__ import annotations

import logging
import math

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from router._exceptions import OverloadedError, RateLimitError, ThinkgateError

log = logging.getLogger("thinkgate.gateway")


def error_response(exc: ThinkgateError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitError | OverloadedError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)


_SCALAR_TAGS = frozenset({"str", "int", "float", "bool", "none", "bytes"})


def _is_union_tag(part: str) -> bool:
    """pydantic puts the union member tried into the error path ("str", "list[...]",
    "function-after[...]", a model class name); request field names are snake_case."""
    return part in _SCALAR_TAGS or "[" in part or part[:1].isupper()


def _param_from_loc(loc: tuple[object, ...]) -> str | None:
    parts = [str(p) for p in loc if p != "body"]
    parts = [p for p in parts if not _is_union_tag(p)]
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def validation_error_body(exc: RequestValidationError) -> dict[str, dict[str, str | None]]:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
    loc = tuple(first.get("loc", ()))
    param = _param_from_loc(loc)
    kind = first.get("type", "")
    if kind == "json_invalid":
        message = "could not parse the request body as JSON"
        param = None
    elif loc == ("body",) and kind != "missing":
        message = "the request body must be a JSON object"
        param = None
    elif kind == "extra_forbidden":
        message = f"unrecognized request argument: {param}"
    elif kind == "missing":
        message = f"missing required parameter: {param}"
    else:
        message = f"invalid value for {param}: {first.get('msg', 'invalid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": "invalid_value" if kind not in ("json_invalid", "missing") else kind,
        }
    }


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registration
        raise exc
    return JSONResponse(validation_error_body(exc), status_code=400)


async def handle_thinkgate_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ThinkgateError):  # pragma: no cover - registration
        raise exc
    return error_response(exc)


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registration
        raise exc
    kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
    body = {"error": {"message": str(exc.detail), "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    body = {
        "error": {
            "message": "internal error; the request was not completed",
            "type": "internal_error",
            "param": None,
            "code": None,
        }
    }
    return JSONResponse(body, status_code=500)
