"""``thinkgate eval-router``: the file-based evaluation, plus ``--from-log URL`` (APGR /
CPT on the held-out labelled records of the decision log, never trained on).

Example::

    $ thinkgate eval-router --from-log sqlite:///learning.db --router my-router --json e.json
"""

from __future__ import annotations

import argparse

from router.commands.from_log import add_from_log, dispatch

INNER = "classifiers.commands.eval_router"


def configure(parser: argparse.ArgumentParser) -> None:
    add_from_log(parser, INNER)


def run(args: argparse.Namespace) -> int:
    return dispatch(args, "eval-router", from_log)


def from_log(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from classifiers.difficulty import DifficultyRouter
    from router.learning.log_data import apgr_of, router_rows
    from router.learning.store import LearningStore

    router = DifficultyRouter.load(args.router)
    store = LearningStore(args.from_log)
    rows = router_rows(
        store, router.featurizer_id, router.features, holdout_fraction=args.holdout_fraction
    )
    held = rows.subset(rows.holdout)
    store.close()
    from router.learning.artifacts import MIN_GAP

    if len(held) < 2 or float(held.strong.mean() - held.weak.mean()) < MIN_GAP:
        print(
            f"eval-router: {len(held)} held-out labelled records, too few or without a "
            "quality gap to compute APGR",
            file=sys.stderr,
        )
        return 2
    result = {**apgr_of(router.score_features(held.features), held), "from_log": True}
    print(
        f"n={result['n']} APGR={result['apgr']:.3f} CPT50={result['cpt50']:.3f} "
        f"random={result['random_apgr']:.3f}"
    )
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0
