"""Admission control of the gateway: per-key rate limits (429) and an overload guard (503).

`RateLimits` keeps two token buckets per key id: requests per minute (one token per
request, taken at admission) and tokens per minute (prompt + completion tokens, charged
after the answer, when the real count is known). A bucket holds at most one minute's worth
and refills continuously. A request is refused while its key's token bucket is in debt; the
`RateLimitError` carries the seconds until it would be admitted (-> ``Retry-After``).

`ConcurrencyGate` caps the chat requests one gateway process works on at once; up to
``max_queued_requests`` more wait (FIFO) at most ``queue_timeout_s`` for a slot, and
anything beyond is answered at once with `OverloadedError` (503 + ``Retry-After``), so an
overloaded gateway sheds load instead of hanging. A streamed answer holds its slot until
the stream ends or the client goes away.

`check_value_limits` refuses values that parse but that no engine can take (a lone UTF-16
surrogate in a text, a seed beyond 64 bits) with a 400 instead of a tier failure.

Shutdown drains in-flight requests in the server, not here: uvicorn, on SIGTERM, stops
accepting and waits for open requests (``timeout_graceful_shutdown``, unbounded by default);
Ray Serve (``thinkgate serve`` calls ``serve.shutdown()`` on SIGTERM/SIGINT; KubeRay on pod
deletion) lets each replica finish its ongoing requests for ``graceful_shutdown_timeout_s``
(30 s for the tiers in `deployments.app`, Ray's 20 s default for the ingress). A stream
still open at that deadline is closed, which stops its generation like a disconnect.

Example::

    limits = RateLimits(requests_per_minute=60, tokens_per_minute=10_000)
    limits.admit("key-2a0f6e1b")              # or RateLimitError(retry_after_s=...)
    gate = ConcurrencyGate(max_active=64, max_queued=256, queue_timeout_s=30)
    async with gate.slot():
        ...
    limits.charge_tokens("key-2a0f6e1b", usage.total_tokens)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from router._exceptions import InvalidRequestError, OverloadedError, RateLimitError
from router.config import SecurityConfig
from router.protocol.chat import ChatCompletionRequest

Clock = Callable[[], float]
SEED_RANGE = (-(2**63), 2**63 - 1)
"""Seeds accepted: a signed 64-bit integer, as OpenAI documents it."""
_MAX_KEYS = 100_000
"""Buckets kept at most; idle full buckets are dropped first (bounded memory)."""


@dataclass
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate_per_s``; the level may go negative (debt)."""

    capacity: float
    rate_per_s: float
    level: float
    updated: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.level = min(self.capacity, self.level + elapsed * self.rate_per_s)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the level reaches ``amount`` (0 when it already has)."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing / self.rate_per_s


