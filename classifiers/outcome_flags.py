"""Command-line flags shared by the commands that read outcome files.

Example::

    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_outcome_flags(parser)
    >>> args = parser.parse_args(["--outcomes", "a.csv", "--weak-column", "w",
    ...                           "--strong-column", "s"])
    >>> args.prompt_column
    'prompt'
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from classifiers.outcomes import Outcomes

__all__ = ["add_outcome_flags", "outcomes_from_args"]


def add_outcome_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--outcomes``, the three column flags and ``--exclude``."""
    parser.add_argument(
        "--outcomes",
        nargs="+",
        required=True,
        metavar="FILE",
        help="outcome files (CSV or JSONL), one prompt per row; each file is a group for "
        "held-out validation",
    )
    parser.add_argument(
        "--weak-column", required=True, help="column with the weak model's correctness or score"
    )
    parser.add_argument(
        "--strong-column",
        required=True,
        help="column with the strong model's correctness or score",
    )
    parser.add_argument("--prompt-column", default="prompt", help="column with the prompt text")
    parser.add_argument(
        "--exclude",
        metavar="JSONL",
        default=None,
        help="drop prompts listed as 'eval_prompt' in this JSONL file",
    )


def outcomes_from_args(args: argparse.Namespace) -> Outcomes:
    """Load the outcome files named by :func:`add_outcome_flags`' flags."""
    from classifiers.outcomes import load_excluded_prompts, load_outcomes

    excluded = load_excluded_prompts(args.exclude) if args.exclude else set()
    return load_outcomes(
        args.outcomes,
        weak_column=args.weak_column,
        strong_column=args.strong_column,
        prompt_column=args.prompt_column,
        exclude=excluded,
    )
