"""Labels under load: what shadow answers cost clients, and how many labels a busy service writes.

The in-process gateway over the embedded Gemma 3 270M on vLLM (both tiers share one engine,
the strong tier in thinking mode) gets a steady open-loop load: ``--requests`` chat requests
(``model: small``, ``--max-tokens``), one every ``1 / --rate`` seconds whatever is still
running. The same load runs twice in one process, one engine:

- ``off``: ``learning.shadow_rate: 0`` (decision log only): the client latency floor;
- ``on``: ``shadow_rate: 1.0``: every answer is also answered by the strong tier at vLLM's
  background priority and judged (two next-token reads), as `router.learning.shadow` does
  on vLLM tiers, at most ``--max-in-flight`` (the default 4) at once, the rest skipped.

Reported per phase: client p50 / p99 latency, and labels written per 100 requests (counted
in the decision log's database once the shadows have drained, at most ``--drain-s``), beside
the shadow and judge call outcomes. Before vLLM tiers (skipped whenever a tier was busy) the
issue measured 8 labels from 100 requests with shadow_rate 1.0.

Example::

    $ python bench/shadow_load.py --requests 60 --rate 1 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixed_load import percentile

ROOT = Path(__file__).resolve().parents[1]


def config_for(database: Path, shadow_rate: float, args: argparse.Namespace) -> Any:
    from router.config import config_from_mapping

    engine = {"kind": "vllm", "context_length": 2048, "kv_cache_gib": 1}
    return config_from_mapping(
        {
            "small": {"engine": engine},
            "strong": {"engine": engine, "thinking": True},
            "learning": {
                "database_url": f"sqlite:///{database}",
                "shadow_rate": shadow_rate,
                "shadow_max_tokens": args.shadow_max_tokens,
                "shadow_max_per_minute": 10_000,
                "shadow_max_in_flight": args.max_in_flight,
            },
        },
        source="bench",
    )


async def run_phase(gateway: Any, args: argparse.Namespace, label: str) -> dict[str, Any]:
    import httpx
    from tqdm import tqdm

    transport = httpx.ASGITransport(app=gateway.app)
    latencies: list[float] = []
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as c:

        async def one(i: int) -> None:
            body = {
                "model": "small",
                "messages": [
                    {"role": "user", "content": f"Tell me one fact about the number {i}."}
                ],
                "max_tokens": args.max_tokens,
            }
            started = time.perf_counter()
            response = await c.post("/v1/chat/completions", json=body)
            latencies.append(time.perf_counter() - started)
            statuses.append(response.status_code)

        tasks = []
        for i in tqdm(range(args.requests), desc=f"{label}: sending", unit="req"):
            tasks.append(asyncio.ensure_future(one(i)))
            await asyncio.sleep(1.0 / args.rate)
        await asyncio.gather(*tasks)
    return {
        "requests": args.requests,
        "ok": sum(s == 200 for s in statuses),
        "client_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "client_p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


def count_labels(database: Path) -> int:
    from router.learning.store import LearningStore

    store = LearningStore(f"sqlite:///{database}")
    try:
        return len(store.labels())
    finally:
        store.close()


def outcomes(gateway: Any) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    text = gateway.metrics.exposition().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name in (
                "thinkgate_learning_shadow_calls_total",
                "thinkgate_learning_judge_calls_total",
            ):
                key = f"{name.split('_')[2]}:{'/'.join(sample.labels.values())}"
                out[key] = out.get(key, 0.0) + sample.value
    return {k: v for k, v in out.items() if v}


async def phase(engine: Any, shadow_rate: float, args: argparse.Namespace) -> dict[str, Any]:
    from router.gateway.app import build_local

    folder = Path(tempfile.mkdtemp(prefix="shadow-load-"))
    database = folder / "learning.db"
    config = config_for(database, shadow_rate, args)
    gateway = build_local(config)
    # one vLLM engine for both phases (and both tiers): the load, not a restart, differs
    gateway.small.engine = gateway.strong.engine = engine
    await gateway.start()
    label = "on" if shadow_rate else "off"
    row = await run_phase(gateway, args, label)
    # drained: no shadow in flight (each ends answered, expired, skipped or failed) and the
    # decision-log writer has had time to flush its last batch
    deadline = time.monotonic() + args.drain_s
    shadow = gateway.learning.shadow if gateway.learning is not None else None
    while time.monotonic() < deadline and shadow is not None and shadow.in_flight:
        await asyncio.sleep(1.0)
    await asyncio.sleep(3.0)
    gateway.close()
    labels = count_labels(database)
    row.update(
        shadow_rate=shadow_rate,
        labels=labels,
        labels_per_100=round(100 * labels / args.requests, 1),
        outcomes=outcomes(gateway),
    )
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| shadow_rate | requests (ok) | client p50 ms | client p99 ms | labels / 100 requests |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['shadow_rate']:g} | {r['requests']} ({r['ok']}) | {r['client_p50_ms']} | "
            f"{r['client_p99_ms']} | {r['labels_per_100']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--rate", type=float, default=1.0, help="requests per second")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--shadow-max-tokens", type=int, default=32)
    parser.add_argument("--drain-s", type=float, default=180.0)
    parser.add_argument(
        "--max-in-flight", type=int, default=4, help="learning.shadow_max_in_flight (default 4)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    from router.config import EngineConfig
    from router.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine(EngineConfig(kind="vllm", context_length=2048, kv_cache_gib=1))
    engine.load()

    async def both() -> list[dict[str, Any]]:
        return [await phase(engine, 0.0, args), await phase(engine, 1.0, args)]

    rows = asyncio.run(both())
    engine.shutdown()
    print(table(rows))
    for row in rows:
        print(f"shadow_rate {row['shadow_rate']:g} outcomes: {row['outcomes']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
