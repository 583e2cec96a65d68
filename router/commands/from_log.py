"""``--from-log URL`` for commands that otherwise read files (train-router, eval-router,
train-budget, calibrate-escalation).

`add_from_log` adds the wrapped command's own flags, then ``--from-log`` (a database
URL: the gateway's ``learning.database_url``); the wrapped command's required flags
become required only without ``--from-log``. `dispatch` runs the log variant or the
wrapped command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable


def add_from_log(parser: argparse.ArgumentParser, inner: str) -> None:
    importlib.import_module(inner).configure(parser)
    required = []
    for action in parser._actions:  # argparse has no public API to relax a flag
        if action.required and action.option_strings:
            action.required = False
            required.append(action.option_strings[0])
    parser.set_defaults(_required_without_log=required, _inner=inner)
    parser.add_argument(
        "--from-log",
        metavar="URL",
        default=None,
        help="read labelled records from the learning database at URL (e.g. "
        "sqlite:///~/.cache/thinkgate/learning.db or postgresql+psycopg://...) instead of "
        "files; held-out records (by request-id hash) are never trained on",
    )
    if "--holdout-fraction" in parser._option_string_actions:
        return
    parser.add_argument(
        "--holdout-fraction",
        type=float,
        default=0.2,
        help="--from-log: share of request ids held out for evaluation (default 0.2)",
    )


def dispatch(
    args: argparse.Namespace, name: str, from_log: Callable[[argparse.Namespace], int]
) -> int:
    if args.from_log:
        return from_log(args)
    missing = [flag for flag in args._required_without_log if getattr(args, _dest(flag)) is None]
    if missing:
        print(
            f"{name}: the following arguments are required: {', '.join(missing)}", file=sys.stderr
        )
        return 2
    result: int = importlib.import_module(args._inner).run(args)
    return result


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def open_store(url: str):  # type: ignore[no-untyped-def]
    from router.learning.store import LearningStore

    return LearningStore(url)
