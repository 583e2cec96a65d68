"""Per-key rate limits (429 + Retry-After) and the overload guard (503 + Retry-After)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import httpx
import pytest

from router._exceptions import OverloadedError, RateLimitError
from router.gateway.limits import ConcurrencyGate, RateLimits
from tests.security.conftest import CHAT, SecuredGateway


class Clock:
    """A settable clock for the token buckets (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ----- token buckets -------------------------------------------------------------------------
def test_requests_per_minute_bucket_refills_continuously() -> None:
    clock = Clock()
    limits = RateLimits(requests_per_minute=3, clock=clock)
    for _ in range(3):
        limits.admit("a")
    with pytest.raises(RateLimitError) as info:
        limits.admit("a")
    assert info.value.status_code == 429
    assert info.value.retry_after_s == pytest.approx(20.0)  # one request per 20 s
    limits.admit("b")  # buckets are per key
    clock.now += 20.0
    limits.admit("a")
    with pytest.raises(RateLimitError):
        limits.admit("a")


def test_tokens_per_minute_are_charged_after_the_answer() -> None:
    clock = Clock()
    limits = RateLimits(tokens_per_minute=600, clock=clock)  # 10 tokens/s
    limits.admit("a")
    limits.charge_tokens("a", 650)  # into debt by 50 tokens
    with pytest.raises(RateLimitError) as info:
        limits.admit("a")
    assert info.value.retry_after_s == pytest.approx(5.1)  # to get back above 0
    clock.now += 5.2
    limits.admit("a")


def test_debt_is_capped_at_one_minute() -> None:
    clock = Clock()
    limits = RateLimits(tokens_per_minute=60, clock=clock)
    limits.charge_tokens("a", 10**9)
    with pytest.raises(RateLimitError) as info:
        limits.admit("a")
    assert info.value.retry_after_s <= 121


def test_no_limits_configured_admits_everything() -> None:
    limits = RateLimits()
    assert not limits.enabled
    for _ in range(10_000):
        limits.admit("a")
    limits.charge_tokens("a", 10**9)
    limits.admit("a")


@pytest.mark.parametrize("bad", [0, -1])
def test_rate_arguments_are_checked(bad: int) -> None:
    with pytest.raises(ValueError, match="requests_per_minute must be >= 1"):
        RateLimits(requests_per_minute=bad)


# ----- concurrency gate ----------------------------------------------------------------------
def test_gate_admits_queues_then_sheds() -> None:
    async def scenario() -> None:
        gate = ConcurrencyGate(max_active=2, max_queued=1, queue_timeout_s=5, retry_after_s=3)
        await gate.acquire()
        await gate.acquire()
        waiting = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0)
        assert gate.queued == 1 and not waiting.done()
        with pytest.raises(OverloadedError) as info:
            await gate.acquire()  # queue full: refused at once
        assert info.value.status_code == 503 and info.value.retry_after_s == 3
        gate.release()  # the slot passes to the waiter
        await asyncio.wait_for(waiting, 1)
        assert gate.active == 2 and gate.queued == 0
        gate.release()
        gate.release()
        assert gate.active == 0

    asyncio.run(scenario())


def test_gate_queue_times_out_with_503_and_cancellation_frees_the_place() -> None:
    async def scenario() -> None:
        gate = ConcurrencyGate(max_active=1, max_queued=2, queue_timeout_s=0.05)
        async with gate.slot():
            started = time.monotonic()
            with pytest.raises(OverloadedError, match="no slot within"):
                await gate.acquire()
            assert time.monotonic() - started < 1
            cancelled = asyncio.ensure_future(gate.acquire())
            await asyncio.sleep(0)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            assert gate.queued == 0
        assert gate.active == 0
        async with gate.slot():  # still usable
            assert gate.active == 1

    asyncio.run(scenario())


# ----- over HTTP -----------------------------------------------------------------------------
def _retry_after(response: httpx.Response) -> int:
    value = response.headers["retry-after"]
    assert value.isdigit() and int(value) >= 1, value
    return int(value)


def test_requests_per_minute_gives_429_with_retry_after(secured_gateway: SecuredGateway) -> None:
    with secured_gateway(env={"THINKGATE_API_KEYS": "k1,k2"}, requests_per_minute=2) as url:
        k1 = {"Authorization": "Bearer k1"}
        for _ in range(2):
            assert httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=k1).is_success
        limited = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=k1)
        assert limited.status_code == 429, limited.text
        assert 1 <= _retry_after(limited) <= 30
        error = limited.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
        other = httpx.post(
            f"{url}/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer k2"}
        )
        assert other.status_code == 200  # the limit is per key


def test_tokens_per_minute_gives_429_after_a_big_answer(secured_gateway: SecuredGateway) -> None:
    # The endless small model never stops before max_tokens: the answer is 30 tokens for
    # sure (a sampled tiny model could stop at EOS under the 20-token budget).
    with secured_gateway(
        env={"THINKGATE_API_KEYS": "k1"}, tokens_per_minute=20, endless_small=True
    ) as url:
        k1 = {"Authorization": "Bearer k1"}
        body = {**CHAT, "max_tokens": 30}
        first = httpx.post(f"{url}/v1/chat/completions", json=body, headers=k1)
        assert first.status_code == 200
        assert first.json()["usage"]["total_tokens"] > 20
        limited = httpx.post(f"{url}/v1/chat/completions", json=body, headers=k1)
        assert limited.status_code == 429
        _retry_after(limited)


def test_overload_gives_503_with_retry_after_not_a_hang(secured_gateway: SecuredGateway) -> None:
    endless = {**CHAT, "max_tokens": 400, "stream": True}
    with secured_gateway(
        endless_small=True,
        max_concurrent_requests=1,
        max_queued_requests=0,
        overload_retry_after_s=2,
    ) as url:
        with (
            httpx.Client(timeout=60) as client,
            client.stream("POST", f"{url}/v1/chat/completions", json=endless) as holder,
        ):
            assert holder.status_code == 200
            lines = holder.iter_lines()
            next(lines)  # the stream is running and holds the only slot

            def quick(_: int) -> httpx.Response:
                return httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=30)

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                started = time.monotonic()
                answers = list(pool.map(quick, range(4)))
                elapsed = time.monotonic() - started
            assert [a.status_code for a in answers] == [503] * 4, [a.text for a in answers]
            assert elapsed < 10
            for answer in answers:
                assert _retry_after(answer) == 2
                assert answer.json()["error"]["code"] == "overloaded"
            rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]"
        # the slot is free again once the stream ended
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=30).status_code == 200


def test_a_queued_request_waits_for_the_slot(secured_gateway: SecuredGateway) -> None:
    with secured_gateway(
        endless_small=True, max_concurrent_requests=1, max_queued_requests=8
    ) as url:
        body = {**CHAT, "max_tokens": 40}
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(
                    lambda _: httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60),
                    range(6),
                )
            )
        assert [a.status_code for a in answers] == [200] * 6
