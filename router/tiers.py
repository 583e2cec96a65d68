"""Model tiers as the cascade sees them: async, one request at a time.

`TierBackend` is what the cascade calls. `LocalTier` runs an `Engine` in this process (tests,
the in-process gateway); ``deployments.tiers.ServeTier`` calls a Ray Serve deployment
through its handle. The same `Cascade` runs over either.

Example::

    tier = LocalTier("small", create_engine(config.small.engine), timeout_s=60)
    await tier.start()
    result = await tier.generate(GenerationRequest(messages, SamplingParams(max_tokens=8)))
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, cast

from router._exceptions import ThinkgateError, TierUnavailableError
from router.engines.base import (
    ChatMessage,
    Engine,
    GenerationRequest,
    GenerationResult,
    Outcome,
    StreamEvent,
)


class TierBackend(Protocol):
    name: str

    @property
    def model_name(self) -> str: ...

    async def ready(self) -> bool:
        """True once the model is loaded and healthy."""
        ...

    async def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]: ...

    async def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]: ...

    async def engine_stats(self) -> dict[str, float]:
        """The engine's scheduler state (vLLM: KV-cache usage, running and waiting requests,
        prefix-cache queries and hits); empty for engines without one."""
        ...


def stats_of(engine: Engine) -> dict[str, float]:
    """``engine.stats()`` where the engine has it (`VLLMEngine`), else nothing."""
    stats = getattr(engine, "stats", None)
    return dict(stats()) if callable(stats) else {}


_DONE = object()


def is_unavailability(exc: BaseException) -> bool:
    """Whether an exception the engine raised means "this tier cannot serve now" (the
    cascade may fall back, the client may retry) rather than a bug: out of host or device
    memory (``torch.OutOfMemoryError``, matched by name so torch is not imported here)."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"


T = TypeVar("T")


MAX_WAITING_CALLS = 256
"""Engine calls of one tier in flight at once (threads that mostly wait on the engine)."""


class LocalTier:
    """An engine in this process; its blocking calls run in this tier's worker threads, all
    at once (engines are thread-safe: the transformers engine batches concurrent calls at
    every decoding step, the openai engine sends them upstream in parallel).

    Errors: a timeout, a model not loaded yet or out of memory is `TierUnavailableError`
    (503 or a fallback); a `ThinkgateError` passes as it is; any other exception is a bug
    and is raised unchanged (the gateway answers 500 `internal_error` with the request id).
    """

    def __init__(self, name: str, engine: Engine, *, timeout_s: float = 300.0) -> None:
        self.name = name
        self.engine = engine
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._loaded = False
        self._pool = ThreadPoolExecutor(MAX_WAITING_CALLS, thread_name_prefix=f"tier-{name}")
        self._in_flight = 0
        """Engine calls running now (changed on the event loop only)."""

    @property
    def model_name(self) -> str:
        return self.engine.model_name

    def busy(self) -> bool:
        """True while the engine is answering or loading (learning's shadow answers skip a
        busy tier)."""
        return self._in_flight > 0 or self._lock.locked()

    def load(self) -> None:
        with self._lock:
            if not self._loaded:
                self.engine.load()
                self._loaded = True

    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    async def ready(self) -> bool:
        if not self._loaded:
            return False
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self.engine.check_health)
        except Exception:  # a broken model is "not ready", whatever it raised
            return False
        return True

    async def _call(
        self, fn: Callable[..., T], *args: Any, cancel: threading.Event | None = None
    ) -> T:
        """``fn(*args)`` in a worker thread; ``cancel`` is set when the caller gives up (its
        client left, or the timeout), so the engine stops the work at its next step."""
        if not self._loaded:
            raise TierUnavailableError(self.name, "model not loaded yet")
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await asyncio.wait_for(
                loop.run_in_executor(self._pool, fn, *args), timeout=self.timeout_s
            )
        except asyncio.CancelledError:
            if cancel is not None:
                cancel.set()
            raise
        except TimeoutError:
            if cancel is not None:
                cancel.set()
            raise TierUnavailableError(self.name, f"timed out after {self.timeout_s:g}s") from None
        except ThinkgateError:
            raise
        except Exception as exc:
            # a bug is not an outage: only running out of memory makes the tier unavailable;
            # anything else goes up as it is and becomes a 500 `internal_error` at the edge
            if is_unavailability(exc):
                raise TierUnavailableError(self.name, f"{type(exc).__name__}: {exc}") from exc
            raise
        finally:
            self._in_flight -= 1

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        [outcome] = await self.generate_batch([request])
        if isinstance(outcome, ThinkgateError):
            raise outcome
        return outcome

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Outcome]:
        """Several requests in one engine call (dynamic batching feeds this); one outcome
        per request, so a request the engine refuses fails alone."""
        cancel = threading.Event()
        work = functools.partial(self.engine.generate_each, list(requests), cancelled=cancel)
        return await self._call(work, cancel=cancel)

    async def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        return await self._call(self.engine.next_token_logprobs, messages, assistant_prefix, tokens)

    async def engine_stats(self) -> dict[str, float]:
        return stats_of(self.engine) if self._loaded else {}

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        if not self._loaded:
            raise TierUnavailableError(self.name, "model not loaded yet")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancelled = threading.Event()

        def produce() -> None:
            iterator: Iterator[StreamEvent] | None = None
            try:
                iterator = self.engine.stream(request)
                for event in iterator:
                    if cancelled.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except BaseException as exc:  # handed to the consumer, which re-raises
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()  # a closed transformers stream frees its rows at the next step
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = asyncio.ensure_future(loop.run_in_executor(self._pool, produce))
        self._in_flight += 1
        try:
            while True:
                item = await asyncio.wait_for(queue.get(), timeout=self.timeout_s)
                if item is _DONE:
                    break
                if isinstance(item, ThinkgateError):
                    raise item
                if isinstance(item, BaseException):
                    if is_unavailability(item):
                        raise TierUnavailableError(self.name, f"{type(item).__name__}: {item}")
                    raise item
                yield cast(StreamEvent, item)
        except TimeoutError:
            raise TierUnavailableError(self.name, "stream stalled") from None
        finally:
            self._in_flight -= 1
            cancelled.set()
            await asyncio.shield(worker)
