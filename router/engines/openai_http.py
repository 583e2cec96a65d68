"""HTTP to an OpenAI-compatible upstream: JSON calls, server-sent events, error mapping.

One pooled, thread-safe `httpx.Client` per engine. Upstream failures become thinkgate errors
so that the edge answers with the right status:

==========================================  ==============================================
upstream                                     raised here
==========================================  ==============================================
400 / 413 / 422 (and other client errors)    `InvalidRequestError` with the upstream's
                                             message and ``param`` (`ContextLengthError`
                                             when the upstream says the context is exceeded)
404                                          `ModelNotFoundError` when it is about ``model``
401 / 403                                    `UpstreamError` (our credentials, not the
                                             client's mistake)
408 / 429 / 502 / 503 / 504, connection      `TierUnavailableError` (the cascade may fall
errors and timeouts                          back to the other tier)
other 5xx, a 200 that is not valid JSON      `UpstreamError` (502)
an error object inside an SSE stream         mapped by its ``type`` / ``code`` as above
==========================================  ==============================================

Example::

    client = UpstreamClient("http://127.0.0.1:8001/v1", name="qwen3", timeout_s=60)
    body = client.post_json("chat/completions", {"model": "qwen3", "messages": [...]})
    for chunk in client.stream_sse("chat/completions", {..., "stream": True}):
        ...
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from router._exceptions import (
    ContextLengthError,
    InvalidRequestError,
    ModelNotFoundError,
    ThinkgateError,
    TierUnavailableError,
    UpstreamError,
)

_CONNECT_TIMEOUT_S = 10.0
_UNAVAILABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
_CONTEXT_HINTS = ("context length", "context_length", "maximum context", "context window")
_UNAVAILABLE_TYPES = frozenset({"service_unavailable", "overloaded", "rate_limit_error"})


_MAX_PARALLEL_CALLS = 8
_CANCEL_POLL_S = 0.05

T = TypeVar("T")
U = TypeVar("U")


def run_parallel(fn: Callable[[T], U], items: Sequence[T]) -> list[U]:
    """``[fn(x) for x in items]``, concurrently when there are several (blocking I/O)."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(len(items), _MAX_PARALLEL_CALLS)) as pool:
        return list(pool.map(fn, items))


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` payloads of a server-sent-event stream, one per event.

    Follows the SSE rules that matter here: comment lines (``:``) and other fields are
    skipped, several ``data:`` lines of one event are joined with newlines, a blank line
    ends an event.
    """
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _error_fields(payload: Any) -> tuple[str, str | None, str | None, Any]:
    """(message, type, param, code) from an OpenAI, vLLM or FastAPI error body."""
    if isinstance(payload, dict):
        inner = payload.get("error", payload)
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail")
            if isinstance(message, str):
                kind, param = inner.get("type"), inner.get("param")
                return (
                    message,
                    kind if isinstance(kind, str) else None,
                    param if isinstance(param, str) else None,
                    inner.get("code"),
                )
        if isinstance(inner, str):
            return inner, None, None, None
        detail = payload.get("detail")
        if detail is not None:
            return json.dumps(detail)[:500], None, None, None
    return str(payload)[:500], None, None, None


def upstream_error(status: int | None, payload: Any, *, name: str) -> ThinkgateError:
    """The thinkgate error for an upstream error ``payload`` (``status`` None: in-band)."""
    message, kind, param, code = _error_fields(payload)
    if status is None:
        if isinstance(code, int):
            status = code
        elif kind == "invalid_request_error":
            status = 400
        elif kind in _UNAVAILABLE_TYPES or code == "tier_unavailable":
            status = 503
        else:
            status = 500
    text = f"upstream {name}: {message}"
    code_text = code if isinstance(code, str) else None
    if status in _UNAVAILABLE_STATUSES:
        return TierUnavailableError(name, f"upstream answered {status}: {message}")
    if status in (401, 403):
        return UpstreamError(f"{text} (check the engine's api_key_env)", code=code_text)
    if status == 404 and (param == "model" or code == "model_not_found"):
        return ModelNotFoundError(text)
    if 400 <= status < 500:
        lowered = message.lower()
        if code == "context_length_exceeded" or any(h in lowered for h in _CONTEXT_HINTS):
            return ContextLengthError(text, param=param or "max_tokens")
        return InvalidRequestError(text, param=param, code=code_text)
    return UpstreamError(text, code=code_text)


class UpstreamCallCancelled(TierUnavailableError):
    """The caller gave up (``cancelled`` was set) and the upstream call was aborted."""


class UpstreamClient:
    """A pooled HTTP client for one upstream base URL (thread-safe, like `httpx.Client`).

    ``timeout_s`` bounds connecting (at most 10 s), each read and each write; a streamed
    call may run longer in all as long as chunks keep coming. A non-streamed call given a
    ``cancelled`` event runs on an ``httpx.AsyncClient`` (its own event loop thread,
    started at the first such call) so that setting the event aborts it: the task is
    cancelled, its connection closed, and the upstream sees the client leave - as it does
    when a stream is closed. A blocking ``httpx.Client`` call cannot be interrupted from
    another thread.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        timeout_s: float,
        api_key: str | None = None,
        max_connections: int = 64,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._settings: dict[str, Any] = {
            "base_url": self.base_url + "/",
            "headers": headers,
            "timeout": httpx.Timeout(timeout_s, connect=min(timeout_s, _CONNECT_TIMEOUT_S)),
            "limits": httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=min(16, max_connections),
            ),
        }
        self._client = httpx.Client(**self._settings)
        self._async: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self._async_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()
        with self._async_lock:
            running, self._async = self._async, None
        if running is not None:
            loop, client = running
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)

    def _async_client(self) -> tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]:
        with self._async_lock:
            if self._async is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name=f"upstream-{self.name}", daemon=True
                ).start()
                self._async = loop, httpx.AsyncClient(**self._settings)
            return self._async

    def _unreachable(self, exc: httpx.TransportError) -> TierUnavailableError:
        what = "timed out" if isinstance(exc, httpx.TimeoutException) else "is unreachable"
        detail = str(exc) or type(exc).__name__
        return TierUnavailableError(self.name, f"upstream {self.base_url} {what}: {detail}")

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            if response.is_success:
                raise UpstreamError(
                    f"upstream {self.name} answered {response.status_code} with a body that "
                    "is not JSON"
                ) from None
            return response.text[:500] or response.reason_phrase

    def get_json(self, path: str) -> Any:
        try:
            response = self._client.get(path)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        payload = self._decode(response)
        if not response.is_success:
            raise upstream_error(response.status_code, payload, name=self.name)
        return payload

    def post_json(
        self, path: str, body: dict[str, Any], *, cancelled: threading.Event | None = None
    ) -> dict[str, Any]:
        """POST ``body``, the JSON answer. Setting ``cancelled`` aborts the call (the
        connection is closed) and raises `UpstreamCallCancelled`."""
        try:
            if cancelled is None:
                response = self._client.post(path, json=body)
            else:
                response = self._post_cancellable(path, body, cancelled)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        payload = self._decode(response)
        if not response.is_success:
            raise upstream_error(response.status_code, payload, name=self.name)
        if not isinstance(payload, dict):
            raise UpstreamError(f"upstream {self.name} answered with a non-object JSON body")
        return payload

    def _post_cancellable(
        self, path: str, body: dict[str, Any], cancelled: threading.Event
    ) -> httpx.Response:
        if cancelled.is_set():
            raise UpstreamCallCancelled(self.name, "the caller left before the call")
        loop, client = self._async_client()
        call = asyncio.run_coroutine_threadsafe(client.post(path, json=body), loop)
        while True:
            try:
                return call.result(timeout=_CANCEL_POLL_S)
            except concurrent.futures.TimeoutError:
                if cancelled.is_set():
                    call.cancel()  # cancels the task: httpx closes its connection
                    raise UpstreamCallCancelled(
                        self.name, "the caller left; the upstream call was aborted"
                    ) from None

    def stream_sse(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The JSON objects of a streamed call, up to ``data: [DONE]``."""
        try:
            with self._client.stream("POST", path, json=body) as response:
                if not response.is_success:
                    response.read()
                    raise upstream_error(
                        response.status_code, self._decode(response), name=self.name
                    )
                for data in iter_sse_data(response.iter_lines()):
                    if data.strip() == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise UpstreamError(
                            f"upstream {self.name} streamed an event that is not JSON: "
                            f"{data[:200]!r}"
                        ) from None
                    if not isinstance(chunk, dict):
                        raise UpstreamError(f"upstream {self.name} streamed a non-object event")
                    if "error" in chunk:
                        raise upstream_error(None, chunk, name=self.name)
                    yield chunk
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
