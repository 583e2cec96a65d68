"""``thinkgate calibrate``: the p_strong threshold that sends a target share to strong.

``--prompts`` is a text file with one prompt per line, a JSONL file (field
``--prompt-column``, default ``prompt``) or a CSV file (same column). Use prompts like
the traffic the gateway will see. Prints (and with ``--json`` writes)
``{"threshold", "strong_share", "n"}``; put the threshold (or the share) in the gateway
config.

Example::

    $ thinkgate calibrate --prompts traffic.jsonl --strong-share 0.3
    {"threshold": 0.41, "strong_share": 0.3, "n": 5000}
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``calibrate``."""
    parser.add_argument(
        "--router", default=None, metavar="DIR", help="router folder (default: shipped router)"
    )
    parser.add_argument(
        "--prompts", required=True, metavar="FILE", help="prompts: .txt lines, .jsonl or .csv"
    )
    parser.add_argument("--prompt-column", default="prompt", help="field/column of the prompt")
    parser.add_argument(
        "--strong-share",
        type=float,
        required=True,
        help="target share of requests sent to the strong model, in [0, 1]",
    )
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the result here")


def read_prompts(path: str | Path, column: str = "prompt") -> list[str]:
    """Prompts from a ``.jsonl``/``.csv`` file (``column``) or a text file (lines)."""
    from classifiers.outcomes import OutcomesError
    from classifiers.records import JSONL_SUFFIXES, TABLE_SUFFIXES, read_records, record_columns

    file = Path(path)
    if file.suffix.lower() in JSONL_SUFFIXES | TABLE_SUFFIXES:
        rows = read_records(file)
        columns = record_columns(rows)
        if column not in columns:
            raise OutcomesError(f"{file}: column {column!r} not found (columns: {columns})")
        prompts = []
        for number, row in enumerate(rows, start=1):
            value = row.get(column)
            if not isinstance(value, str):
                raise OutcomesError(f"{file}: column {column!r}, row {number}: not text")
            prompts.append(value)
        return prompts
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OutcomesError(f"{file}: cannot read prompts ({exc})") from exc
    return [line for line in text.splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    """Score the prompts and print the threshold for the target share."""
    import json
    import sys

    from classifiers.difficulty import DifficultyRouter, RouterArtifactError
    from classifiers.outcomes import OutcomesError

    if not 0.0 <= args.strong_share <= 1.0:
        print(
            f"calibrate: --strong-share must be in [0, 1], got {args.strong_share}", file=sys.stderr
        )
        return 2
    try:
        prompts = read_prompts(args.prompts, args.prompt_column)
        router = DifficultyRouter.load(args.router)
    except (OutcomesError, RouterArtifactError) as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    if not prompts:
        print(f"calibrate: {args.prompts}: no prompts", file=sys.stderr)
        return 2
    scores = router.score(prompts, show_progress_bar=len(prompts) > 256)
    threshold = router.threshold_for_share(scores, args.strong_share)
    result = {
        "threshold": threshold,
        "strong_share": float((scores >= threshold).mean()),
        "target_strong_share": args.strong_share,
        "n": len(prompts),
    }
    text = json.dumps(result)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
