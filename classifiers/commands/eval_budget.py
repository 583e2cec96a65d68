"""``thinkgate eval-budget``: thinking tokens spent under predicted vs fixed budgets.

``--sweep FILE.jsonl`` (accuracy against tokens spent; see :mod:`classifiers.budget_sweep`):
each line says whether the answer was right when the thinking was force-closed at each
budget. The JSON has exactly ``n``, ``unlimited_accuracy``, ``unlimited_mean_spent``,
``fixed``, ``predicted``, ``target_accuracy``, ``fixed_spent_at_target``,
``predicted_spent_at_target`` and ``spent_ratio``; ``--plot`` draws both curves. When the
lines carry ``probe_answers`` (answers probed at each cut), the JSON also has ``online``:
``accuracy``, ``mean_spent``, ``probes``, ``probe_tokens``, ``fixed_spent_at_same_accuracy``
and ``spent_ratio`` of the thinking-probe stop rule (the shipped ``budget.probe`` defaults,
or ``--probe-*``; see :mod:`classifiers.budget_probes`), and with ``--probe-cv K``
``online_cv``: the out-of-fold figures of choosing the rule on the other questions' traces
(folds grouped by prompt).

``--data FILE`` (natural lengths only): the response column's token count (in the
predictor's tokenizer unless ``--tokenizer`` names another) is what each prompt spends
unbounded. Predicted budgets are scaled to reach ``--coverage``, and compared with the
fixed budget truncating the same share by mean spent tokens, ``min(length, budget)``
(see :mod:`classifiers.budget_eval`).

Example::

    $ thinkgate eval-budget --sweep /tmp/thinkgate-budget-sweeps/gsm8k_holdout_QwQ.jsonl \\
          --json out.json --plot out.png
    $ thinkgate eval-budget --sweep ../shared/data/budget/probe_trajectories/\\
    mmlu_pro_gemma4_12b.jsonl --probe-cv 5 --json probes.json --plot probes.png
    $ thinkgate eval-budget --data /tmp/gsm8k_budget_holdout.jsonl \\
          --prompt-column question --response-column answer --coverage 0.9 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from classifiers.budget_sweep import SweepRow


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``eval-budget``."""
    parser.add_argument(
        "--budget", default=None, help="predictor folder (default: the shipped predictor)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--sweep", metavar="FILE", help="budget sweep JSONL file")
    source.add_argument("--data", help="JSONL or CSV file of prompts and responses")
    parser.add_argument("--plot", metavar="PNG", default=None, help="--sweep: draw the curves")
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
        help="which predicted quantile is the budget (default: the highest; on a sweep "
        "the scale sweep absorbs it)",
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="tokenizer counting the responses (default: the predictor's own)",
    )
    parser.add_argument("--json", required=True, metavar="OUT", help="write the result here")
    _configure_probes(parser)


def _configure_probes(parser: argparse.ArgumentParser) -> None:
    from classifiers.budget_probe_rule import ProbeRule

    shipped = ProbeRule()
    probes = parser.add_argument_group("thinking probes (--sweep files with probe_answers)")
    probes.add_argument(
        "--probe-agree", type=int, default=shipped.agree, help="last probes that must agree"
    )
    probes.add_argument(
        "--probe-min-confidence",
        type=float,
        default=shipped.min_confidence,
        help="least confidence of each agreeing probe",
    )
    probes.add_argument(
        "--probe-min-mass",
        type=float,
        default=shipped.min_mass,
        help="least answer mass of each agreeing probe (where known)",
    )
    probes.add_argument(
        "--probe-tokens",
        type=int,
        default=shipped.probe_tokens,
        help="tokens charged for each probe",
    )
    probes.add_argument(
        "--probe-cv",
        type=int,
        default=0,
        metavar="K",
        help="also report the rule chosen by K-fold cross-validation grouped by prompt",
    )
    probes.add_argument("--probe-cv-seed", type=int, default=0, help="fold assignment seed")


def _write(report: dict[str, object], path: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _run_sweep(args: argparse.Namespace, predictor: object, column: int) -> int:
    from classifiers.budget_plots import plot_budget_sweep
    from classifiers.budget_sweep import evaluate_sweep, read_sweep

    try:
        rows = read_sweep(args.sweep)
        if not rows:
            raise ValueError(f"no rows in {args.sweep}")
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    predicted = predictor.predict(  # type: ignore[attr-defined]
        [row.prompt for row in rows], show_progress_bar=True
    )
    report = evaluate_sweep(rows, predicted[:, column])
    if all(row.probe_answers is not None for row in rows):
        try:
            report.update(_online(rows, args))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    _write(report, args.json)
    if args.plot:
        plot_budget_sweep(report, args.plot, title=Path(args.sweep).name)
    summary = {k: v for k, v in report.items() if k not in ("fixed", "predicted")}
    print(json.dumps(summary, indent=2))
    return 0


def _online(rows: list[SweepRow], args: argparse.Namespace) -> dict[str, object]:
    """The ``online`` (and with ``--probe-cv`` the ``online_cv``) objects."""
    from classifiers.budget_probe_rule import ProbeRule
    from classifiers.budget_probes import cross_validate_rule, evaluate_online, rule_grid

    rule = ProbeRule(
        agree=args.probe_agree,
        min_confidence=args.probe_min_confidence,
        min_mass=args.probe_min_mass,
        probe_tokens=args.probe_tokens,
    )
    found: dict[str, object] = {"online": evaluate_online(rows, rule)}
    if args.probe_cv:
        grid = rule_grid(probe_tokens=args.probe_tokens)
        found["online_cv"] = cross_validate_rule(
            rows, grid, folds=args.probe_cv, seed=args.probe_cv_seed
        )
    return found


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the JSON; prints it too. Returns the exit status."""
    from classifiers.budget_data import read_budget_rows
    from classifiers.budget_eval import evaluate_budgets
    from classifiers.budget_predictor import ComplexityPredictor
    from classifiers.budget_tokens import TokenCounter

    if not 0.0 < args.coverage <= 1.0:
        print(f"error: --coverage must be in (0, 1], got {args.coverage}", file=sys.stderr)
        return 2
    if args.plot and not args.sweep:
        print("error: --plot needs --sweep", file=sys.stderr)
        return 2
    try:
        predictor = ComplexityPredictor.load(args.budget)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    quantile = max(predictor.quantiles) if args.quantile is None else args.quantile
    if quantile not in predictor.quantiles:
        print(
            f"error: --quantile must be one of {list(predictor.quantiles)}, got {quantile}",
            file=sys.stderr,
        )
        return 2
    column = predictor.quantiles.index(quantile)
    if args.sweep:
        return _run_sweep(args, predictor, column)
    try:
        rows = read_budget_rows(args.data, args.prompt_column, args.response_column)
        counter = TokenCounter.load(args.tokenizer or predictor.tokenizer or None)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: no rows in {args.data}", file=sys.stderr)
        return 2
    needed = counter.count([row.target for row in rows], progress=True)
    predicted = predictor.predict([row.prompt for row in rows], show_progress_bar=True)
    result = evaluate_budgets(predicted[:, column], needed, coverage=args.coverage)
    report = {
        **result.to_dict(),
        "quantile": quantile,
        "tokenizer": counter.name,
        "budget": str(args.budget) if args.budget else "default",
        "data": args.data,
    }
    _write(report, args.json)
    print(json.dumps(report, indent=2))
    return 0
