"""Structured access log: one JSON line per HTTP request on the ``thinkgate.access`` logger.

`AccessLog` is a plain ASGI middleware (it never buffers a body, so streams pass through
untouched). It gives every request an id (the client's ``x-request-id`` when it is a short
token, else a new one), returns it as the ``x-request-id`` response header, and writes the
line when the response is complete — for a stream, when the stream ends or the client goes
away. A chat completion's ``id`` is ``chatcmpl-`` + this id (as vLLM does), so the header
alone names the answer for ``POST /v1/feedback``. Routes add what they know to the
request's `AccessRecord` (`access_record(request)`): the key id, the model asked for and the
one that answered, the route taken, token counts.

The line never holds prompt or completion text, nor the API key (only its key id). With
``gateway.log_prompts: true`` (debug only) the route adds the prompt messages and, for
non-streamed answers, the completion text.

Example line::

    {"event": "access", "request_id": "5f0c...", "method": "POST",
     "path": "/v1/chat/completions", "status": 200, "latency_ms": 41.3,
     "key_id": "key-2a0f6e1b", "model": "auto", "served_model": "tiny-small",
     "route": "small", "stream": false, "prompt_tokens": 12, "completion_tokens": 8,
     "error_code": null, "disconnected": false}
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = "thinkgate.access"
_STATE_KEY = "thinkgate_access"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass
class AccessRecord:
    """What one access-log line says; routes fill in the fields they know."""

    request_id: str
    method: str = ""
    path: str = ""
    status: int = 0
    latency_ms: float = 0.0
    key_id: str | None = None
    model: str | None = None
    served_model: str | None = None
    route: str | None = None
    stream: bool | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error_code: str | None = None
    disconnected: bool = False
    debug: dict[str, Any] = field(default_factory=dict)
    """Only with ``gateway.log_prompts``: prompt messages / completion text."""

    def to_json(self) -> str:
        data = asdict(self)
        if not data["debug"]:
            del data["debug"]
        return json.dumps({"event": "access", **data}, default=str)


def access_record(request: Request) -> AccessRecord:
    """The record of this request (a detached one when `AccessLog` is not installed)."""
    state = request.scope.setdefault("state", {})
    record = state.get(_STATE_KEY)
    if not isinstance(record, AccessRecord):
        record = AccessRecord(request_id=uuid.uuid4().hex)
        state[_STATE_KEY] = record
    return record


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class AccessLog:
    """ASGI middleware writing one `AccessRecord` line per HTTP request.

    ``echo_request_id=False`` behind Ray Serve: Ray's proxy gives every request an
    ``x-request-id`` (the client's, else its own) before the ingress sees it and returns
    that header itself, so thinkgate adopts the id and adds no second header (a client
    would read "id, id")."""

    def __init__(
        self, app: ASGIApp, logger: logging.Logger | None = None, *, echo_request_id: bool = True
    ) -> None:
        self.app = app
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)
        self.echo_request_id = echo_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = AccessRecord(
            request_id=_request_id(scope), method=scope["method"], path=scope["path"]
        )
        scope.setdefault("state", {})[_STATE_KEY] = record
        header = (b"x-request-id", record.request_id.encode("latin-1"))
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
                if self.echo_request_id:
                    message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            if record.status == 0:
                record.status = 500
            raise
        finally:
            record.latency_ms = round((time.perf_counter() - started) * 1000, 3)
            self.logger.info(record.to_json())
