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
from typing import TYPE_CHECKING, Any

from classifiers.commands.train_router import add_featurizer_flags
from classifiers.outcome_flags import add_outcome_flags

if TYPE_CHECKING:
    from classifiers.outcomes import Outcomes


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


def _cross_validate(args: argparse.Namespace, data: Outcomes) -> dict[str, Any]:
    import sys

    import numpy as np

    from classifiers.commands.train_router import featurizer_from_args, outcome_sources
    from classifiers.evaluation import evaluate_scores
    from classifiers.featurizer import PromptFeaturizer
    from classifiers.router_fit import fit_router_from_features, fold_groups
    from classifiers.router_training import group_folds

    featurizer = featurizer_from_args(args)
    features = PromptFeaturizer(featurizer).features(data.prompts, show_progress_bar=True)
    weak, strong = data.normalized()
    sources = np.array(outcome_sources(data))
    outer = fold_groups(data.groups, sources, args.cross_validate, args.seed)
    rows = []
    for number, (train, test) in enumerate(group_folds(outer, args.cross_validate, args.seed)):
        router = fit_router_from_features(
            features[train],
            weak[train],
            strong[train],
            featurizer=featurizer,
            sources=sources[train],
            groups=fold_groups(data.groups[train], sources[train], 4, args.seed),
            folds=4,
            seed=args.seed,
            length_weight=args.prompt_length_weight,
        )
        report = evaluate_scores(router.score_features(features[test]), weak[test], strong[test])
        held = sorted({data.sources[g].rsplit("/", 1)[-1] for g in np.unique(data.groups[test])})
        selected = router.metadata["training"]["selected_C"]
        rows.append({"fold": number, "held_out": held, "selected_C": selected, **report.to_json()})
        print(
            f"  fold {number}: n={report.n} APGR {report.apgr:.4f} CPT50 {report.cpt50:.4f} "
            f"(C={selected:g})",
            file=sys.stderr,
        )
    print(
        f"{'fold':>4} {'n':>5} {'weak':>6} {'strong':>6} {'APGR':>6} {'CPT50':>6} "
        f"{'CPT80':>6} {'oracle':>6}  held-out files"
    )
    for row in rows:
        print(
            f"{row['fold']:>4} {row['n']:>5} {row['weak_accuracy']:6.3f} "
            f"{row['strong_accuracy']:6.3f} {row['apgr']:6.3f} {row['cpt50']:6.3f} "
            f"{row['cpt80']:6.3f} {row['oracle_apgr']:6.3f}  {', '.join(row['held_out'])}"
        )
    mean_apgr = float(np.mean([r["apgr"] for r in rows]))
    mean_cpt50 = float(np.mean([r["cpt50"] for r in rows]))
    print(f"mean APGR {mean_apgr:.3f}, mean CPT(50%) {mean_cpt50:.3f}")
    return {
        "folds": [{k: v for k, v in row.items() if k != "curve"} for row in rows],
        "mean_apgr": mean_apgr,
        "mean_cpt50": mean_cpt50,
        "mean_cpt80": float(np.mean([r["cpt80"] for r in rows])),
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
        overlap = router.training_overlap(data.prompts)
        n_overlap = None if overlap is None else int(overlap.sum())
        if n_overlap:
            print(
                f"eval-router: WARNING: {n_overlap} of {len(data)} evaluated prompts "
                f"({n_overlap / len(data):.0%}) are among the router's training prompts: "
                "this APGR is (partly) in-sample, not a held-out estimate",
                file=sys.stderr,
            )
        scores = router.score(data.prompts, show_progress_bar=True)
        try:
            report = evaluate_scores(scores, data.weak, data.strong)
        except ValueError as exc:
            print(f"eval-router: {exc}", file=sys.stderr)
            return 2
        result = report.to_json()
        result["training_overlap"] = n_overlap
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
