"""Does the strong share hold when the mix of prompts changes? Live share control vs a
fixed threshold.

The prompts of the given files are streamed one file after another (each file is a
*phase*: a kind of traffic) through the serving path of an ``auto`` request: the
configured scorer (`router.difficulty_scoring.create_difficulty_scorer`, the shipped
router by default) and `RoutingPolicy.from_config` with ``routing.strong_share`` set,
i.e. the live threshold of `ShareControl`. Prompts are scored in batches of 64 (as the
gateway's `ScoreBatcher` does under load) and decided one by one, in order.

Beside it, a *fixed* threshold calibrated on the first file (the ``--target`` quantile of
its scores): what a team gets that calibrates once on the traffic it has today.

Per phase: ``share`` is the realised strong share after the window has filled with the
phase's own prompts (its first ``share_window`` requests left out; the whole phase when it
is not longer than that), ``share_all`` over the whole phase (the transition included);
``overall_share`` over every request. Files: CSV with a ``prompt`` column, or JSONL with
``prompt`` (``question`` is taken when there is no ``prompt``, e.g. GSM8K).

Example::

    $ python bench/share_control.py --target 0.3 --limit 800 --json share.json --prompts \\
        ../shared/data/routing/mmlu/mmlu_professional_law.csv \\
        ../shared/data/routing/alpaca_eval/alpaca_eval_pairwise.csv \\
        ../shared/data/gsm8k/train.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from router.config import RoutingConfig  # noqa: E402
from router.difficulty_scoring import (  # noqa: E402
    RoutingPolicy,
    create_difficulty_scorer,
)

BATCH = 64


def read_prompts(path: Path, limit: int | None = None) -> list[str]:
    """Prompts of a CSV (``prompt`` column) or JSONL (``prompt``, else ``question``) file."""
    prompts: list[str] = []
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    prompts.append(str(row["prompt"] if "prompt" in row else row["question"]))
    else:
        csv.field_size_limit(sys.maxsize)
        with path.open(newline="", encoding="utf-8") as handle:
            prompts = [row["prompt"] for row in csv.DictReader(handle)]
    return prompts[:limit] if limit else prompts


def phase_shares(strong: np.ndarray, window: int) -> dict[str, Any]:
    """Realised share of one phase: after its first ``window`` decisions, and overall."""
    settled = strong[window:] if len(strong) > window else strong
    return {
        "share": round(float(settled.mean()), 4),
        "share_all": round(float(strong.mean()), 4),
        "n": len(strong),
        "n_settled": len(settled),
    }


def run(
    files: Sequence[Path], target: float, config: RoutingConfig, limit: int | None
) -> dict[str, Any]:
    from tqdm import tqdm

    scorer = create_difficulty_scorer(config)
    policy = RoutingPolicy.from_config(config, scorer)
    calibrated = policy.threshold
    phases, fixed_phases, all_strong, all_fixed = [], [], [], []
    thresholds: list[float] = []
    fixed_threshold: float | None = None
    for path in files:
        prompts = read_prompts(path, limit)
        scores: list[float] = []
        for start in tqdm(range(0, len(prompts), BATCH), desc=path.name, file=sys.stderr):
            scores.extend(scorer.score(prompts[start : start + BATCH]))
        strong = np.array([policy.tier_for(s) == "strong" for s in scores])
        thresholds.append(policy.threshold)
        if fixed_threshold is None:
            values = np.sort(np.asarray(scores))
            fixed_threshold = float(values[len(values) - round(target * len(values))])
        fixed = np.asarray(scores) >= fixed_threshold
        all_strong.append(strong)
        all_fixed.append(fixed)
        phases.append({"file": path.name, **phase_shares(strong, config.share_window)})
        fixed_phases.append({"file": path.name, **phase_shares(fixed, config.share_window)})
        print(
            f"{path.name}: live {phases[-1]['share']:.3f} (all {phases[-1]['share_all']:.3f}), "
            f"fixed {fixed_phases[-1]['share']:.3f}; threshold now {policy.threshold:.4f}",
            file=sys.stderr,
        )
    return {
        "target": target,
        "scorer": config.scorer,
        "router_path": config.router_path,
        "share_window": config.share_window,
        "share_min_samples": config.share_min_samples,
        "share_max_step": config.share_max_step,
        "share_max_shift": config.share_max_shift,
        "limit_per_file": limit,
        "calibrated_threshold": round(calibrated, 6),
        "threshold_after_phase": [round(t, 6) for t in thresholds],
        "fixed_threshold": None if fixed_threshold is None else round(fixed_threshold, 6),
        "phases": phases,
        "overall_share": round(float(np.concatenate(all_strong).mean()), 4),
        "fixed_phases": fixed_phases,
        "fixed_overall_share": round(float(np.concatenate(all_fixed).mean()), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prompts", nargs="+", required=True, type=Path, metavar="FILE")
    parser.add_argument("--target", type=float, default=0.3, help="routing.strong_share")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--limit", type=int, default=None, help="prompts per file (first N)")
    parser.add_argument("--router", default=None, help="router folder (default: shipped)")
    parser.add_argument("--scorer", choices=("learned", "length_baseline"), default="learned")
    parser.add_argument("--window", type=int, default=None, help="routing.share_window")
    args = parser.parse_args()
    settings: dict[str, Any] = {
        "strong_share": args.target,
        "scorer": args.scorer,
        "router_path": args.router,
    }
    if args.window is not None:
        settings["share_window"] = args.window
        settings["share_min_samples"] = min(args.window, RoutingConfig().share_min_samples)
    config = RoutingConfig(**settings)
    result = run(args.prompts, args.target, config, args.limit)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
