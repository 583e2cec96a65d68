"""``thinkgate eval-budget``: how many thinking tokens predicted budgets save.

"Needed" tokens are the token count of the response column (counted with the predictor's
own tokenizer unless ``--tokenizer`` names another). All predicted budgets are scaled by
the one factor reaching ``--coverage`` on the file, and compared with the single fixed
budget reaching the same coverage (see :mod:`classifiers.budget_eval`). The JSON holds
``n``, ``spearman``, ``coverage``, ``scale``, ``mean_budget``, ``fixed_budget`` and
``token_ratio`` (= mean_budget / fixed_budget), plus what was evaluated.

Example::

    $ thinkgate eval-budget --data /tmp/gsm8k_budget_holdout.jsonl \\
          --prompt-column question --response-column answer --coverage 0.9 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``eval-budget``."""
    parser.add_argument(
        "--budget", default=None, help="predictor folder (default: the shipped predictor)"
    )
    parser.add_argument("--data", required=True, help="JSONL or CSV file of prompts and responses")
    parser.add_argument("--prompt-column", default="question", help="prompt column/field")
    parser.add_argument(
        "--response-column",
        default="answer",
        help="column/field whose token count is what the prompt needed",
    )
    parser.add_argument(
        "--coverage", type=float, default=0.9, help="target share of rows within budget"
    )
    parser.add_argument(
        "--quantile",
        type=float,
        default=None,
        help="which predicted quantile is the budget (default: the highest)",
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="tokenizer counting the responses (default: the predictor's own)",
    )
    parser.add_argument("--json", required=True, metavar="OUT", help="write the result here")


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the JSON; prints it too. Returns the exit status."""
    from classifiers.budget_data import read_budget_rows
    from classifiers.budget_eval import evaluate_budgets
    from classifiers.budget_predictor import ComplexityPredictor
    from classifiers.budget_tokens import TokenCounter

    if not 0.0 < args.coverage <= 1.0:
        print(f"error: --coverage must be in (0, 1], got {args.coverage}", file=sys.stderr)
        return 2
    try:
        predictor = ComplexityPredictor.load(args.budget)
        rows = read_budget_rows(args.data, args.prompt_column, args.response_column)
        counter = TokenCounter.load(args.tokenizer or predictor.tokenizer or None)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: no rows in {args.data}", file=sys.stderr)
        return 2
    quantile = max(predictor.quantiles) if args.quantile is None else args.quantile
    if quantile not in predictor.quantiles:
        print(
            f"error: --quantile must be one of {list(predictor.quantiles)}, got {quantile}",
            file=sys.stderr,
        )
        return 2

    needed = counter.count([row.target for row in rows], progress=True)
    predicted = predictor.predict([row.prompt for row in rows], show_progress_bar=True)
    column = predictor.quantiles.index(quantile)
    result = evaluate_budgets(predicted[:, column], needed, coverage=args.coverage)
    report = {
        **result.to_dict(),
        "quantile": quantile,
        "tokenizer": counter.name,
        "budget": str(args.budget) if args.budget else "default",
        "data": args.data,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0
