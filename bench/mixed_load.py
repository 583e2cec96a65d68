"""Mixed load: short requests beside long ones, static batching vs continuous batching.

``--requests`` requests (16) arrive evenly over ``--window`` seconds (2 s), alternately
asking for ``--long`` (256) and ``--short`` (16) new tokens, greedy, EOS ignored (fixed work
per request, as in ``bench/batching.py``). Two ways of serving them with the same engine:

- ``static``: what the replica did before continuous batching - ``@serve.batch`` (at most
  ``--max-batch`` 8 requests, 20 ms batch wait) handing each batch to one decoding loop
  (`TransformersEngine.decode_static`) that runs until its longest row ends; a request's
  answer comes back when its batch is done, and a request that arrives meanwhile waits.
- ``continuous``: the engine's scheduler (`router.engines.scheduler`): each request joins
  the running batch at the next decoding step and leaves when it is done.

Reports, per mode: p50/p99 latency of the short requests, p50 time to first token (all
requests), aggregate tokens/s (all generated tokens over first arrival to last answer).
One torch thread (a Serve replica with ``num_cpus: 1``).

Example::

    $ python bench/mixed_load.py --json out.json       # embedded Gemma 3 270M
    $ python bench/mixed_load.py --long 64 --requests 8

``--json`` writes ``{"static": {...}, "continuous": {...}}``, each with ``short_p50_ms``,
``short_p99_ms``, ``ttft_p50_ms``, ``tokens_per_s`` (plus the details).
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batching import FIXED_WORK_TEMPLATE, PROMPTS, fixed_work

BATCH_WAIT_S = 0.02


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Timing:
    def __init__(self, n: int) -> None:
        self.first = [0.0] * n
        self.done = [0.0] * n
        self.tokens = [0] * n


def _requests(n: int, short: int, long: int) -> list[Any]:
    from router.engines.base import ChatMessage, GenerationRequest
    from router.sampling import SamplingParams

    return [
        GenerationRequest(
            [ChatMessage("user", PROMPTS[i % len(PROMPTS)])],
            SamplingParams(max_tokens=long if i % 2 == 0 else short, temperature=0.0),
            f"r{i}",
        )
        for i in range(n)
    ]


def run_static(engine: Any, requests: list[Any], arrivals: list[float], max_batch: int) -> Timing:
    timing = Timing(len(requests))
    waiting: queue.Queue[int] = queue.Queue()
    start = time.perf_counter()

    def arrive() -> None:
        for i, at in enumerate(arrivals):
            time.sleep(max(0.0, start + at - time.perf_counter()))
            waiting.put(i)

    feeder = threading.Thread(target=arrive)
    feeder.start()
    served = 0
    while served < len(requests):
        batch = [waiting.get()]
        deadline = time.perf_counter() + BATCH_WAIT_S
        while len(batch) < max_batch:
            try:
                batch.append(waiting.get(timeout=max(0.0, deadline - time.perf_counter())))
            except queue.Empty:
                break
        specs = [engine._specs(requests[i])[1][0] for i in batch]
        for deltas in engine.decode_static(specs):
            now = time.perf_counter() - start
            for delta in deltas:
                i = batch[delta.row]
                timing.first[i] = timing.first[i] or now
                if delta.completion is not None:
                    timing.tokens[i] = delta.completion.completion_tokens
        ended = time.perf_counter() - start
        for i in batch:  # generate() returned the whole batch at once
            timing.done[i] = ended
        served += len(batch)
    feeder.join()
    for i, at in enumerate(arrivals):
        timing.first[i] -= at
    return timing


def run_continuous(engine: Any, requests: list[Any], arrivals: list[float]) -> Timing:
    timing = Timing(len(requests))
    start = time.perf_counter()

    def client(i: int) -> None:
        time.sleep(max(0.0, start + arrivals[i] - time.perf_counter()))
        for event in engine.stream(requests[i]):
            now = time.perf_counter() - start
            timing.first[i] = timing.first[i] or now - arrivals[i]
            if event.completion is not None:
                timing.tokens[i] = event.completion.completion_tokens
                timing.done[i] = now

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timing


def summarise(
    timing: Timing, requests: list[Any], arrivals: list[float], short: int
) -> dict[str, Any]:
    latency = [d - a for d, a in zip(timing.done, arrivals, strict=True)]
    shorts = [lat for lat, r in zip(latency, requests, strict=True) if r.params.max_tokens == short]
    wall = max(timing.done) - min(arrivals)
    return {
        "short_p50_ms": round(statistics.median(shorts) * 1000, 1),
        "short_p99_ms": round(percentile(shorts, 99) * 1000, 1),
        "ttft_p50_ms": round(statistics.median(timing.first) * 1000, 1),
        "tokens_per_s": round(sum(timing.tokens) / wall, 2),
        "all_p50_ms": round(statistics.median(latency) * 1000, 1),
        "tokens": sum(timing.tokens),
        "wall_s": round(wall, 2),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    from router.config import EngineConfig
    from router.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(
        EngineConfig(
            kind="transformers",
            model=args.model,
            device="cpu",
            chat_template=FIXED_WORK_TEMPLATE,
        )
    )
    engine.max_batch_rows = args.requests
    engine.load()
    fixed_work(engine)
    requests = _requests(args.requests, args.short, args.long)
    arrivals = [i * args.window / args.requests for i in range(args.requests)]
    engine.generate(_requests(2, 2, 2))  # warm-up
    static = run_static(engine, requests, arrivals, args.max_batch)
    continuous = run_continuous(engine, requests, arrivals)
    engine.scheduler.wait_idle()
    return {
        "static": summarise(static, requests, arrivals, args.short),
        "continuous": summarise(continuous, requests, arrivals, args.short),
        "model": engine.model_name,
        "requests": args.requests,
        "window_s": args.window,
        "short_tokens": args.short,
        "long_tokens": args.long,
        "static_max_batch": args.max_batch,
        "torch_threads": torch.get_num_threads(),
    }


def table(r: dict[str, Any]) -> str:
    lines = [
        "| mode | short p50 ms | short p99 ms | TTFT p50 ms | all p50 ms | tokens/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in ("static", "continuous"):
        m = r[mode]
        lines.append(
            f"| {mode} | {m['short_p50_ms']:.0f} | {m['short_p99_ms']:.0f} "
            f"| {m['ttft_p50_ms']:.0f} | {m['all_p50_ms']:.0f} | {m['tokens_per_s']:.1f} |"
        )
    ratio = r["continuous"]["short_p50_ms"] / r["static"]["short_p50_ms"]
    return "\n".join(lines) + (
        f"\n\n{r['model']}, {r['requests']} requests over {r['window_s']} s "
        f"({r['long_tokens']} / {r['short_tokens']} tokens alternately, greedy, EOS ignored), "
        f"{r['torch_threads']} torch thread(s); short p50 continuous/static = {ratio:.2f}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:gemma3-270m", help="engine.model")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--window", type=float, default=2.0, help="arrival window, seconds")
    parser.add_argument("--short", type=int, default=16, help="tokens of a short request")
    parser.add_argument("--long", type=int, default=256, help="tokens of a long request")
    parser.add_argument("--max-batch", type=int, default=8, help="static: @serve.batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if min(args.requests, args.short, args.long, args.max_batch, args.threads) < 1:
        parser.error("counts must be >= 1")
    result = measure(args)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
