"""Latency the gateway adds over calling the engine directly: in-process and through Serve.

The same greedy chat request (tiny random Qwen3 as the small tier, ``max_tokens`` 1 and 4)
is timed, one at a time, on three paths:

- ``engine``: ``TransformersEngine.generate([request])`` in this process (the floor);
- ``gateway``: HTTP to the in-process gateway (FastAPI + cascade + `LocalTier`, uvicorn);
- ``serve``: HTTP to the Ray Serve application (proxy -> Gateway ingress -> SmallTier
  replica; the replica hands the call straight to the engine's scheduler, no batch wait),
  on local Ray;
- ``serve_floor``: the same hops with nothing of thinkgate in them, in the same Ray
  cluster and run: a bare Serve app (proxy -> a FastAPI ingress deployment that reads the
  JSON body -> one handle call to a second deployment that returns a constant -> JSON).
  Its p50 is what Ray alone costs here; ``serve_added_p50_ms - serve_floor_p50_ms`` is
  what thinkgate adds on the Serve path (gateway, cascade, tier replica, `LocalTier`).

``model: small`` skips the difficulty router; ``model: auto`` includes it (the tiny config's
length baseline; the learned router adds its encoder time on top). Escalation is off. One
torch thread in this process, as a Serve replica with ``num_cpus <= 1`` gets.

Example::

    $ python bench/gateway_overhead.py                      # 200 requests per cell
    $ python bench/gateway_overhead.py --requests 50 --no-serve --json out.json
    $ python bench/gateway_overhead.py --no-serve --no-learning   # decision log off

Prints a Markdown table of p50/p99 per path and the p50/p99 added over ``engine``, then
the Serve floor. ``--json`` writes ``{"rows": [...], "serve_added_p50_ms",
"gateway_added_p50_ms", "serve_floor_p50_ms", "serve_floor_p99_ms",
"serve_above_floor_p50_ms"}`` (the added p50 of ``model: small`` at the shortest
``max_tokens``; the floor's own p50/p99; null for a path not run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "What is 2+2?"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed(call: Callable[[], object], requests: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        call()
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return latencies


def http_call(client: httpx.Client, model: str, max_tokens: int) -> Callable[[], object]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }

    def call() -> object:
        r = client.post("/v1/chat/completions", json=body)
        if r.status_code != 200:
            raise RuntimeError(f"{r.status_code}: {r.text}")
        return r

    return call


@contextlib.contextmanager
def serve_app(config: Any) -> Iterator[str]:
    import ray
    from ray import serve

    sys.path.insert(0, str(ROOT))
    from deployments.app import build_from_config
    from tests.servers import free_port, wait_ready

    port = free_port()
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_from_config(config), name="thinkgate", route_prefix="/")
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, timeout_s=600)
        yield base_url
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
        ray.shutdown()


def floor_app() -> Any:
    """The bare Serve app of ``serve_floor``: proxy -> FastAPI ingress -> one handle call
    to a deployment returning a constant. Built here so that importing this module does
    not import Ray."""
    from fastapi import FastAPI
    from ray import serve
    from ray.serve.handle import DeploymentHandle

    api = FastAPI()

    @serve.deployment(ray_actor_options={"num_cpus": 0.5})
    class Constant:
        async def generate(self, body: dict[str, Any]) -> dict[str, Any]:
            return {"choices": [{"index": 0, "message": {"content": "4"}}]}

    @serve.deployment(ray_actor_options={"num_cpus": 0.5})
    @serve.ingress(api)
    class Ingress:
        def __init__(self, tier: DeploymentHandle[Any]) -> None:
            self.tier = tier

        @api.post("/v1/chat/completions")
        async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
            answer: dict[str, Any] = await self.tier.generate.remote(body)
            return answer

    return Ingress.bind(Constant.bind())  # type: ignore[attr-defined]


def time_serve_floor(base_url: str, requests: int, k: int) -> list[float]:
    """Deploy the floor app beside thinkgate's (route prefix ``/floor``) and time it."""
    from ray import serve

    serve.run(floor_app(), name="floor", route_prefix="/floor")
    try:
        with httpx.Client(base_url=f"{base_url}/floor", timeout=60) as client:
            return timed(http_call(client, "small", k), requests)
    finally:
        serve.delete("floor")


