"""Bounded loopback load test: 2,000 requests at concurrency 64, none lost (``slow``)."""

from __future__ import annotations

import asyncio

import pytest

from bench.load_test import run_load
from tests.security.conftest import SecuredGateway

REQUESTS, CONCURRENCY = 2000, 64


@pytest.mark.slow
def test_every_request_is_answered_under_load(secured_gateway: SecuredGateway) -> None:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "What is 2+2?"}],
        "max_tokens": 4,
    }
    # The default guard (64 running, 256 queued, 30 s queue timeout) and a per-key request
    # rate that the burst exceeds, so both 200s and 429s are exercised.
    with secured_gateway(
        env={"THINKGATE_API_KEYS": "load-key"}, requests_per_minute=1500
    ) as base_url:
        result = asyncio.run(
            run_load(
                base_url,
                requests=REQUESTS,
                concurrency=CONCURRENCY,
                body=body,
                headers={"Authorization": "Bearer load-key"},
            )
        )
    print()
    print(result.table())
    assert sum(result.statuses.values()) == REQUESTS, result.transport_errors
    assert set(result.statuses) <= {200, 429, 503}, result.statuses
    assert result.missing_retry_after == 0
    assert result.lost == 0
    assert result.statuses[200] >= 1000
