"""Throughput through Ray Serve vs the engine alone, for the same concurrent requests.

``--requests`` (48) greedy chat requests for short answers (``--max-tokens`` 8), sent by
``--concurrency`` (16) clients at a time:

- ``engine``: `TransformersEngine` in this process, one thread per client calling
  ``generate([request])`` (the requests share the engine's running batch);
- ``serve``: HTTP ``model: small`` to the Ray Serve application built from the config
  (embedded Gemma 3 270M on both tiers by default; proxy -> Gateway -> SmallTier replica).

Both decode at most the tier's ``max_batch_size`` rows together and use one torch thread.
Tokens/s = completion tokens over the wall time of all requests.

Example::

    $ python bench/serve_throughput.py --json out.json
    $ python bench/serve_throughput.py --config my.yaml --requests 32

``--json`` writes ``serve_tokens_per_s``, ``engine_tokens_per_s``, ``ratio`` (plus details).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = (
    "What is the capital of France?",
    "Name a prime number.",
    "What colour is the sky?",
    "How many legs does a spider have?",
    "What is 7 times 6?",
    "Say hello in Spanish.",
    "Which planet is largest?",
    "What is water made of?",
)


def _question(i: int) -> str:
    return f"{QUESTIONS[i % len(QUESTIONS)]} (#{i})"


def run_engine(config: Any, n: int, concurrency: int, max_tokens: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from router.engines.base import ChatMessage, GenerationRequest
    from router.engines.transformers_engine import TransformersEngine
    from router.sampling import SamplingParams

    engine = TransformersEngine(config.small.engine)
    engine.max_batch_rows = config.small.deployment.max_batch_size
    engine.load()
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)

    def call(i: int) -> tuple[int, float]:
        started = time.perf_counter()
        request = GenerationRequest([ChatMessage("user", _question(i))], params)
        [result] = engine.generate([request])
        return result.completion_tokens, time.perf_counter() - started

    call(0)  # warm-up
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(call, range(n)))
    wall = time.perf_counter() - started
    engine.scheduler.wait_idle()
    return _stats(done, wall)


def run_serve(config: Any, n: int, concurrency: int, max_tokens: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    from gateway_overhead import serve_app

    with serve_app(config) as base_url, httpx.Client(base_url=base_url, timeout=600) as client:

        def call(i: int) -> tuple[int, float]:
            body = {
                "model": "small",
                "messages": [{"role": "user", "content": _question(i)}],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
            started = time.perf_counter()
            r = client.post("/v1/chat/completions", json=body)
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code}: {r.text}")
            return int(r.json()["usage"]["completion_tokens"]), time.perf_counter() - started

        call(0)  # warm-up
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            done = list(pool.map(call, range(n)))
        wall = time.perf_counter() - started
    return _stats(done, wall)


def _stats(done: list[tuple[int, float]], wall: float) -> dict[str, Any]:
    tokens = sum(t for t, _ in done)
    return {
        "tokens": tokens,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall, 2),
        "p50_ms": round(statistics.median(s for _, s in done) * 1000, 1),
        "requests_per_s": round(len(done) / wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="thinkgate YAML (default: the embedded default)")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.max_tokens) < 1:
        parser.error("counts must be >= 1")
    sys.path.insert(0, str(ROOT))
    from router.config import load_config

    config = load_config(args.config)
    engine = run_engine(config, args.requests, args.concurrency, args.max_tokens)
    serve = run_serve(config, args.requests, args.concurrency, args.max_tokens)
    result = {
        "serve_tokens_per_s": serve["tokens_per_s"],
        "engine_tokens_per_s": engine["tokens_per_s"],
        "ratio": round(serve["tokens_per_s"] / engine["tokens_per_s"], 3),
        "serve": serve,
        "engine": engine,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "max_batch_rows": config.small.deployment.max_batch_size,
        "model": config.small.engine.display_name,
    }
    print("| path | tokens | wall s | tokens/s | requests/s | p50 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ("engine", "serve"):
        r = result[name]
        print(
            f"| {name} | {r['tokens']} | {r['wall_s']:.1f} | {r['tokens_per_s']:.1f} "
            f"| {r['requests_per_s']:.2f} | {r['p50_ms']:.0f} |"
        )
    print(
        f"\nserve / engine tokens/s = {result['ratio']:.2f} ({result['model']}, "
        f"{args.requests} requests, {args.concurrency} concurrent, max_tokens "
        f"{args.max_tokens}, greedy)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