def measure(
    requests: int, max_tokens: list[int], with_serve: bool, learning: bool = True
) -> list[dict[str, Any]]:
    import torch

    # One torch thread in this process, as Ray gives a replica with num_cpus <= 1
    # (OMP_NUM_THREADS); several threads on a busy small machine make every path noisier.
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    from router.engines.base import ChatMessage, GenerationRequest
    from router.engines.factory import create_engine
    from router.sampling import SamplingParams
    from tests.configs import tiny_config
    from tests.servers import running_gateway
    from tests.tiny_models import build_tiny_model

    rows: list[dict[str, Any]] = []

    def add(path: str, model: str, k: int, latencies: list[float]) -> None:
        rows.append(
            {
                "path": path,
                "model": model,
                "max_tokens": k,
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": percentile(latencies, 99) * 1000,
            }
        )

    with tempfile.TemporaryDirectory() as tmp:
        small = build_tiny_model(Path(tmp) / "qwen3", "qwen3")
        strong = build_tiny_model(Path(tmp) / "gemma3", "gemma3")
        config = tiny_config(
            small, strong, escalation={"enabled": False}, learning={"enabled": learning}
        )
        engine = create_engine(config.small.engine)
        engine.load()
        for k in max_tokens:
            params = SamplingParams(max_tokens=k, temperature=0.0)
            request = GenerationRequest([ChatMessage("user", PROMPT)], params)
            add("engine", "-", k, timed(lambda r=request: engine.generate([r]), requests))
        servers: list[tuple[str, Any]] = [("gateway", running_gateway(config))]
        if with_serve:
            servers.append(("serve", serve_app(config)))
        for path, server in servers:
            with server as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
                for model in ("small", "auto"):
                    for k in max_tokens:
                        add(path, model, k, timed(http_call(client, model, k), requests))
                if path == "serve":  # same cluster, same run, right after thinkgate's rows
                    k = min(max_tokens)
                    add("serve_floor", "-", k, time_serve_floor(base_url, requests, k))
    floor = {r["max_tokens"]: r for r in rows if r["path"] == "engine"}
    for r in rows:
        base = floor[r["max_tokens"]]
        if r["path"] == "serve_floor":  # no engine behind it: nothing to subtract
            r["added_p50_ms"], r["added_p99_ms"] = r["p50_ms"], r["p99_ms"]
            continue
        r["added_p50_ms"] = r["p50_ms"] - base["p50_ms"]
        r["added_p99_ms"] = r["p99_ms"] - base["p99_ms"]
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    shortest = min(r["max_tokens"] for r in rows)

    def added(path: str) -> float | None:
        for r in rows:
            if (r["path"], r["model"], r["max_tokens"]) == (path, "small", shortest):
                return round(float(r["added_p50_ms"]), 2)
        return None

    floor = next((r for r in rows if r["path"] == "serve_floor"), None)
    serve_added = added("serve")
    floor_p50 = round(float(floor["p50_ms"]), 2) if floor else None
    return {
        "rows": rows,
        "serve_added_p50_ms": serve_added,
        "gateway_added_p50_ms": added("gateway"),
        "serve_floor_p50_ms": floor_p50,
        "serve_floor_p99_ms": round(float(floor["p99_ms"]), 2) if floor else None,
        "serve_above_floor_p50_ms": (
            round(serve_added - floor_p50, 2)
            if serve_added is not None and floor_p50 is not None
            else None
        ),
    }


def table(rows: list[dict[str, Any]], requests: int) -> str:
    lines = [
        "| path | model | max_tokens | p50 ms | p99 ms | added p50 ms | added p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['path']} | {r['model']} | {r['max_tokens']} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['added_p50_ms']:.1f} | {r['added_p99_ms']:.1f} |"
        )
    notes = f"\n\n{requests} sequential requests per row, after 10 warm-up."
    s = summary(rows)
    if s["serve_floor_p50_ms"] is not None:
        notes += (
            " serve_floor: a bare Serve app with the same hops and no engine (its added "
            f"columns are its own p50/p99). Serve added p50 {s['serve_added_p50_ms']:.1f} ms "
            f"- floor {s['serve_floor_p50_ms']:.1f} ms = **{s['serve_above_floor_p50_ms']:.1f} "
            "ms** thinkgate's own on the Serve path."
        )
    return "\n".join(lines) + notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per row")
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--no-serve", action="store_true", help="skip the Ray Serve path")
    parser.add_argument(
        "--no-learning", action="store_true", help="decision log off (it is on by default)"
    )
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    if args.requests < 1 or min(args.max_tokens) < 1:
        parser.error("--requests and --max-tokens must be >= 1")
    rows = measure(args.requests, args.max_tokens, not args.no_serve, not args.no_learning)
    print(table(rows, args.requests))
    if args.json:
        args.json.write_text(json.dumps(summary(rows), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
