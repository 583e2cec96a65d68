"""``thinkgate promote``: make a router, budget model or tau active on every gateway.

The artifact goes into the learning database and becomes the active version; every
gateway replica reading that database swaps it in without a restart. A router that is
worse than the active one or than the prompt-length baseline on the held-out labelled
records (or cannot be compared) is refused unless ``--force``; so is a budget model or tau
(`router.learning.compare`).

Example::

    $ thinkgate promote my-router                     # database from the config
    $ thinkgate promote --tau 0.62 --target-error 0.1 --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", metavar="DIR", help="router or budget folder")
    parser.add_argument("--tau", type=float, default=None, help="promote this escalation tau")
    parser.add_argument("--config", default=None, help="thinkgate config (database, router)")
    parser.add_argument(
        "--database-url", default=None, help="learning database (default: from the config)"
    )
    parser.add_argument("--force", action="store_true", help="promote even if not better")
    parser.add_argument("--holdout-fraction", type=float, default=0.2)
    parser.add_argument(
        "--target-error",
        type=float,
        default=None,
        help="--tau: largest share of wrong kept small answers the comparison aims for",
    )


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from router.config import load_config
    from router.learning.promotion import (
        PromotionRefused,
        detect_kind,
        promote_budget,
        promote_router,
        promote_tau,
    )
    from router.learning.store import LearningStore, database_url

    if (args.folder is None) == (args.tau is None):
        print("promote: give either DIR or --tau", file=sys.stderr)
        return 2
    config = load_config(args.config)
    store = LearningStore(args.database_url or database_url(config.learning))
    try:
        if args.tau is not None:
            result = promote_tau(
                store,
                args.tau,
                force=args.force,
                configured=config.escalation.tau,
                target_error=args.target_error,
                holdout_fraction=args.holdout_fraction,
            )
        elif detect_kind(args.folder) == "router":
            result = promote_router(
                store,
                args.folder,
                force=args.force,
                configured=config.routing.router_path,
                holdout_fraction=args.holdout_fraction,
            )
        else:
            result = promote_budget(
                store,
                args.folder,
                force=args.force,
                configured=config.budget.predictor_path,
                quantile=config.budget.quantile,
                holdout_fraction=args.holdout_fraction,
            )
    except PromotionRefused as exc:
        print(f"promote: refused: {exc}", file=sys.stderr)
        print(json.dumps({"promoted": False, "comparison": exc.detail}, default=str))
        return 3
    except ValueError as exc:
        print(f"promote: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps({"promoted": True, **result}, default=str))
    return 0