class RateLimits:
    """Per-key requests/min and tokens/min token buckets. Thread-safe, no I/O."""

    def __init__(
        self,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.clock = clock
        self._requests: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()
        self._tokens: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, security: SecurityConfig) -> RateLimits:
        return cls(
            requests_per_minute=security.requests_per_minute,
            tokens_per_minute=security.tokens_per_minute,
        )

    @property
    def enabled(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None

    def _bucket(
        self, table: collections.OrderedDict[str, TokenBucket], key: str, per_minute: int
    ) -> TokenBucket:
        now = self.clock()
        bucket = table.get(key)
        if bucket is None:
            if len(table) >= _MAX_KEYS:
                table.popitem(last=False)
            bucket = TokenBucket(float(per_minute), per_minute / 60.0, float(per_minute), now)
            table[key] = bucket
        else:
            table.move_to_end(key)
        bucket.refill(now)
        return bucket

    def admit(self, key: str) -> None:
        """Take one request for ``key``, or raise `RateLimitError` with the wait."""
        with self._lock:
            tokens = None
            if self.tokens_per_minute is not None:
                tokens = self._bucket(self._tokens, key, self.tokens_per_minute)
                if tokens.level <= 0:
                    raise RateLimitError(
                        f"tokens per minute limit ({self.tokens_per_minute}) reached for "
                        "this API key",
                        retry_after_s=tokens.wait_for(1.0),
                    )
            if self.requests_per_minute is not None:
                requests = self._bucket(self._requests, key, self.requests_per_minute)
                if requests.level < 1:
                    raise RateLimitError(
                        f"requests per minute limit ({self.requests_per_minute}) reached "
                        "for this API key",
                        retry_after_s=requests.wait_for(1.0),
                    )
                requests.level -= 1

    def charge_tokens(self, key: str, tokens: int) -> None:
        """Charge the prompt + completion tokens of an answer to ``key`` (may go in debt)."""
        if self.tokens_per_minute is None or tokens <= 0:
            return
        with self._lock:
            bucket = self._bucket(self._tokens, key, self.tokens_per_minute)
            # Debt is capped at one minute's worth, so one huge answer blocks a key for at
            # most a minute.
            bucket.level = max(-bucket.capacity, bucket.level - tokens)


class ConcurrencyGate:
    """At most ``max_active`` holders; ``max_queued`` more wait FIFO, the rest get a 503.

    One instance per gateway process (one event loop).
    """

    def __init__(
        self,
        *,
        max_active: int,
        max_queued: int,
        queue_timeout_s: float,
        retry_after_s: float = 1.0,
    ) -> None:
        if max_active < 1:
            raise ValueError(f"max_active must be >= 1, got {max_active}")
        if max_queued < 0:
            raise ValueError(f"max_queued must be >= 0, got {max_queued}")
        if not queue_timeout_s > 0:
            raise ValueError(f"queue_timeout_s must be > 0, got {queue_timeout_s}")
        self.max_active = max_active
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_s
        self.retry_after_s = retry_after_s
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @classmethod
    def from_config(cls, security: SecurityConfig) -> ConcurrencyGate:
        return cls(
            max_active=security.max_concurrent_requests,
            max_queued=security.max_queued_requests,
            queue_timeout_s=security.queue_timeout_s,
            retry_after_s=security.overload_retry_after_s,
        )

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def _overloaded(self, why: str) -> OverloadedError:
        return OverloadedError(
            f"the gateway is overloaded ({why}); retry after the Retry-After delay",
            retry_after_s=self.retry_after_s,
        )

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if needed; `OverloadedError` when full."""
        if self.active < self.max_active and not self._waiters:
            self.active += 1
            return
        if len(self._waiters) >= self.max_queued:
            raise self._overloaded(f"{self.active} requests running, {self.queued} queued")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=self.queue_timeout_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as we gave up: hand the slot on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise self._overloaded(
                    f"no slot within {self.queue_timeout_s:g}s, {self.queued} queued"
                ) from None
            raise

    def release(self) -> None:
        """Give a slot back; the oldest waiter (if any) gets it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on; `active` is unchanged
                return
        self.active = max(0, self.active - 1)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


def _encodable(text: str | None, param: str) -> None:
    if text is None:
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            f"{param} is not valid Unicode text (unpaired surrogate at position {exc.start})",
            param=param,
        ) from None


def check_value_limits(req: ChatCompletionRequest) -> None:
    """Refuse values that parse as JSON but no engine can take: a lone UTF-16 surrogate
    (``"\\ud800"``) in any text, a seed beyond 64 bits. Raises `InvalidRequestError`."""
    low, high = SEED_RANGE
    if req.seed is not None and not low <= req.seed <= high:
        raise InvalidRequestError(
            f"seed must be a signed 64-bit integer, got {req.seed}", param="seed"
        )
    for i, message in enumerate(req.messages):
        if isinstance(message.content, list):
            for j, part in enumerate(message.content):
                _encodable(part.text, f"messages[{i}].content[{j}].text")
        else:
            _encodable(message.content, f"messages[{i}].content")
        _encodable(message.name, f"messages[{i}].name")
        _encodable(message.reasoning_content, f"messages[{i}].reasoning_content")
    stops = [req.stop] if isinstance(req.stop, str) else req.stop or []
    for i, stop in enumerate(stops):
        _encodable(stop, "stop" if isinstance(req.stop, str) else f"stop[{i}]")
    _encodable(req.user, "user")
