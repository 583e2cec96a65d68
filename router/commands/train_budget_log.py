"""``thinkgate train-budget``: from files, plus ``--from-log URL``: the strong tier's own
thinking lengths from the decision log, in its own tokenizer; an answer whose thinking was
force-closed at the budget is a censored observation (its natural length is at least what
it spent), not a length.

Example::

    $ thinkgate train-budget --from-log sqlite:///learning.db --out my-budget
    $ thinkgate promote my-budget
"""

from __future__ import annotations

import argparse

from router.commands.from_log import add_from_log, dispatch

INNER = "classifiers.commands.train_budget"


def configure(parser: argparse.ArgumentParser) -> None:
    add_from_log(parser, INNER)
    if "--base" not in parser._option_string_actions:
        parser.add_argument(
            "--base",
            default=None,
            metavar="DIR",
            help="--from-log: predictor whose features the log stores (default: shipped)",
        )


def run(args: argparse.Namespace) -> int:
    return dispatch(args, "train-budget", from_log)


def from_log(args: argparse.Namespace) -> int:
    import json
    import shlex
    import sys

    from classifiers.budget_model import fit_budget_ridge
    from classifiers.budget_predictor import BudgetFeatures, ComplexityPredictor
    from router.learning.log_data import budget_rows
    from router.learning.store import LearningStore, redact

    if not args.out:
        print("train-budget: --out is required", file=sys.stderr)
        return 2
    base = ComplexityPredictor.load(args.base)
    meta = base.metadata
    spec = BudgetFeatures.from_json(meta["features"])
    store = LearningStore(args.from_log)
    rows = budget_rows(
        store, int(meta["n_features"]), spec.compute, holdout_fraction=args.holdout_fraction
    )
    store.close()
    print(
        f"train-budget: {len(rows.lengths)} strong answers ({int(rows.censored.sum())} "
        f"force-closed = censored), {rows.skipped} without features",
        file=sys.stderr,
    )
    if len(rows.lengths) < 2 * args.folds:
        print(f"train-budget: need at least {2 * args.folds} answers", file=sys.stderr)
        return 2
    try:
        fit = fit_budget_ridge(
            rows.features,
            rows.lengths,
            rows.censored,
            quantiles=tuple(meta["quantiles"]),
            folds=args.folds,
            groups=rows.request_ids,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"train-budget: {exc}", file=sys.stderr)
        return 2
    model_meta = dict(meta.get("model", {}))
    model_meta.update(
        alpha=fit.alpha,
        sigma_log1p=fit.sigma,
        n_censored=fit.n_censored,
        cv_loss={str(a): r for a, r in fit.cv_loss.items()},
        cv_coverage={str(q): c for q, c in fit.cv_coverage.items()},
    )
    metadata = {
        **meta,
        "tokenizer": rows.tokenizer,
        "model": model_meta,
        "training_data": {
            "from_log": redact(args.from_log),
            "n": len(rows.lengths),
            "n_censored": int(rows.censored.sum()),
            "holdout_fraction": args.holdout_fraction,
        },
        "training_command": shlex.join(["thinkgate", *sys.argv[1:]]),
    }
    predictor = ComplexityPredictor(fit.model, spec, metadata)
    out = predictor.save(args.out)
    print(json.dumps({"out": str(out), "n": len(rows.lengths), "alpha": fit.alpha}))
    return 0
