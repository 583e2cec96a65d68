"""The embedded default on the transformers engine and on vLLM: same prompts, same threads.

One process runs both engines one after the other (transformers first; it is deleted, then
vLLM is loaded, measured and shut down), each with ``embedded:gemma3-270m`` in the dtype it
serves with (transformers: float32 on CPU; vLLM: bfloat16), the plain prompt template of
``bench/batching.py`` and greedy decoding. Every request generates exactly its
``max_tokens``: EOS is ignored (transformers: `batching.fixed_work`; vLLM: ``ignore_eos``
on each request's sampling parameters); the counts below are the tokens each engine really
returned. Per engine:

- ``tokens_per_s_16`` / ``tokens_per_s_64``: 16 / 64 requests sent at once (a thread each,
  streaming), ``--max-tokens`` (64) new tokens each; all tokens over first send to last
  answer; ``ttft_p50_ms_16``: median time to the first streamed event of the 16;
- ``short_p50_ms_mixed``: the workload of ``bench/mixed_load.py`` (16 requests arriving over
  2 s, 256 and 16 tokens alternately): p50 latency of the short requests;
- ``rss_mb``: resident memory of this process and all its children (vLLM's engine core is
  a child process) after the engine's workloads, via psutil; ``pss_mb`` the same sum of
  PSS (shared pages split between the processes, not counted in each); ``rss_before_mb``
  is the tree before the engine was loaded.

Threads (``--threads``, default 2 = the cores of the shared dev machine): transformers gets
``torch.set_num_threads(N)``; vLLM's CPU worker gets ``VLLM_CPU_OMP_THREADS_BIND=0-(N-1)``
(N OpenMP threads pinned to cores 0..N-1; vLLM's worker then refuses
``torch.set_num_threads``), and this process's torch threads are N as well. vLLM runs with
``context_length`` 2048 and a 1 GiB KV cache (``--kv-cache-gib``).

Example::

    $ python bench/engine_compare.py --json out.json
    $ python bench/engine_compare.py --threads 1 --only vllm

``--json`` writes ``{"transformers": {...}, "vllm": {...}}`` plus ``threads`` and the load
average before and after; prints a Markdown table and the vLLM/transformers ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batching import FIXED_WORK_TEMPLATE, PROMPTS, fixed_work
from mixed_load import _requests as mixed_requests
from mixed_load import run_continuous, summarise

MODEL = "embedded:gemma3-270m"
KINDS = ("transformers", "vllm")


def tree_memory_mb() -> tuple[float, float]:
    """(RSS, PSS) summed over this process and every descendant (vLLM's engine core and its
    helpers). RSS counts pages shared between the processes (torch's libraries) once per
    process; PSS splits them, so its sum is the tree's real footprint."""
    import psutil

    rss = pss = 0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            info = process.memory_full_info()
        except psutil.Error:  # a helper that exited meanwhile
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss / 2**20, pss / 2**20


def _requests(n: int, max_tokens: int) -> list[Any]:
    from router.engines.base import ChatMessage, GenerationRequest
    from router.sampling import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    return [
        GenerationRequest([ChatMessage("user", PROMPTS[i % len(PROMPTS)])], params, f"c{i}")
        for i in range(n)
    ]


def concurrent(engine: Any, n: int, max_tokens: int) -> dict[str, Any]:
    """``n`` streamed requests released together; tokens/s over the whole, TTFT p50."""
    requests = _requests(n, max_tokens)
    first = [0.0] * n
    done = [0.0] * n
    tokens = [0] * n
    gate = threading.Barrier(n + 1)
    start = 0.0

    def client(i: int) -> None:
        gate.wait()
        for event in engine.stream(requests[i]):
            now = time.perf_counter()
            first[i] = first[i] or now
            if event.completion is not None:
                tokens[i] = event.completion.completion_tokens
                done[i] = now

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    gate.wait()
    for t in threads:
        t.join()
    wall = max(done) - start
    return {
        "tokens_per_s": round(sum(tokens) / wall, 2),
        "ttft_p50_ms": round(statistics.median(f - start for f in first) * 1000, 1),
        "tokens": sum(tokens),
        "wall_s": round(wall, 2),
    }


def mixed(engine: Any, args: argparse.Namespace) -> dict[str, Any]:
    requests = mixed_requests(args.mixed_requests, args.short, args.long)
    arrivals = [i * args.window / args.mixed_requests for i in range(args.mixed_requests)]
    timing = run_continuous(engine, requests, arrivals)
    return summarise(timing, requests, arrivals, args.short)


def workloads(engine: Any, args: argparse.Namespace) -> dict[str, Any]:
    engine.generate(_requests(2, 4))  # warm-up: allocator, kernels
    c16 = concurrent(engine, 16, args.max_tokens)
    c64 = concurrent(engine, 64, args.max_tokens)
    mix = mixed(engine, args)
    rss, pss = tree_memory_mb()
    return {
        "tokens_per_s_16": c16["tokens_per_s"],
        "tokens_per_s_64": c64["tokens_per_s"],
        "ttft_p50_ms_16": c16["ttft_p50_ms"],
        "short_p50_ms_mixed": mix["short_p50_ms"],
        "rss_mb": round(rss, 1),
        "pss_mb": round(pss, 1),
        "concurrent_16": c16,
        "concurrent_64": c64,
        "mixed": mix,
    }


def run_transformers(args: argparse.Namespace) -> dict[str, Any]:
    from router.config import EngineConfig
    from router.engines.transformers_engine import TransformersEngine

    rss_before, _ = tree_memory_mb()
    engine = TransformersEngine(
        EngineConfig(
            kind="transformers", model=args.model, device="cpu", chat_template=FIXED_WORK_TEMPLATE
        )
    )
    engine.max_batch_rows = 64
    started = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - started
    fixed_work(engine)
    result = workloads(engine, args)
    engine.scheduler.wait_idle()
    del engine
    gc.collect()
    return {**result, "rss_before_mb": round(rss_before, 1), "load_s": round(load_s, 1)}


def vllm_fixed_work(engine: Any) -> None:
    """Benchmark only: every vLLM request ignores EOS, as `batching.fixed_work` does."""
    prepare = engine._prepare

    def fixed(request: Any) -> Any:
        prompt, specs, vparams = prepare(request)
        for params in vparams:
            params.ignore_eos = True
        return prompt, specs, vparams

    engine._prepare = fixed


def run_vllm(args: argparse.Namespace) -> dict[str, Any]:
    from router.config import EngineConfig
    from router.engines.vllm_engine import VLLMEngine

    rss_before, _ = tree_memory_mb()
    engine = VLLMEngine(
        EngineConfig(
            kind="vllm",
            model=args.model,
            device="cpu",
            chat_template=FIXED_WORK_TEMPLATE,
            context_length=2048,
            kv_cache_gib=args.kv_cache_gib,
            max_num_seqs=64,
        )
    )
    started = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - started
    vllm_fixed_work(engine)
    try:
        result = workloads(engine, args)
    finally:
        engine.shutdown()
    return {**result, "rss_before_mb": round(rss_before, 1), "load_s": round(load_s, 1)}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    # Both engines get N threads: torch's intra-op pool here (transformers), N OpenMP
    # threads pinned to cores 0..N-1 in vLLM's CPU worker (read when it starts).
    torch.set_num_threads(args.threads)
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = "0" if args.threads == 1 else f"0-{args.threads - 1}"
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = f"{args.kv_cache_gib:g}"
    out: dict[str, Any] = {
        "model": args.model,
        "threads": args.threads,
        "vllm_cpu_omp_threads_bind": os.environ["VLLM_CPU_OMP_THREADS_BIND"],
        "max_tokens": args.max_tokens,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    runners = {"transformers": run_transformers, "vllm": run_vllm}
    for kind in args.only or KINDS:
        out[kind] = runners[kind](args)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def table(r: dict[str, Any]) -> str:
    kinds = [k for k in KINDS if k in r]
    lines = [
        "| engine | tok/s 16 | tok/s 64 | TTFT p50 ms 16 | short p50 ms mixed | RSS MB "
        "| PSS MB | load s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        m = r[kind]
        lines.append(
            f"| {kind} | {m['tokens_per_s_16']:.1f} | {m['tokens_per_s_64']:.1f} "
            f"| {m['ttft_p50_ms_16']:.0f} | {m['short_p50_ms_mixed']:.0f} "
            f"| {m['rss_mb']:.0f} | {m['pss_mb']:.0f} | {m['load_s']:.1f} |"
        )
    notes = [
        f"\n{r['model']}, greedy, {r['max_tokens']} new tokens per concurrent request, EOS "
        f"ignored, {r['threads']} thread(s) each "
        f"(VLLM_CPU_OMP_THREADS_BIND={r['vllm_cpu_omp_threads_bind']}); load average "
        f"before {r['load_average_before']}, after {r['load_average_after']}."
    ]
    if len(kinds) == 2:
        t, v = r["transformers"], r["vllm"]
        notes.append(
            f"vLLM/transformers: tokens/s 16 {v['tokens_per_s_16'] / t['tokens_per_s_16']:.2f}x, "
            f"64 {v['tokens_per_s_64'] / t['tokens_per_s_64']:.2f}x; short p50 mixed "
            f"{v['short_p50_ms_mixed'] / t['short_p50_ms_mixed']:.2f}x."
        )
    return "\n".join(lines) + "\n".join(notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help="engine.model for both engines")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per engine")
    parser.add_argument("--max-tokens", type=int, default=64, help="concurrent: new tokens")
    parser.add_argument("--mixed-requests", type=int, default=16, help="mixed: requests")
    parser.add_argument("--window", type=float, default=2.0, help="mixed: arrival window, s")
    parser.add_argument("--short", type=int, default=16, help="mixed: short request tokens")
    parser.add_argument("--long", type=int, default=256, help="mixed: long request tokens")
    parser.add_argument("--kv-cache-gib", type=float, default=1.0, help="vLLM KV cache, GiB")
    parser.add_argument("--only", choices=KINDS, action="append", help="run only this engine")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if min(args.threads, args.max_tokens, args.mixed_requests, args.short, args.long) < 1:
        parser.error("counts must be >= 1")
    result = measure(args)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
