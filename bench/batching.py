"""Dynamic batching pays: N requests generated as one batch vs the same N one after another.

Runs the transformers engine in this process (what one Serve replica does: concurrent
requests share the engine's running batch, `router.engines.scheduler`; here all N are handed
to ``TransformersEngine.generate`` at once). Greedy decoding, and by
default every row generates exactly ``max_tokens`` tokens: the engine's end-of-sequence ids
are cleared for the benchmark (as ``ignore_eos`` would) and prompts are rendered with a plain
template (`FIXED_WORK_TEMPLATE`, so the base-model fallback template's stop strings do not
apply). The batched and the sequential run then do the same work and generate the same tokens
(the script checks the texts agree). ``--natural-eos`` keeps the engine as it serves: rows
end on EOS or stop strings, and a batch runs until its longest row ends, which is what a
real mixed batch costs. One torch thread by default, as a Serve replica with
``num_cpus: 1`` gets (Ray sets ``OMP_NUM_THREADS`` from ``num_cpus``).

Example::

    $ python bench/batching.py --json out.json            # embedded Gemma 3 270M, batch 8
    $ python bench/batching.py --model path/to/model --batch 16 --max-tokens 128

Prints a Markdown table; ``--json`` writes ``batch``, ``sequential_tok_s``,
``batched_tok_s``, ``speedup`` (plus the details).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

PROMPTS = (
    "Count from 1 to 100, separated by commas.",
    "List the months of the year, one per line, with a short note on each.",
    "Write a long story about a lighthouse keeper and a storm.",
    "Explain step by step how to bake bread at home.",
    "Name as many animals as you can, separated by commas.",
    "Describe the water cycle in detail.",
    "Write a poem about autumn leaves, at least ten lines.",
    "Explain how a bicycle works, part by part.",
)


FIXED_WORK_TEMPLATE = (
    "{{ bos_token if bos_token else '' }}{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
)


def _requests(batch: int, max_tokens: int) -> list[Any]:
    from router.engines.base import ChatMessage, GenerationRequest
    from router.sampling import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    return [
        GenerationRequest([ChatMessage("user", PROMPTS[i % len(PROMPTS)])], params, f"r{i}")
        for i in range(batch)
    ]


def fixed_work(engine: Any) -> None:
    """Benchmark only: rows never end on EOS (like ``ignore_eos``), so every row generates
    exactly its ``max_tokens`` - in the scheduler and in the static loop alike."""
    import dataclasses

    engine._eos = frozenset()
    scheduler = engine.scheduler
    scheduler.options = dataclasses.replace(scheduler.options, eos_ids=frozenset())


def _run(engine: Any, requests: list[Any], *, batched: bool) -> tuple[float, int, list[str]]:
    started = time.perf_counter()
    results = engine.generate(requests) if batched else [engine.generate([r])[0] for r in requests]
    elapsed = time.perf_counter() - started
    tokens = sum(c.completion_tokens for r in results for c in r.choices)
    return elapsed, tokens, [r.choices[0].text for r in results]


def measure(
    model: str,
    batch: int,
    max_tokens: int,
    rounds: int,
    threads: int | None = 1,
    natural_eos: bool = False,
) -> dict[str, Any]:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)

    from router.config import EngineConfig
    from router.engines.factory import create_engine

    template = None if natural_eos else FIXED_WORK_TEMPLATE
    engine = create_engine(
        EngineConfig(kind="transformers", model=model, device="cpu", chat_template=template)
    )
    started = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - started
    if not natural_eos:
        fixed_work(engine)
    requests = _requests(batch, max_tokens)
    _run(engine, requests[:2], batched=True)  # warm-up: allocator, kernels
    sequential, batched = [], []
    tokens_seq = tokens_batch = 0
    texts_seq: list[str] = []
    texts_batch: list[str] = []
    for _ in range(rounds):  # interleaved, so background load hits both alike
        s, tokens_seq, texts_seq = _run(engine, requests, batched=False)
        b, tokens_batch, texts_batch = _run(engine, requests, batched=True)
        sequential.append(s)
        batched.append(b)
    seq_s, batch_s = statistics.median(sequential), statistics.median(batched)
    sequential_tok_s = tokens_seq / seq_s
    batched_tok_s = tokens_batch / batch_s
    return {
        "model": engine.model_name,
        "batch": batch,
        "max_tokens": max_tokens,
        "rounds": rounds,
        "sequential_tok_s": round(sequential_tok_s, 2),
        "batched_tok_s": round(batched_tok_s, 2),
        "speedup": round(batched_tok_s / sequential_tok_s, 2),
        "sequential_s": round(seq_s, 3),
        "batched_s": round(batch_s, 3),
        "sequential_tokens": tokens_seq,
        "batched_tokens": tokens_batch,
        "same_texts": sum(a == b for a, b in zip(texts_seq, texts_batch, strict=True)),
        "natural_eos": natural_eos,
        "load_s": round(load_s, 1),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }


def table(r: dict[str, Any]) -> str:
    rows = [
        "| mode | requests | tokens | wall s (median) | tokens/s |",
        "|---|---:|---:|---:|---:|",
        f"| sequential | {r['batch']} | {r['sequential_tokens']} | {r['sequential_s']:.2f} "
        f"| {r['sequential_tok_s']:.1f} |",
        f"| one batch | {r['batch']} | {r['batched_tokens']} | {r['batched_s']:.2f} "
        f"| {r['batched_tok_s']:.1f} |",
    ]
    notes = (
        f"\n{r['model']}, greedy, max_tokens {r['max_tokens']}, {r['rounds']} rounds, "
        f"{'EOS ends rows' if r['natural_eos'] else 'EOS ignored'}, "
        f"{r['torch_threads']} torch thread(s): speedup **{r['speedup']:.2f}x**; "
        f"{r['same_texts']}/{r['batch']} texts identical batched vs alone."
    )
    return "\n".join(rows) + notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:gemma3-270m", help="engine.model")
    parser.add_argument("--batch", type=int, default=8, help="concurrent requests")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per request")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (median)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1, as a Serve replica)"
    )
    parser.add_argument(
        "--natural-eos", action="store_true", help="let rows end on EOS (unequal work)"
    )
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.max_tokens < 1 or args.rounds < 1:
        parser.error("--batch, --max-tokens and --rounds must be >= 1")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    result = measure(
        args.model, args.batch, args.max_tokens, args.rounds, args.threads, args.natural_eos
    )
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
