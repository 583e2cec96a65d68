"""``thinkgate eval-router``: APGR / CPT of a router on outcome files (RouteLLM's method).

Without ``--router`` the shipped default router is evaluated. With ``--cross-validate K``
no router is loaded: routers are trained on all but one group of files and evaluated on
the held-out files, K times (group k-fold by file), and a per-fold table is printed.

Example::

    $ thinkgate eval-router --outcomes gsm8k.csv --weak-column weak \\
          --strong-column strong --json eval.json --plot eval.png
    $ thinkgate eval-router --cross-validate 5 --outcomes ../shared/data/routing/mmlu/*.csv \\
          --weak-column mistralai/Mixtral-8x7B-Instruct-v0.1 \\
          --strong-column gpt-4-1106-preview \\
          --exclude ../shared/data/routing/mmlu/contaminated_prompts.jsonl --json cv.json
"""

from __future__ import annotations

import argparse
from typing import Any

from classifiers.commands.train_router import add_featurizer_flags
from classifiers.outcome_flags import add_outcome_flags


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``eval-router``."""
    parser.add_argument(
        "--router", default=None, metavar="DIR", help="router folder (default: shipped router)"
    )
    add_outcome_flags(parser)
    parser.add_argument("--json", required=True, metavar="OUT", help="write the results here")
    parser.add_argument("--plot", default=None, metavar="OUT.png", help="quality/share plot")
    parser.add_argument(
        "--cross-validate",
        type=int,
        default=0,
        metavar="K",
        help="instead of evaluating a router, train and evaluate on K held-out file groups",
    )
    parser.add_argument("--seed", type=int, default=0, help="fold assignment (cross-validate)")
    add_featurizer_flags(parser)


def _cross_validate(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    import sys

    import numpy as np

    from classifiers.commands.train_router import featurizer_from_args
    from classifiers.featurizer import PromptFeaturizer
    from classifiers.router_training import cross_validate

    featurizer = featurizer_from_args(args)
    features = PromptFeaturizer(featurizer).features(data.prompts, show_progress_bar=True)
    folds = cross_validate(
        data,
        featurizer,
        outer_folds=args.cross_validate,
        seed=args.seed,
        features=features,
        progress=lambda line: print(f"  {line}", file=sys.stderr),
    )
    rows = [
        {"fold": f.fold, "held_out": f.held_out, "selected": f.selected, **f.report.to_json()}
        for f in folds
    ]
    print(
        f"{'fold':>4} {'n':>5} {'weak':>6} {'strong':>6} {'APGR':>6} {'CPT50':>6} "
        f"{'CPT80':>6} {'oracle':>6}  held-out files"
    )
    for f in folds:
        r = f.report
        names = ", ".join(n.rsplit("/", 1)[-1] for n in f.held_out)
        print(
            f"{f.fold:>4} {r.n:>5} {r.weak_accuracy:6.3f} {r.strong_accuracy:6.3f} "
            f"{r.apgr:6.3f} {r.cpt50:6.3f} {r.cpt80:6.3f} {r.oracle_apgr:6.3f}  {names}"
        )
    mean_apgr = float(np.mean([f.report.apgr for f in folds]))
    mean_cpt50 = float(np.mean([f.report.cpt50 for f in folds]))
    print(f"mean APGR {mean_apgr:.3f}, mean CPT(50%) {mean_cpt50:.3f}")
    return {
        "folds": [{k: v for k, v in row.items() if k != "curve"} for row in rows],
        "mean_apgr": mean_apgr,
        "mean_cpt50": mean_cpt50,
        "mean_cpt80": float(np.mean([f.report.cpt80 for f in folds])),
        "featurizer": featurizer.to_json(),
    }


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the JSON (and plot)."""
    import json
    import sys
    from pathlib import Path

    from classifiers.difficulty import DifficultyRouter, RouterArtifactError
    from classifiers.evaluation import evaluate_scores
    from classifiers.outcome_flags import outcomes_from_args
    from classifiers.outcomes import OutcomesError

    try:
        data = outcomes_from_args(args)
    except OutcomesError as exc:
        print(f"eval-router: {exc}", file=sys.stderr)
        return 2
    if args.cross_validate:
        result = _cross_validate(args, data)
    else:
        try:
            router = DifficultyRouter.load(args.router)
        except RouterArtifactError as exc:
            print(f"eval-router: {exc}", file=sys.stderr)
            return 2
        scores = router.score(data.prompts, show_progress_bar=True)
        try:
            report = evaluate_scores(scores, data.weak, data.strong)
        except ValueError as exc:
            print(f"eval-router: {exc}", file=sys.stderr)
            return 2
        result = report.to_json()
        if args.plot:
            from classifiers.plots import plot_router_curve

            plot_router_curve(report, args.plot)
        print(
            f"n={report.n} weak={report.weak_accuracy:.3f} strong={report.strong_accuracy:.3f} "
            f"APGR={report.apgr:.3f} CPT50={report.cpt50:.3f} CPT80={report.cpt80:.3f} "
            f"random={report.random_apgr:.3f} oracle={report.oracle_apgr:.3f}"
        )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0
