"""The coverage-matched comparison of predicted and fixed budgets."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.budget_eval import evaluate_budgets


def test_proportional_prediction_spends_the_mean_over_the_quantile() -> None:
    needed = np.arange(1, 101, dtype=float)
    result = evaluate_budgets(needed * 3.0, needed, coverage=0.9)
    assert result.n == 100
    assert result.spearman == pytest.approx(1.0)
    assert result.scale == pytest.approx(1 / 3)
    assert result.fixed_budget == 90.0
    assert result.mean_budget == pytest.approx(50.5)
    assert result.token_ratio == pytest.approx(50.5 / 90.0)
    assert result.coverage == 1.0  # every row fits a perfect budget
    assert result.target_coverage == 0.9


def test_constant_prediction_equals_the_fixed_budget() -> None:
    needed = np.array([5, 1, 9, 3, 7, 2, 8, 4, 6, 10], dtype=float)
    result = evaluate_budgets(np.full(10, 42.0), needed, coverage=0.8)
    assert result.fixed_budget == 8.0
    assert result.mean_budget == pytest.approx(8.0)
    assert result.token_ratio == pytest.approx(1.0)
    assert result.coverage == pytest.approx(0.8)
    assert result.spearman == 0.0


def test_scaled_budgets_reach_the_target_coverage() -> None:
    rng = np.random.default_rng(0)
    needed = rng.integers(20, 400, size=999).astype(float)
    predicted = needed * rng.lognormal(0.0, 0.3, size=999)
    for coverage in (0.5, 0.9, 0.95, 1.0):
        result = evaluate_budgets(predicted, needed, coverage=coverage)
        assert result.coverage >= coverage
        assert result.coverage < coverage + 2 / 999
        assert np.mean(needed <= result.fixed_budget) >= coverage


def test_spent_counts_what_a_self_stopping_model_spends() -> None:
    needed = np.array([10.0, 20.0, 40.0, 400.0])
    # a good predictor: budgets follow need, so the same 1 truncated row costs less
    result = evaluate_budgets(needed * np.array([1, 1, 1, 0.01]), needed, coverage=0.75)
    assert result.truncated_share == pytest.approx(0.25)
    assert result.fixed_truncated_share == pytest.approx(0.25)
    assert result.fixed_budget == 40.0
    assert result.fixed_mean_spent == pytest.approx((10 + 20 + 40 + 40) / 4)
    assert result.mean_spent == pytest.approx((10 + 20 + 40 + 4) / 4)
    assert result.spent_ratio == pytest.approx(74 / 110)


def test_to_dict_has_the_issue_keys() -> None:
    keys = evaluate_budgets(np.ones(3), np.array([1.0, 2.0, 3.0])).to_dict().keys()
    assert {"n", "spearman", "coverage", "scale", "mean_budget", "fixed_budget", "token_ratio"} <= (
        set(keys)
    )


@pytest.mark.parametrize(
    ("predicted", "needed", "coverage", "message"),
    [
        ([1.0], [1.0, 2.0], 0.9, "same length"),
        ([], [], 0.9, "zero rows"),
        ([1.0], [1.0], 0.0, "coverage must be in"),
        ([1.0], [1.0], 1.5, "coverage must be in"),
        ([0.0], [1.0], 0.9, "positive and finite"),
        ([float("nan")], [1.0], 0.9, "positive and finite"),
        ([1.0], [-1.0], 0.9, "must not be negative"),
    ],
)
def test_bad_inputs_are_named(
    predicted: list[float], needed: list[float], coverage: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_budgets(np.array(predicted), np.array(needed), coverage=coverage)
