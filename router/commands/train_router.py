"""``thinkgate train-router``: the file-based trainer, plus ``--from-log URL``.

Example::

    $ thinkgate train-router --from-log sqlite:///$HOME/.cache/thinkgate/learning.db \\
          --base classifiers/artifacts/router --out my-router
"""

from __future__ import annotations

import argparse

from router.commands.from_log import add_from_log, dispatch

INNER = "classifiers.commands.train_router"


def configure(parser: argparse.ArgumentParser) -> None:
    add_from_log(parser, INNER)
    if "--base" not in parser._option_string_actions:
        parser.add_argument(
            "--base", default=None, metavar="DIR", help="router to adapt (prior toward it)"
        )


def run(args: argparse.Namespace) -> int:
    return dispatch(args, "train-router", from_log)


def from_log(args: argparse.Namespace) -> int:
    import json
    import shlex
    import sys

    from classifiers.difficulty import DifficultyRouter
    from classifiers.router_fit import fit_router_from_features
    from router.learning.log_data import router_rows
    from router.learning.store import LearningStore, redact

    if not args.out:
        print("train-router: --out is required", file=sys.stderr)
        return 2
    base = DifficultyRouter.load(args.base) if args.base else None
    if base is not None:
        featurizer = base.featurizer_config
    else:
        from classifiers.commands.train_router import featurizer_from_args

        featurizer = featurizer_from_args(args)
    from classifiers.featurizer import PromptFeaturizer

    featurize = base.features if base is not None else PromptFeaturizer(featurizer).features
    store = LearningStore(args.from_log)
    rows = router_rows(
        store, featurizer.featurizer_id, featurize, holdout_fraction=args.holdout_fraction
    )
    train = rows.subset(~rows.holdout)
    print(
        f"train-router: {len(train)} labelled records to train on, {int(rows.holdout.sum())} "
        f"held out, {rows.skipped} without usable features",
        file=sys.stderr,
    )
    if len(train) == 0:
        print("train-router: no judge-labelled records to train on", file=sys.stderr)
        return 2
    try:
        router = fit_router_from_features(
            train.features,
            train.weak,
            train.strong,
            featurizer=featurizer,
            base=base,
            prompts=train.prompts,
            c_values=args.c_values,
            folds=args.folds,
            seed=args.seed,
            metadata={
                "training_data": {
                    "from_log": redact(args.from_log),
                    "n": len(train),
                    "held_out": int(rows.holdout.sum()),
                    "holdout_fraction": args.holdout_fraction,
                    "labels": "judge strong_better (weak = 1 - strong_better)",
                },
                "training_command": shlex.join(["thinkgate", *sys.argv[1:]]),
            },
            progress=lambda line: print(f"  {line}", file=sys.stderr),
        )
    except ValueError as exc:
        print(f"train-router: {exc}", file=sys.stderr)
        return 2
    out = router.save(args.out)
    print(json.dumps({"out": str(out), "n_train": len(train), **router.metadata["training"]}))
    store.close()
    return 0
