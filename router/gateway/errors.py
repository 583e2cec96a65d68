"""Mapping of every failure to the one OpenAI error shape, at the HTTP edge."""

from __future__ import annotations

import logging
import math

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from router._exceptions import (
    InternalError,
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    RouteError,
    ThinkgateError,
)
from router.gateway.access_log import access_record

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


_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def validation_error(exc: RequestValidationError) -> InvalidRequestError:
    """The first problem pydantic found, as an `InvalidRequestError` naming the parameter
    (a value out of a field's range reads "temperature must be <= 2, got 3.5")."""
    errors = exc.errors()
    # a range error is the one to report: in a union field ("stop": str | list) pydantic
    # also lists the branches that did not match
    ranked = sorted(errors, key=lambda e: e.get("type") not in (*_BOUNDS, "too_long"))
    first = ranked[0] if ranked else {"loc": (), "msg": "invalid request", "type": "invalid"}
    loc = tuple(first.get("loc", ()))
    param = _param_from_loc(loc)
    kind = first.get("type", "")
    raw_ctx = first.get("ctx")
    ctx: dict[str, object] = raw_ctx if isinstance(raw_ctx, dict) else {}
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
    elif kind in _BOUNDS and _BOUNDS[kind][0] in ctx:
        key, op = _BOUNDS[kind]
        message = f"{param} must be {op} {ctx[key]}, got {first.get('input')!r}"
    elif kind == "too_long" and "max_length" in ctx:
        message = f"{param} may hold at most {ctx['max_length']} items"
    else:
        message = f"invalid value for {param}: {first.get('msg', 'invalid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    code = "invalid_value" if kind not in ("json_invalid", "missing") else kind
    return InvalidRequestError(message, param=param, code=code)


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registration
        raise exc
    return error_response(validation_error(exc))


async def handle_thinkgate_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ThinkgateError):  # pragma: no cover - registration
        raise exc
    return error_response(exc)


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registration
        raise exc
    response = error_response(RouteError(str(exc.detail), status_code=exc.status_code))
    response.headers.update(exc.headers or {})
    return response


def internal_error(request: Request, exc: BaseException) -> InternalError:
    """Log ``exc`` with its traceback and the request id; the 500 the client gets names it."""
    request_id = access_record(request).request_id
    log.error(
        "unexpected error on %s %s (request id %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    return InternalError(request_id)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return error_response(internal_error(request, exc))
