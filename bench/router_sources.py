"""The two routing outcome sources and cached features, shared by the router benchmarks.

- ``mmlu``: ``../shared/data/routing/mmlu/mmlu_*.csv`` (29 domains, contaminated prompts
  dropped), weak/strong correctness;
- ``alpaca_eval``: ``../shared/data/routing/alpaca_eval/alpaca_eval_pairwise.csv`` (803
  open-ended prompts), the judge's preference (weak 1 / tie 0.5 / strong 0), plus the
  80-model mean win rate per prompt from ``model_win_rates.csv``.

Feature blocks are computed with the shipping code (``PromptFeaturizer.blocks``) and cached
as ``.npy`` under ``$THINKGATE_CACHE_DIR/router-bench`` (default ``~/.cache/thinkgate``),
keyed by the featurizer settings and the prompts, so a rerun costs seconds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from classifiers.featurizer import FeaturizerConfig, PromptFeaturizer  # noqa: E402
from classifiers.outcomes import Outcomes, load_excluded_prompts, load_outcomes  # noqa: E402

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
DEFAULT_DATA = Path(
    os.environ.get("THINKGATE_ROUTING_DATA") or ROOT.parent / "shared" / "data" / "routing"
)
"""``../shared/data/routing``; the environment variable ``THINKGATE_ROUTING_DATA`` overrides it."""

SHIPPED_FEATURIZER = FeaturizerConfig(
    static_tokens=0,
    static_tail_tokens=(),
    head_tokens=0,
    tail_tokens=0,
    text_features=False,
    request_static_tokens=256,
    prompt_length=True,
)
"""The shipped router's features: the static MiniLM mean over the extracted request, and log
prompt length (blended with the learned gain, not learned)."""

FULL_REQUEST = replace(
    SHIPPED_FEATURIZER, request_static_tokens=0, request_tokens=128, prompt_length=False
)
"""The request's full MiniLM sentence embedding (6 layers, first 128 tokens): better words,
about 30x the CPU time (the quality/latency trade-off row)."""

ALL_BLOCKS = replace(SHIPPED_FEATURIZER, request_tokens=128, request_length=True)
"""Every request block, for measuring what each is worth."""


@dataclass
class Source:
    """One prompt type: outcomes (scores in [0, 1]) and, for alpaca_eval, win rates."""

    name: str
    data: Outcomes
    win_rate: np.ndarray | None = None

    @property
    def gap(self) -> float:
        """Strong minus weak mean quality."""
        return float(self.data.strong.mean() - self.data.weak.mean())


MMLU_SAMPLE = 1500
"""MMLU prompts used by the benchmarks and the shipped router (of 7,657; stratified by
domain, ``classifiers.router_fit.sample_rows``, seed 0): the CPU cost of embedding them
all is what limits it; ``--mmlu-sample 0`` in the benchmarks uses them all."""


def load_sources(
    data_dir: Path = DEFAULT_DATA, mmlu_sample: int = MMLU_SAMPLE
) -> dict[str, Source]:
    """Both sources, keyed ``mmlu`` and ``alpaca_eval``; MMLU capped at ``mmlu_sample``."""
    from classifiers.router_fit import sample_rows

    mmlu_dir, alpaca_dir = data_dir / "mmlu", data_dir / "alpaca_eval"
    excluded = load_excluded_prompts(mmlu_dir / "contaminated_prompts.jsonl")
    mmlu = load_outcomes(
        sorted(mmlu_dir.glob("mmlu_*.csv")),
        weak_column=WEAK,
        strong_column=STRONG,
        exclude=excluded,
    )
    if mmlu_sample:
        names = np.zeros(len(mmlu), dtype=np.int64)
        mmlu = mmlu.subset(sample_rows(mmlu.groups, names, mmlu_sample, seed=0))
    alpaca = load_outcomes(
        [alpaca_dir / "alpaca_eval_pairwise.csv"], weak_column=WEAK, strong_column=STRONG
    )
    with (alpaca_dir / "model_win_rates.csv").open(newline="", encoding="utf-8") as handle:
        rates = {
            row["prompt"]: float(row["mean_win_vs_gpt-4-1106-preview"])
            for row in csv.DictReader(handle)
        }
    win = np.array([rates.get(p, np.nan) for p in alpaca.prompts])
    return {"mmlu": Source("mmlu", mmlu), "alpaca_eval": Source("alpaca_eval", alpaca, win)}


def cache_dir() -> Path:
    """Where feature blocks are cached."""
    base = os.environ.get("THINKGATE_CACHE_DIR") or str(Path.home() / ".cache" / "thinkgate")
    folder = Path(base) / "router-bench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _digest(key: object, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def cached(
    name: str,
    key: object,
    texts: Sequence[str],
    compute: Callable[[Sequence[str]], np.ndarray],
    chunk: int = 256,
) -> np.ndarray:
    """``compute(texts)``, cached on disk by ``name``, ``key`` (JSON-able) and ``texts``.

    Computed and cached ``chunk`` rows at a time, so an interrupted run resumes.
    """
    path = cache_dir() / f"{name}-{_digest(key, texts)}.npy"
    if path.is_file():
        result: np.ndarray = np.load(path)
        return result
    parts = []
    for start in range(0, len(texts), chunk):
        part = list(texts[start : start + chunk])
        part_path = cache_dir() / f"{name}-part-{_digest(key, part)}.npy"
        if part_path.is_file():
            parts.append(np.load(part_path))
            continue
        value = np.asarray(compute(part))
        np.save(part_path, value)
        parts.append(value)
        print(f"  {name}: {start + len(part)}/{len(texts)}", file=sys.stderr, flush=True)
    full = np.concatenate(parts)
    np.save(path, full)
    return full


def feature_blocks(
    prompts: Sequence[str], config: FeaturizerConfig = SHIPPED_FEATURIZER
) -> dict[str, np.ndarray]:
    """Each block of ``config`` for ``prompts`` (cached per block)."""
    featurizer = PromptFeaturizer(config)
    out = {}
    for block in featurizer.block_names():

        def compute(texts: Sequence[str], block: str = block) -> np.ndarray:
            return featurizer.blocks(texts, only=[block])[block]

        key: dict[str, object] = config.to_json()
        if block == "request":  # the key names only what the block depends on
            key = {
                "encoder_path": config.encoder_path,
                "static_tokens": 0,
                "static_tail_tokens": [],
                "head_tokens": 0,
                "tail_tokens": 0,
                "tail_layers": None,
                "text_features": False,
                "request_tokens": config.request_tokens,
                "request_length": True,
            }
        out[block] = cached(f"block-{block}", key, prompts, compute)
    return out


def features(prompts: Sequence[str], config: FeaturizerConfig = SHIPPED_FEATURIZER) -> np.ndarray:
    """The feature matrix ``PromptFeaturizer(config).features(prompts)`` would give (cached)."""
    blocks = feature_blocks(prompts, config)
    return np.concatenate([blocks[b] for b in PromptFeaturizer(config).block_names()], axis=1)
