"""AUROC and the cascade curve of eval-escalation, on hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.escalation.selfref_eval import auroc, escalation_curve, escalation_report, plot_curves


def test_auroc_perfect_inverse_and_random() -> None:
    correct = [True, True, False, False]
    assert auroc([0.1, 0.2, 0.8, 0.9], correct) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], correct) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], correct) == 0.5


def test_auroc_counts_pairs_with_half_ties() -> None:
    # wrong: 0.7, 0.4; right: 0.4, 0.1 -> pairs (0.7>0.4)=1, (0.7>0.1)=1, (0.4=0.4)=.5, (0.4>0.1)=1
    assert auroc([0.7, 0.4, 0.4, 0.1], [False, False, True, True]) == pytest.approx(3.5 / 4)


def test_auroc_undefined_with_one_class() -> None:
    assert auroc([0.1, 0.2], [True, True]) is None


def test_curve_escalates_most_uncertain_first() -> None:
    # uncertainties and correctness: 0.9 wrong, 0.6 right, 0.3 wrong, 0.1 right
    curve = escalation_curve([0.1, 0.9, 0.3, 0.6], [True, False, False, True])
    assert curve == [[0.0, 0.5], [0.25, 0.75], [0.5, 0.75], [0.75, 1.0], [1.0, 1.0]]


def test_curve_escalates_ties_together() -> None:
    curve = escalation_curve([0.5, 0.5, 0.2], [True, False, True])
    assert curve == [[0.0, pytest.approx(2 / 3)], [pytest.approx(2 / 3), 1.0], [1.0, 1.0]]


def test_report_and_plot(tmp_path: Path) -> None:
    report = escalation_report(
        [True, False, True],
        {"margin": [0.1, 0.9, 0.2], "entropy": [0.5, 0.5, 0.5]},
        skipped={"selfref": "no tokens"},
    )
    assert report["n"] == 3
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["scorers"]["margin"]["auroc"] == 1.0
    assert report["scorers"]["entropy"]["auroc"] == 0.5
    assert report["skipped"] == {"selfref": "no tokens"}
    out = plot_curves(report, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
