"""Bounded loopback load tests (``slow``): every request is answered, none is lost.

"Answered" means 200, or 429/503 with a ``Retry-After`` header; a transport error, a
timeout or any other status counts as lost.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.load_test import LoadResult, run_load
from tests.security.conftest import SecuredGateway

BODY: dict[str, Any] = {
    "model": "auto",
    "messages": [{"role": "user", "content": "What is 2+2?"}],
    "max_tokens": 4,
}
AUTH = {"Authorization": "Bearer load-key"}


def _load(base_url: str, requests: int, concurrency: int) -> LoadResult:
    result = asyncio.run(
        run_load(base_url, requests=requests, concurrency=concurrency, body=BODY, headers=AUTH)
    )
    print()
    print(result.table())
    assert sum(result.statuses.values()) == requests, result.transport_errors
    assert set(result.statuses) <= {200, 429, 503}, result.statuses
    assert result.missing_retry_after == 0
    assert result.lost == 0
    return result


@pytest.mark.slow
def test_2000_requests_at_concurrency_64_are_all_answered(
    secured_gateway: SecuredGateway,
) -> None:
    # the default guard: 64 running, 256 queued, 30 s queue timeout
    with secured_gateway(env={"THINKGATE_API_KEYS": "load-key"}) as base_url:
        result = _load(base_url, 2000, 64)
    assert result.statuses[200] >= 1000


@pytest.mark.slow
def test_a_tight_guard_sheds_load_with_503_and_retry_after(
    secured_gateway: SecuredGateway,
) -> None:
    with secured_gateway(
        env={"THINKGATE_API_KEYS": "load-key"},
        max_concurrent_requests=4,
        max_queued_requests=4,
        queue_timeout_s=1.0,
    ) as base_url:
        result = _load(base_url, 500, 64)
    assert result.statuses[503] > 0 and result.statuses[200] > 0
