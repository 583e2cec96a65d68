"""Loopback load test of the gateway: N chat requests at concurrency C, a table of results.

Every request must be answered: 200, or 429/503 with a ``Retry-After`` header. A request
that fails to connect, times out, or gets any other status counts as lost.

Example::

    $ python bench/load_test.py --tiny                       # in-process gateway, tiny models
    $ python bench/load_test.py --base-url http://127.0.0.1:8000 --api-key k1 \\
          --requests 2000 --concurrency 64 --max-tokens 4

Prints a Markdown table (for the README): requests, concurrency, answered per status,
lost, p50/p90/p99/max latency, throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    wall_s: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    missing_retry_after: int = 0
    transport_errors: Counter[str] = field(default_factory=Counter)

    @property
    def answered(self) -> int:
        ok = sum(n for status, n in self.statuses.items() if status in (200, 429, 503))
        return ok - self.missing_retry_after

    @property
    def lost(self) -> int:
        return self.requests - self.answered

    def percentile(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        if len(self.latencies_s) == 1:
            return self.latencies_s[0]
        return statistics.quantiles(self.latencies_s, n=100, method="inclusive")[int(q) - 1]

    def table(self) -> str:
        rows = [
            ("requests", str(self.requests)),
            ("concurrency", str(self.concurrency)),
            *((f"HTTP {status}", str(n)) for status, n in sorted(self.statuses.items())),
            ("429/503 without Retry-After", str(self.missing_retry_after)),
            ("transport errors", str(sum(self.transport_errors.values()))),
            ("lost", str(self.lost)),
            ("p50 latency (ms)", f"{self.percentile(50) * 1000:.1f}"),
            ("p90 latency (ms)", f"{self.percentile(90) * 1000:.1f}"),
            ("p99 latency (ms)", f"{self.percentile(99) * 1000:.1f}"),
            ("max latency (ms)", f"{max(self.latencies_s, default=0) * 1000:.1f}"),
            ("throughput (req/s)", f"{self.requests / self.wall_s:.1f}" if self.wall_s else "-"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"| {'metric':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name:<{width}} | {value} |" for name, value in rows]
        return "\n".join(lines)


async def run_load(
    base_url: str,
    *,
    requests: int,
    concurrency: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    timeout_s: float = 120.0,
) -> LoadResult:
    """Send ``requests`` copies of ``body`` with at most ``concurrency`` in flight."""
    result = LoadResult(requests, concurrency)
    gate = asyncio.Semaphore(concurrency)
    # Idle connections expire on the client before uvicorn's 5 s keep-alive closes them on
    # the server: with equal timeouts a request sent on a connection the server is closing
    # fails with a ReadError (the keep-alive race), which is the client's doing, not a loss.
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout_s) as client:

        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.post(
                        "/v1/chat/completions", json=body, headers=headers or {}
                    )
                except httpx.HTTPError as exc:
                    result.transport_errors[type(exc).__name__] += 1
                    return
                result.latencies_s.append(time.perf_counter() - started)
                result.statuses[response.status_code] += 1
                if (
                    response.status_code in (429, 503)
                    and not response.headers.get("retry-after", "").isdigit()
                ):
                    result.missing_retry_after += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        result.wall_s = time.perf_counter() - started
    return result


@contextlib.contextmanager
def _tiny_gateway() -> Iterator[str]:
    """The in-process gateway over two tiny random models (built in a temp folder)."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from tests.configs import tiny_config
    from tests.servers import running_gateway
    from tests.tiny_models import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        small = build_tiny_model(Path(tmp) / "qwen3", "qwen3")
        strong = build_tiny_model(Path(tmp) / "gemma3", "gemma3")
        with running_gateway(tiny_config(small, strong)) as base_url:
            yield base_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--base-url", help="a running gateway, e.g. http://127.0.0.1:8000")
    where.add_argument("--tiny", action="store_true", help="start one with tiny models here")
    parser.add_argument("--api-key", help="sent as Authorization: Bearer")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--model", default="auto")
    parser.add_argument("--max-tokens", type=int, default=4)
    args = parser.parse_args(argv)
    body = {
        "model": args.model,
        "messages": [{"role": "user", "content": "What is 2+2?"}],
        "max_tokens": args.max_tokens,
    }
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    with contextlib.ExitStack() as stack:
        base_url = stack.enter_context(_tiny_gateway()) if args.tiny else args.base_url
        result = asyncio.run(
            run_load(
                base_url,
                requests=args.requests,
                concurrency=args.concurrency,
                body=body,
                headers=headers,
            )
        )
    print(result.table())
    return 0 if result.lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
