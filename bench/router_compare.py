"""Routers compared across prompt types: the README's router table, in one run.

Directions (the same folds for every router), one per held-out source:

- ``mmlu -> alpaca_eval``: trained on all MMLU prompts, tested on all 803 AlpacaEval ones;
- ``mmlu domains``: MMLU's 29 domains in 5 held-out groups; trained on the other domains
  (MMLU only, as the shipped router), tested on the held-out domains;
- ``alpaca_eval -> mmlu``: trained on AlpacaEval's pairwise labels, tested on MMLU (the
  shipped recipe leaves these labels out; the row says what they would carry);
- ``alpaca_eval 5-fold``: trained and tested within AlpacaEval (random folds): whether its
  single-judge labels predict even their own held-out prompts.

Routers: the shipped recipe (``classifiers.router_fit.fit_router_from_features`` on
``bench/router_sources.SHIPPED_FEATURIZER``: MMLU right/wrong outcomes, the learned gain of
the static request mean blended with log prompt length at weight 1; C chosen on inner folds
of the training data only), the same without the length blend, the reference
(``bench/router_reference.py``), prompt length (characters, no
training), random. APGR per direction with a bootstrap 95% interval (test prompts
resampled, 500 draws), and a pooled figure: directions weighted by their quality gap
(strong minus weak mean score). ``--blocks`` adds the worth of each feature block.

Example::

    $ python bench/router_compare.py --json router_compare.json --blocks
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import router_reference
from router_sources import (
    ALL_BLOCKS,
    MMLU_SAMPLE,
    SHIPPED_FEATURIZER,
    Source,
    feature_blocks,
    load_sources,
)

from classifiers.evaluation import apgr, quality_curve, random_apgr
from classifiers.router_fit import fit_router_from_features, fold_groups
from classifiers.router_training import group_folds

# A training set: (source name, row indices); a fold: (training sets, test rows).
Fold = tuple[list[tuple[str, np.ndarray]], np.ndarray]
Trainer = Callable[[list[tuple[str, np.ndarray]], str, np.ndarray], np.ndarray]


SHIPPED = "shipped (learned gain + prompt length, MMLU outcomes)"
GAIN_ONLY = "learned gain alone (no length blend)"


def directions(sources: dict[str, Source], seed: int) -> dict[str, tuple[str, list[Fold]]]:
    """Direction name -> (test source, folds)."""
    mmlu, alpaca = sources["mmlu"].data, sources["alpaca_eval"].data
    all_m, all_a = np.arange(len(mmlu)), np.arange(len(alpaca))
    domain_folds = [([("mmlu", train)], test) for train, test in group_folds(mmlu.groups, 5, seed)]
    order = np.random.default_rng(seed).permutation(len(alpaca))
    alpaca_folds = [
        ([("alpaca_eval", np.setdiff1d(all_a, test))], np.sort(test))
        for test in np.array_split(order, 5)
    ]
    return {
        "mmlu -> alpaca_eval": ("alpaca_eval", [([("mmlu", all_m)], all_a)]),
        "mmlu domains": ("mmlu", domain_folds),
        "alpaca_eval -> mmlu": ("mmlu", [([("alpaca_eval", all_a)], all_m)]),
        "alpaca_eval 5-fold": ("alpaca_eval", alpaca_folds),
    }


def _stack(
    sources: dict[str, Source],
    blocks: dict[str, dict[str, np.ndarray]],
    parts: list[tuple[str, np.ndarray]],
    names: list[str],
    aux: float,
) -> dict[str, np.ndarray]:
    xs, weak, strong, src, groups = [], [], [], [], []
    for offset, (name, rows) in enumerate(parts):
        data = sources[name].data
        xs.append(np.concatenate([blocks[name][b][rows] for b in names], axis=1))
        w = data.weak[rows]
        if aux and sources[name].win_rate is not None:
            rate = sources[name].win_rate[rows]  # type: ignore[index]
            rank = np.argsort(np.argsort(rate)) / max(1, len(rate) - 1)
            w = (1 - aux) * w + aux * rank
            strong.append(1.0 - w)
        else:
            strong.append(data.strong[rows])
        weak.append(w)
        src.append(np.full(len(rows), name))
        groups.append(data.groups[rows] + 1000 * offset)
    return {
        "x": np.concatenate(xs),
        "weak": np.concatenate(weak),
        "strong": np.concatenate(strong),
        "sources": np.concatenate(src),
        "groups": np.concatenate(groups),
    }


def shipped_trainer(
    sources: dict[str, Source],
    blocks: dict[str, dict[str, np.ndarray]],
    names: list[str],
    aux: float = 0.0,
) -> Trainer:
    """The shipped recipe on feature blocks ``names`` (a last ``prompt_length`` block is
    blended, not learned)."""
    featurizer = replace(SHIPPED_FEATURIZER, prompt_length=names[-1] == "prompt_length")

    def train(
        parts: list[tuple[str, np.ndarray]], test_source: str, test_rows: np.ndarray
    ) -> np.ndarray:
        t = _stack(sources, blocks, parts, names, aux)
        router = fit_router_from_features(
            t["x"],
            t["weak"],
            t["strong"],
            featurizer=featurizer,
            sources=t["sources"],
            groups=fold_groups(t["groups"], t["sources"], 5),
        )
        x_test = np.concatenate([blocks[test_source][b][test_rows] for b in names], axis=1)
        return router.raw_score(x_test)

    return train


def reference_trainer(sources: dict[str, Source], emb: dict[str, np.ndarray]) -> Trainer:
    def train(
        parts: list[tuple[str, np.ndarray]], test_source: str, test_rows: np.ndarray
    ) -> np.ndarray:
        x = np.concatenate([emb[n][r] for n, r in parts])
        weak = np.concatenate([sources[n].data.weak[r] for n, r in parts])
        return router_reference.score(router_reference.fit(x, weak), emb[test_source][test_rows])

    return train


def length_trainer(sources: dict[str, Source]) -> Trainer:
    def train(
        parts: list[tuple[str, np.ndarray]], test_source: str, test_rows: np.ndarray
    ) -> np.ndarray:
        prompts = sources[test_source].data.prompts
        return np.array([len(prompts[i]) for i in test_rows], dtype=float)

    return train


def _apgr(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> float:
    """APGR; NaN for a bootstrap draw without a quality gap (left out of the intervals)."""
    try:
        return apgr(quality_curve(scores, weak, strong), float(weak.mean()), float(strong.mean()))
    except ValueError:
        return float("nan")


def evaluate(
    sources: dict[str, Source],
    dirs: dict[str, tuple[str, list[Fold]]],
    trainer: Trainer,
    draws: np.ndarray,
) -> dict[str, Any]:
    """APGR per direction (point and bootstrap draws) for one router."""
    out: dict[str, Any] = {}
    for name, (test_source, folds) in dirs.items():
        data = sources[test_source].data
        point, boot = [], []
        for number, (parts, test) in enumerate(folds):
            scores = trainer(parts, test_source, test)
            weak, strong = data.weak[test], data.strong[test]
            point.append(_apgr(scores, weak, strong))
            rng = np.random.default_rng(number)
            boot.append(
                [
                    _apgr(scores[i], weak[i], strong[i])
                    for i in (rng.integers(0, len(test), len(test)) for _ in draws)
                ]
            )
        out[name] = {"apgr": float(np.mean(point)), "draws": np.nanmean(boot, axis=0)}
    return out


def pooled(result: dict[str, Any], gaps: dict[str, float]) -> dict[str, Any]:
    weights = np.array([gaps[d] for d in result])
    point = float(np.dot(weights, [r["apgr"] for r in result.values()]) / weights.sum())
    draws = np.array([r["draws"] for r in result.values()])
    return {"apgr": point, "draws": weights @ draws / weights.sum()}


def _interval(draws: np.ndarray) -> list[float]:
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


SHARE_TARGETS = (0.1, 0.2, 0.3, 0.5, 0.7)


def strong_shares(
    sources: dict[str, Source], blocks: dict[str, dict[str, np.ndarray]]
) -> dict[str, Any]:
    """Strong share per source when ``routing.strong_share`` is set with a fixed threshold
    (``live_share: false``), for the shipped recipe (trained on MMLU; thresholds from the
    artifact's score quantiles, as ``router.difficulty_scoring`` computes them)."""
    names = ["request_static", "prompt_length"]
    t = _stack(sources, blocks, [("mmlu", np.arange(len(sources["mmlu"].data)))], names, 0.0)
    router = fit_router_from_features(
        t["x"],
        t["weak"],
        t["strong"],
        featurizer=SHIPPED_FEATURIZER,
        sources=t["sources"],
        groups=fold_groups(t["groups"], t["sources"], 5),
    )
    quantiles = np.asarray(router.metadata["score_quantiles"])
    levels = np.linspace(0.0, 1.0, len(quantiles))
    scores = {
        n: router.score_features(np.concatenate([blocks[n][b] for b in names], axis=1))
        for n in sources
    }
    out: dict[str, Any] = {}
    for target in SHARE_TARGETS:
        threshold = float(np.interp(1.0 - target, levels, quantiles))
        out[str(target)] = {
            "threshold": round(threshold, 4),
            **{n: round(float(np.mean(scores[n] >= threshold)), 3) for n in sources},
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--blocks", action="store_true", help="also measure each feature block")
    parser.add_argument("--draws", type=int, default=500, help="bootstrap draws")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mmlu-sample", type=int, default=MMLU_SAMPLE, help="MMLU prompts used (0: all)"
    )
    args = parser.parse_args()

    sources = load_sources(mmlu_sample=args.mmlu_sample)
    config = ALL_BLOCKS if args.blocks else SHIPPED_FEATURIZER
    blocks = {n: feature_blocks(s.data.prompts, config) for n, s in sources.items()}
    emb = {n: router_reference.embed(s.data.prompts) for n, s in sources.items()}
    dirs = directions(sources, args.seed)
    gaps = {d: sources[t].gap for d, (t, _) in dirs.items()}
    draws = np.arange(args.draws)
    routers: dict[str, Trainer] = {
        SHIPPED: shipped_trainer(sources, blocks, ["request_static", "prompt_length"]),
        GAIN_ONLY: shipped_trainer(sources, blocks, ["request_static"]),
        "reference (MiniLM prompt + LR)": reference_trainer(sources, emb),
        "prompt length": length_trainer(sources),
    }
    if args.blocks:
        routers["request: full MiniLM (6 layers, 128 tokens)"] = shipped_trainer(
            sources, blocks, ["request"]
        )
        routers["shipped + request length"] = shipped_trainer(
            sources, blocks, ["request_static", "length"]
        )
        routers["request length only (learnt)"] = shipped_trainer(sources, blocks, ["length"])
        routers["shipped + 80-model win-rate target (alpaca)"] = shipped_trainer(
            sources, blocks, ["request_static"], aux=0.5
        )
    results = {}
    for name, trainer in routers.items():
        print(f"... {name}", file=sys.stderr, flush=True)
        per = evaluate(sources, dirs, trainer, draws)
        per["pooled"] = pooled(per, gaps)
        results[name] = per
    ship = results[SHIPPED]
    table: dict[str, Any] = {}
    header = ["router", *dirs, "pooled (gap-weighted)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, per in results.items():
        cells = []
        for d in [*dirs, "pooled"]:
            low, high = _interval(per[d]["draws"])
            cells.append(f"{per[d]['apgr']:.3f} [{low:.3f}, {high:.3f}]")
        print(f"| {name} | " + " | ".join(cells) + " |")
        table[name] = {
            d: {
                "apgr": round(per[d]["apgr"], 4),
                "ci95": _interval(per[d]["draws"]),
                "vs_shipped_ci95": _interval(ship[d]["draws"] - per[d]["draws"]),
            }
            for d in [*dirs, "pooled"]
        }
    rand = {
        d: random_apgr(sources[t].data.weak, sources[t].data.strong, repeats=50)
        for d, (t, _) in dirs.items()
    }
    print("| random | " + " | ".join(f"{v:.3f}" for v in rand.values()) + " | 0.500 |")
    print("gaps: " + ", ".join(f"{d}: {g:.3f}" for d, g in gaps.items()))
    shares = strong_shares(sources, blocks)
    print("\n| routing.strong_share | threshold | " + " | ".join(sources) + " |")
    print("|---|---|" + "---|" * len(sources))
    for target, row in shares.items():
        cells = " | ".join(f"{row[n]:.3f}" for n in sources)
        print(f"| {target} | {row['threshold']:.3f} | {cells} |")
    if args.json:
        summary = {
            "table": table,
            "random": rand,
            "gaps": gaps,
            "draws": args.draws,
            "strong_shares": shares,
            "n": {n: len(s.data) for n, s in sources.items()},
        }
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
