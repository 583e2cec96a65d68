"""``thinkgate bench-router``: latency of single routing decisions and batch throughput.

Single decisions are timed end to end (features, encoder and head) on synthetic prompts
of about 100 and 500 tokens, after a warm-up; the batch figure scores batches of short
prompts. Writes ``{"short": {"p50_ms", "p99_ms"}, "long": {"p50_ms", "p99_ms"},
"batch_throughput_per_s"}`` plus the settings used.

Example::

    $ thinkgate bench-router --json bench.json --threads 2
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``bench-router``."""
    parser.add_argument(
        "--router", default=None, metavar="DIR", help="router folder (default: shipped router)"
    )
    parser.add_argument("--json", required=True, metavar="OUT", help="write the results here")
    parser.add_argument("--iterations", type=int, default=200, help="single decisions per size")
    parser.add_argument("--batch-size", type=int, default=32, help="prompts per batch")
    parser.add_argument("--batches", type=int, default=10, help="batches timed")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )


_WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "or",
    "from",
    "at",
    "which",
    "train",
    "speed",
    "hours",
    "distance",
    "average",
    "ratio",
    "price",
    "total",
    "each",
    "remaining",
    "percent",
    "cost",
    "explain",
    "why",
    "how",
    "what",
    "function",
    "value",
    "solve",
    "equation",
    "integer",
    "prime",
    "number",
    "3",
    "17",
    "250",
    "water",
    "energy",
    "cell",
    "protein",
    "law",
    "court",
    "contract",
    "market",
    "demand",
    "theory",
    "history",
    "war",
]


def synthetic_prompt(n_words: int, seed: int) -> str:
    """A deterministic English-like prompt of about ``n_words`` words (~1.3 tokens each)."""
    import random

    rng = random.Random(seed)
    words = [rng.choice(_WORDS) for _ in range(n_words)]
    return " ".join(words).capitalize() + "?"


def _percentiles(samples: list[float]) -> dict[str, float]:
    import numpy as np

    values = np.asarray(samples) * 1000.0
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "mean_ms": float(values.mean()),
    }


def run(args: argparse.Namespace) -> int:
    """Time the router and write the JSON."""
    import json
    import sys
    import time
    from pathlib import Path

    from tqdm.auto import tqdm

    from classifiers.difficulty import DifficultyRouter, RouterArtifactError

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        router = DifficultyRouter.load(args.router)
    except RouterArtifactError as exc:
        print(f"bench-router: {exc}", file=sys.stderr)
        return 2
    sizes = {"short": 75, "long": 380}  # words; ~100 and ~500 tokens
    result: dict[str, object] = {}
    for name, words in sizes.items():
        prompts = [synthetic_prompt(words, seed) for seed in range(args.iterations)]
        for prompt in prompts[:10]:
            router.score([prompt])
        samples = []
        for prompt in tqdm(prompts, desc=f"single {name}", unit="req"):
            start = time.perf_counter()
            router.score([prompt])
            samples.append(time.perf_counter() - start)
        result[name] = _percentiles(samples)
    batch = [synthetic_prompt(sizes["short"], 10_000 + i) for i in range(args.batch_size)]
    router.score(batch)
    start = time.perf_counter()
    for _ in tqdm(range(args.batches), desc="batches", unit="batch"):
        router.score(batch)
    elapsed = time.perf_counter() - start
    result["batch_throughput_per_s"] = args.batch_size * args.batches / elapsed
    import torch

    result["settings"] = {
        "threads": torch.get_num_threads(),
        "iterations": args.iterations,
        "batch_size": args.batch_size,
        "short_words": sizes["short"],
        "long_words": sizes["long"],
        "router": router.metadata.get("featurizer"),
    }
    text = json.dumps(result, indent=2)
    Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
