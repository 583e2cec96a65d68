"""A client that goes away stops the work it asked for.

Streaming: the closed connection closes the SSE generator, which closes the tier stream,
which sets `LocalTier.stream`'s cancelled flag; the engine's token loop stops at the next
step. Counted here on the real engine, wrapped so the tokens it yields are counted.
Non-streaming: the awaiting task is cancelled and logged as a 499.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.engines.base import Engine, GenerationRequest, StreamEvent
from router.gateway.access_log import ACCESS_LOGGER
from router.gateway.app import build_local
from tests.configs import tiny_config
from tests.servers import serve_app

MAX_TOKENS = 200  # the endless model emits exactly this many tokens when left alone


class CountingEngine:
    """The real engine, with a count of the stream events it produced (one per token)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.events = 0
        self.closed = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        self.events = 0
        self.closed.clear()
        try:
            for event in self.engine.stream(request):
                self.events += 1
                yield event
        finally:
            self.closed.set()


@pytest.fixture(scope="module")
def served(never_close_thinking_dir: Path, tiny_gemma3_dir: Path) -> Iterator[tuple[str, Any]]:
    gateway = build_local(tiny_config(never_close_thinking_dir, tiny_gemma3_dir))
    counting = CountingEngine(gateway.small.engine)
    gateway.small.engine = counting  # type: ignore[assignment]
    asyncio.run(gateway.start())
    with serve_app(gateway.app) as base_url:
        yield base_url, counting


def _body(stream: bool) -> dict[str, Any]:
    return {
        "model": "small",
        "messages": [{"role": "user", "content": "go on"}],
        "max_tokens": MAX_TOKENS,
        "stream": stream,
    }


def test_streaming_disconnect_stops_the_engine_early(served: tuple[str, Any]) -> None:
    base_url, counting = served
    url = f"{base_url}/v1/chat/completions"
    started = time.monotonic()
    with httpx.stream("POST", url, json=_body(True), timeout=60) as response:
        lines = [line for line in response.iter_lines() if line]
    full_s = time.monotonic() - started
    assert lines[-1] == "data: [DONE]"
    full = counting.events
    assert full >= MAX_TOKENS - 1, full

    with httpx.stream("POST", url, json=_body(True), timeout=60) as response:
        for _, _line in zip(range(3), response.iter_lines(), strict=False):
            pass
    # leaving the block closed the connection mid-stream
    assert counting.closed.wait(timeout=max(5.0, full_s)), "engine stream never closed"
    cut = counting.events
    print(f"\nfull stream: {full} tokens in {full_s:.2f}s; after disconnect: {cut} tokens")
    assert cut < full / 2, (cut, full)
    # and the tier is free again at once (the engine loop is not still running)
    quick = httpx.post(url, json={**_body(False), "max_tokens": 2}, timeout=60)
    assert quick.status_code == 200


def test_non_streaming_disconnect_cancels_the_request(
    served: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    base_url, _ = served
    caplog.set_level("INFO", logger=ACCESS_LOGGER)
    url = f"{base_url}/v1/chat/completions"
    with pytest.raises(httpx.ReadTimeout):  # 200 tokens can take as little as 0.25 s here
        httpx.post(url, json={**_body(False), "max_tokens": MAX_TOKENS}, timeout=0.1)
    deadline = time.monotonic() + 30
    lines: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not lines:
        lines = [
            json.loads(r.getMessage())
            for r in caplog.records
            if r.name == ACCESS_LOGGER and '"disconnected": true' in r.getMessage()
        ]
        time.sleep(0.05)
    assert lines, "no access-log line for the abandoned request"
    assert lines[0]["status"] == 499 and lines[0]["stream"] is False
    # the gateway keeps serving
    assert httpx.post(url, json={**_body(False), "max_tokens": 2}, timeout=60).status_code == 200
