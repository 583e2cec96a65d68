"""What labelled prompts of a new kind buy: adapting a router trained without that kind.

For each direction (a base router trained on MMLU only, adapted to AlpacaEval; and one
trained on AlpacaEval only, adapted to MMLU) and each seed, the target source's prompts
are shuffled; the last ``n - 400`` are the evaluation set (the same for every k), and the
first k (k = 0, 50, 100, 200, 400) are the labelled prompts the base is adapted with.
APGR on the evaluation set per k, mean and standard deviation over 5 seeds.

Ways of keeping the base, all measured (same draws):

- ``prior`` — what ``thinkgate train-router --base`` does: the weights are the base's plus
  a penalised difference; its strength (0 = keep the base) chosen by k-fold on the k
  prompts (``classifiers.router_fit.fit_router_from_features(base=...)``);
- ``prior+scale`` — the same with the base's strength re-learnt (stacking the base score
  with a penalised correction);
- ``mixed`` — retrain on the base's own training data plus the k prompts, each source
  weighing the same (needs the base's data, which an artifact does not carry).

Example::

    $ python bench/learning_curve.py --json learning_curve.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from router_sources import SHIPPED_FEATURIZER, Source, features, load_sources

from classifiers.difficulty import DifficultyRouter
from classifiers.evaluation import apgr, quality_curve
from classifiers.router_fit import fit_router_from_features, fold_groups

# The learned gain alone (the curve measures adaptation of the heads; the shipped default
# also blends in prompt length, which adaptation keeps as it is).
FEATURIZER = replace(SHIPPED_FEATURIZER, prompt_length=False)

KS = (0, 50, 100, 200, 400)
HOLD = 400


def _apgr(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> float:
    return apgr(quality_curve(scores, weak, strong), float(weak.mean()), float(strong.mean()))


def _base(source: Source, x: np.ndarray) -> DifficultyRouter:
    data = source.data
    names = np.full(len(data), source.name)
    return fit_router_from_features(
        x,
        data.weak,
        data.strong,
        featurizer=FEATURIZER,
        sources=names,
        groups=fold_groups(data.groups, names, 5),
    )


def _adapt(
    method: str,
    base: DifficultyRouter,
    base_src: Source,
    x_base: np.ndarray,
    target: Source,
    x: np.ndarray,
    rows: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Expected gains on ``x`` after adapting ``base`` with the target's ``rows``."""
    t = target.data
    if method in ("prior", "prior+scale"):
        router = fit_router_from_features(
            x[rows],
            t.weak[rows],
            t.strong[rows],
            base=base,
            free_scale=method == "prior+scale",
            seed=seed,
        )
        return router.head.gain(x)
    b = base_src.data
    c = float(base.metadata["training"]["selected_C"])
    names = np.concatenate([np.full(len(b), base_src.name), np.full(len(rows), target.name)])
    router = fit_router_from_features(
        np.concatenate([x_base, x[rows]]),
        np.concatenate([b.weak, t.weak[rows]]),
        np.concatenate([b.strong, t.strong[rows]]),
        featurizer=FEATURIZER,
        sources=names,
        c_values=[c],
        folds=2,
    )
    return router.head.gain(x)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["prior", "prior+scale", "mixed"],
        choices=["prior", "prior+scale", "mixed"],
    )
    parser.add_argument(
        "--mmlu-sample", type=int, default=0, help="MMLU prompts used (default 0: all)"
    )
    args = parser.parse_args()
    sources = load_sources(mmlu_sample=args.mmlu_sample)
    x = {n: features(s.data.prompts, FEATURIZER) for n, s in sources.items()}
    out: dict[str, Any] = {"ks": list(KS), "seeds": args.seeds, "directions": {}}
    for base_name, target_name in (("mmlu", "alpaca_eval"), ("alpaca_eval", "mmlu")):
        base_src, target = sources[base_name], sources[target_name]
        print(f"... base on {base_name}", file=sys.stderr, flush=True)
        base = _base(base_src, x[base_name])
        t = target.data
        result: dict[str, Any] = {}
        for method in args.methods:
            table = np.zeros((args.seeds, len(KS)))
            for seed in range(args.seeds):
                order = np.random.default_rng(seed).permutation(len(t))
                held = order[HOLD:]
                for j, k in enumerate(KS):
                    rows = order[:k]
                    if k == 0:
                        gain = base.head.gain(x[target_name])
                    else:
                        gain = _adapt(
                            method, base, base_src, x[base_name], target, x[target_name], rows, seed
                        )
                    table[seed, j] = _apgr(gain[held], t.weak[held], t.strong[held])
                print(
                    f"  {method} seed {seed}: " + " ".join(f"{v:.3f}" for v in table[seed]),
                    file=sys.stderr,
                    flush=True,
                )
            gain200 = table[:, KS.index(200)] - table[:, 0]
            result[method] = {
                "apgr": table.round(4).tolist(),
                "mean": table.mean(axis=0).round(4).tolist(),
                "sd": table.std(axis=0, ddof=1).round(4).tolist(),
                "gain_k200_mean": round(float(gain200.mean()), 4),
                "gain_k200_sd": round(float(gain200.std(ddof=1)), 4),
                "rises": bool(np.all(np.diff(table.mean(axis=0)) > -0.005)),
                "k200_ok": bool(
                    gain200.mean() >= 0.03 and gain200.mean() - 2 * gain200.std(ddof=1) > 0
                ),
            }
        out["directions"][f"{base_name} -> {target_name}"] = result
    print("| direction | method | " + " | ".join(f"k={k}" for k in KS) + " | k=200 - k=0 |")
    print("|---|---|" + "---|" * (len(KS) + 1))
    for direction, result in out["directions"].items():
        for method, r in result.items():
            cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(r["mean"], r["sd"], strict=True)]
            print(
                f"| {direction} | {method} | "
                + " | ".join(cells)
                + f" | {r['gain_k200_mean']:+.3f} ± {r['gain_k200_sd']:.3f} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
