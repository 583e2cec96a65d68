"""APGR / CPT against a hand-worked example, and the random/oracle references."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.difficulty import DifficultyRouter
from classifiers.evaluation import apgr, cpt, evaluate_scores, quality_curve

WEAK = np.array([1.0, 0.0, 0.0, 1.0])
STRONG = np.array([1.0, 1.0, 0.0, 1.0])
SCORES = np.array([0.1, 0.9, 0.5, 0.2])


def test_curve_matches_hand_worked_quantile_cuts() -> None:
    # Edges = np.quantile(scores, 0, .1, ..., 1): 0.1, 0.13, 0.16, 0.19, 0.26, 0.35, 0.44,
    # 0.54, 0.66, 0.78, 0.9. ">= edge" goes strong; the last edge uses ">" (nobody).
    # Share 1 (edge 0.1), 3/4 (three edges), 1/2 (three), 1/4 (three), 0 (last edge).
    # Only prompt 1 gains from strong, so quality is 0.75 whenever it is routed, else 0.5.
    curve = quality_curve(SCORES, WEAK, STRONG)
    expected = [[0.0, 0.5]] + [[0.25, 0.75]] * 3 + [[0.5, 0.75]] * 3 + [[0.75, 0.75]] * 3
    expected += [[1.0, 0.75]]
    np.testing.assert_allclose(curve, expected)


def test_apgr_and_cpt_hand_worked() -> None:
    curve = quality_curve(SCORES, WEAK, STRONG)
    # Area = 0.25 * (0.5 + 0.75) / 2 + 0.75 * 0.75 = 0.71875; weak area 0.5, gap 0.25.
    assert apgr(curve, 0.5, 0.75) == pytest.approx((0.71875 - 0.5) / 0.25)
    # Half the gap (0.625) is reached half-way between share 0 and 0.25.
    assert cpt(curve, 0.5, 0.75, 0.5) == pytest.approx(0.125)
    assert cpt(curve, 0.5, 0.75, 0.8) == pytest.approx(0.2)


def test_report_keys_and_references() -> None:
    rng = np.random.default_rng(0)
    weak = (rng.random(2000) < 0.6).astype(float)
    strong = np.maximum(weak, (rng.random(2000) < 0.5).astype(float))
    report = evaluate_scores(rng.random(2000), weak, strong)
    assert set(report.to_json()) == {
        "n",
        "weak_accuracy",
        "strong_accuracy",
        "apgr",
        "cpt50",
        "cpt80",
        "curve",
        "random_apgr",
        "oracle_apgr",
    }
    assert report.random_apgr == pytest.approx(0.5, abs=0.03)
    assert report.oracle_apgr > 0.85
    oracle = evaluate_scores(strong - weak + rng.random(2000) * 1e-3, weak, strong)
    assert oracle.apgr == pytest.approx(report.oracle_apgr, abs=0.02)


def test_no_quality_gap_is_an_error() -> None:
    with pytest.raises(ValueError, match="undefined"):
        evaluate_scores(SCORES, WEAK, WEAK)


def test_threshold_for_share() -> None:
    scores = np.array([0.1, 0.4, 0.2, 0.9, 0.7])
    threshold = DifficultyRouter.threshold_for_share(scores, 0.4)
    assert threshold == pytest.approx(0.7)
    assert (scores >= threshold).mean() == pytest.approx(0.4)
    assert (scores >= DifficultyRouter.threshold_for_share(scores, 0.0)).sum() == 0
    assert (scores >= DifficultyRouter.threshold_for_share(scores, 1.0)).all()
    with pytest.raises(ValueError, match="strong_share"):
        DifficultyRouter.threshold_for_share(scores, 1.5)
