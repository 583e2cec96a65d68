"""Sweep evaluation: exact step curves, checked against a brute-force evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.budget_sweep import SweepRow, evaluate_sweep, read_sweep, sweep_line


def _random_rows(n: int, seed: int) -> list[SweepRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        natural = int(rng.integers(50, 2000))
        budgets = np.unique(np.append(rng.integers(1, natural, size=8), natural))
        correct = rng.random(budgets.size) < np.linspace(0.2, 0.95, budgets.size)
        rows.append(SweepRow(f"q{i}", natural, budgets, correct))
    return rows


def _brute(rows: list[SweepRow], budgets: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean spent with per-row budgets, straight from the definition."""
    right, spent = [], []
    for row, b in zip(rows, budgets, strict=True):
        listed = [j for j, value in enumerate(row.budgets) if value <= b]
        right.append(bool(row.correct[listed[-1]]) if listed else False)
        spent.append(min(b, row.natural_tokens))
    return float(np.mean(right)), float(np.mean(spent))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curves_and_targets_match_the_definition(seed: int) -> None:
    rows = _random_rows(60, seed)
    predicted = np.random.default_rng(seed + 10).uniform(1, 100, size=60)
    report = evaluate_sweep(rows, predicted)
    assert report["target_accuracy"] == report["unlimited_accuracy"]
    assert report["unlimited_accuracy"] == pytest.approx(np.mean([r.correct[-1] for r in rows]))
    for point in report["fixed"][::7]:
        accuracy, spent = _brute(rows, np.full(60, point["budget"]))
        assert (point["accuracy"], point["mean_spent"]) == pytest.approx((accuracy, spent))
    for point in report["predicted"][::7]:
        accuracy, spent = _brute(rows, point["scale"] * predicted)
        assert (point["accuracy"], point["mean_spent"]) == pytest.approx((accuracy, spent))
    # the fixed optimum: no listed budget reaches the target with less spent
    target = report["target_accuracy"]
    best = min(
        spent
        for b in {int(v) for r in rows for v in r.budgets}
        for accuracy, spent in [_brute(rows, np.full(60, b))]
        if accuracy >= target
    )
    assert report["fixed_spent_at_target"] == pytest.approx(best)
    assert report["spent_ratio"] == pytest.approx(
        report["predicted_spent_at_target"] / report["fixed_spent_at_target"]
    )


def test_an_oracle_prediction_saves_and_a_constant_one_does_not() -> None:
    rows = []
    for i in range(40):
        need, natural = 20 * (1 + i % 8), 600
        budgets = np.array([*range(10, natural, 10), natural])
        rows.append(SweepRow(f"q{i}", natural, budgets, budgets >= need))
    needs = np.array([20.0 * (1 + i % 8) for i in range(40)])
    oracle = evaluate_sweep(rows, needs)
    constant = evaluate_sweep(rows, np.ones(40))
    assert constant["spent_ratio"] == pytest.approx(1.0)
    assert oracle["predicted_spent_at_target"] == pytest.approx(needs.mean())
    assert oracle["spent_ratio"] == pytest.approx(needs.mean() / 160.0)


def test_read_round_trip_and_errors(tmp_path: Path) -> None:
    rows = _random_rows(3, 0)
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(sweep_line(r) for r in rows) + "\n\n")
    back = read_sweep(path)
    assert [r.prompt for r in back] == ["q0", "q1", "q2"]
    np.testing.assert_array_equal(back[1].budgets, rows[1].budgets)
    bad = {"prompt": "p", "natural_tokens": 9, "budgets": [5, 8], "correct": [True, True]}
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="must be natural_tokens"):
        read_sweep(path)
    path.write_text(json.dumps({**bad, "budgets": [8, 9, 9], "correct": [True] * 3}))
    with pytest.raises(ValueError, match="increasing"):
        read_sweep(path)
    with pytest.raises(ValueError, match="one predicted budget per row"):
        evaluate_sweep(rows, np.ones(2))
    with pytest.raises(FileNotFoundError):
        read_sweep(tmp_path / "none.jsonl")
