"""Thinking budgets on the sweep files: predictor vs fixed budget vs prompt length.

For each sweep file (``bench/make_budget_sweeps.py`` writes them), prints the mean
thinking tokens spent at the target accuracy (the unlimited accuracy) by the best fixed
budget, by ``scale x`` the shipped predictor's budget, and by ``scale x`` the prompt's
length (a trivial baseline), their ratios to fixed, the same at 98% of the target, and
what the default policy of ``budget`` in the config (``clamp(quantile x slack, min, max)``)
gets: accuracy and spent, beside the fixed budget reaching the same accuracy.
``--plot`` draws the held-out GSM8K curves, one panel per model.

Usage::

    python bench/make_budget_sweeps.py --out /tmp/thinkgate-budget-sweeps
    python bench/budget_report.py --sweeps /tmp/thinkgate-budget-sweeps \\
        --plot classifiers/artifacts/budget/sweep_gsm8k_holdout.png
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", default="/tmp/thinkgate-budget-sweeps", help="sweep folder")
    parser.add_argument("--budget", default=None, help="predictor folder (default: shipped)")
    parser.add_argument("--plot", default=None, help="PNG of the held-out GSM8K curves")
    args = parser.parse_args()

    import numpy as np

    from classifiers.budget_plots import plot_budget_sweeps
    from classifiers.budget_predictor import ComplexityPredictor
    from classifiers.budget_sweep import accuracy_and_spent, evaluate_sweep, read_sweep
    from router.config import BudgetConfig

    policy = BudgetConfig()
    predictor = ComplexityPredictor.load(args.budget)
    column = min(
        range(len(predictor.quantiles)),
        key=lambda i: abs(predictor.quantiles[i] - policy.quantile),
    )
    print(
        f"predictor {args.budget or 'shipped'} (tokenizer {predictor.tokenizer}); "
        f"policy clamp(q{predictor.quantiles[column]} x {policy.slack}, "
        f"{policy.min_tokens}, {policy.max_tokens})"
    )
    header = (
        "| file | n | acc | unlimited spent | fixed @target | predicted | ratio "
        "| prompt-length ratio | ratio @98% | policy acc | policy spent | fixed spent @policy acc |"
    )
    print(header)
    print("|---" * 12 + "|")
    panels = {}
    for path in sorted(Path(args.sweeps).glob("*.jsonl")):
        if "_train_" in path.name:
            continue
        rows = read_sweep(path)
        budgets = predictor.predict([row.prompt for row in rows])[:, column]
        lengths = np.array([len(row.prompt) for row in rows], dtype=np.float64)
        report = evaluate_sweep(rows, budgets)
        baseline = evaluate_sweep(rows, lengths)
        near = evaluate_sweep(rows, budgets, target=0.98 * report["unlimited_accuracy"])
        served = np.clip(np.round(budgets * policy.slack), policy.min_tokens, policy.max_tokens)
        accuracy, spent = accuracy_and_spent(rows, served)
        matched = evaluate_sweep(rows, np.ones(len(rows)), target=accuracy)
        print(
            f"| {path.stem} | {report['n']} | {report['unlimited_accuracy']:.3f} "
            f"| {report['unlimited_mean_spent']:.0f} | {report['fixed_spent_at_target']:.0f} "
            f"| {report['predicted_spent_at_target']:.0f} | **{report['spent_ratio']:.3f}** "
            f"| {baseline['spent_ratio']:.3f} | {near['spent_ratio']:.3f} "
            f"| {accuracy:.3f} | {spent:.0f} | {matched['fixed_spent_at_target']:.0f} |"
        )
        if path.stem.startswith("gsm8k_holdout_"):
            panels[path.stem.removeprefix("gsm8k_holdout_")] = (
                report,
                {"prompt length": baseline["predicted"]},
            )
    if args.plot and panels:
        print(f"plot: {plot_budget_sweeps(panels, args.plot)}")


if __name__ == "__main__":
    main()
