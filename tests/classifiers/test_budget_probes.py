"""Thinking probes on sweep files: the online rule replayed, checked by hand and by brute force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.answer_normalisation import Answer, normalise_answer
from classifiers.budget_probe_rule import Probe, ProbeRule
from classifiers.budget_probes import (
    cross_validate_rule,
    evaluate_online,
    online_outcomes,
    rule_grid,
)
from classifiers.budget_sweep import SweepRow, read_sweep, sweep_line
from router.cli import main

_ONLINE_KEYS = {
    "accuracy",
    "mean_spent",
    "probes",
    "probe_tokens",
    "fixed_spent_at_same_accuracy",
    "spent_ratio",
}


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("(b)", "letter", Answer("letter", "B")),
        ("**C**", "letter", Answer("letter", "C")),
        ("The answer is (E).", "letter", Answer("letter", "E")),
        ("Z", "letter", None),
        ("Because", "letter", None),
        ("\\boxed{1,234.50}", "auto", Answer("number", "1234.5")),
        ("12.0", "number", Answer("number", "12")),
        ("$1,000", "number", Answer("number", "1000")),
        ("-0.00", "number", Answer("number", "0")),
        ("42 apples, 3 pears", "number", Answer("number", "42")),
        ("42 apples", "auto", Answer("text", "42 apples")),
        ("\\boxed{\\frac{1}{2}}", "auto", Answer("text", "\\frac{1}{2}")),
        ("  The  Moon. ", "text", Answer("text", "the moon")),
    ],
)
def test_answers_are_normalised(text: str, kind: str, expected: Answer | None) -> None:
    assert normalise_answer(text, kind) == expected  # type: ignore[arg-type]


def test_free_form_answers_agree_only_on_the_exact_normalised_text() -> None:
    assert normalise_answer("Paris", "text") == normalise_answer(" paris.", "text")
    assert normalise_answer("Paris", "text") != normalise_answer("Paris, France", "text")


def test_a_deployment_pattern_extracts_the_answer_first() -> None:
    pattern = r"ANSWER:\s*(\S+)"
    assert normalise_answer("so ANSWER: 42 done", extract=pattern) == Answer("number", "42")
    assert normalise_answer("no cue here", extract=pattern) is None


def test_the_rule_needs_agreeing_ready_probes() -> None:
    rule = ProbeRule(agree=2, min_confidence=0.9, min_mass=0.5)
    a, b = Answer("letter", "A"), Answer("letter", "B")
    assert not rule.settled([Probe(a, 0.99, 0.9)])
    assert not rule.settled([Probe(a, 0.99, 0.9), Probe(b, 0.99, 0.9)])
    assert not rule.settled([Probe(a, 0.8, 0.9), Probe(a, 0.99, 0.9)])
    assert not rule.settled([Probe(a, 0.99, 0.1), Probe(a, 0.99, 0.9)])
    assert rule.settled([Probe(b, 0.99, 0.9), Probe(a, 0.99, None), Probe(a, 0.95, 0.6)])
    assert not rule.settled([Probe(None, 1.0, 1.0), Probe(None, 1.0, 1.0)])
    with pytest.raises(ValueError, match="agree must be >= 1, got 0"):
        ProbeRule(agree=0)


def _random_rows(n: int, seed: int) -> list[SweepRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n // 3):
        gold = "ABCD"[i % 4]
        for _ in range(3):
            natural = int(rng.integers(100, 3000))
            budgets = np.round(np.linspace(0, natural, 11)).astype(np.int64)
            answers = tuple(
                gold if rng.random() < 0.3 + 0.06 * k else "ABCD"[rng.integers(4)]
                for k in range(11)
            )
            rows.append(
                SweepRow(
                    f"q{i}",
                    natural,
                    budgets,
                    np.array([a == gold for a in answers]),
                    answers,
                    rng.uniform(0.5, 1.0, 11),
                    rng.uniform(0.0, 1.0, 11),
                )
            )
    return rows


def _brute(rows: list[SweepRow], rule: ProbeRule) -> tuple[float, float, float]:
    """Accuracy, mean spent and mean probes straight from the definition."""
    right, spent, count = [], [], []
    for row in rows:
        inside = [k for k, b in enumerate(row.budgets) if 0 < b < row.natural_tokens]
        stop, seen = len(row.budgets) - 1, 0
        for position, k in enumerate(inside):
            seen += 1
            last = inside[max(0, position - rule.agree + 1) : position + 1]
            if len(last) < rule.agree:
                continue
            assert row.probe_confidences is not None and row.probe_mass is not None
            if len({row.probe_answers[j] for j in last}) == 1 and all(  # type: ignore[index]
                row.probe_confidences[j] >= rule.min_confidence
                and row.probe_mass[j] >= rule.min_mass
                for j in last
            ):
                stop = k
                break
        right.append(bool(row.correct[stop]))
        spent.append(row.budgets[stop] + seen * rule.probe_tokens)
        count.append(seen)
    return float(np.mean(right)), float(np.mean(spent)), float(np.mean(count))


@pytest.mark.parametrize("rule", rule_grid((1, 2, 3), (0.6, 0.9), (0.0, 0.4), probe_tokens=7))
def test_online_replay_matches_the_definition(rule: ProbeRule) -> None:
    rows = _random_rows(90, 3)
    report = evaluate_online(rows, rule)
    assert (report["accuracy"], report["mean_spent"], report["probes"]) == pytest.approx(
        _brute(rows, rule)
    )
    assert report["probe_tokens"] == pytest.approx(report["probes"] * 7)
    assert report["spent_ratio"] == pytest.approx(
        report["mean_spent"] / report["fixed_spent_at_same_accuracy"]
    )


def test_a_stop_only_sees_probes_up_to_its_cut() -> None:
    # the later probes disagree: a rule that looked ahead would not stop at cut 2
    row = SweepRow(
        "p",
        100,
        np.array([0, 25, 50, 75, 100]),
        np.array([False, True, True, False, False]),
        ("", "A", "A", "B", "C"),
        np.full(5, 0.99),
        np.full(5, 0.9),
    )
    outcomes = online_outcomes([row], ProbeRule(agree=2, min_confidence=0.9, min_mass=0.5))
    assert outcomes.stop.tolist() == [2] and outcomes.correct.tolist() == [True]


def test_cross_validation_groups_questions_and_reports_out_of_fold() -> None:
    rows = _random_rows(90, 4)
    result = cross_validate_rule(rows, rule_grid((1, 2), (0.6, 0.9), (0.0,)), folds=3)
    assert set(result["online"]) >= _ONLINE_KEYS
    assert len(result["fold_rules"]) == 3
    with pytest.raises(ValueError, match="folds must be >= 2"):
        cross_validate_rule(rows, rule_grid(), folds=1)


def test_sweep_lines_keep_the_probe_keys(tmp_path: Path) -> None:
    rows = _random_rows(6, 5)
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(sweep_line(r) for r in rows) + "\n")
    back = read_sweep(path)
    assert back[0].probe_answers == rows[0].probe_answers
    assert back[0].probe_mass == pytest.approx(rows[0].probe_mass)
    line = json.loads(sweep_line(rows[0]))
    line["probe_mass"] = [None] * 11
    path.write_text(json.dumps(line) + "\n")
    assert np.isnan(read_sweep(path)[0].probe_mass).all()  # type: ignore[arg-type]
    line["probe_answers"] = ["A"]
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=f"{path}:1: probe_answers must be a list of 11"):
        read_sweep(path)


def test_eval_budget_reports_the_online_rule(tmp_path: Path) -> None:
    sweep = tmp_path / "probes.jsonl"
    sweep.write_text("\n".join(sweep_line(r) for r in _random_rows(60, 6)) + "\n")
    out, plot = tmp_path / "out.json", tmp_path / "out.png"
    argv = ["eval-budget", "--sweep", str(sweep), "--json", str(out), "--plot", str(plot)]
    assert main([*argv, "--probe-agree", "2", "--probe-cv", "3"]) == 0
    report = json.loads(out.read_text())
    assert set(report["online"]) >= _ONLINE_KEYS
    assert report["online"]["rule"]["agree"] == 2
    assert set(report["online_cv"]["online"]) >= _ONLINE_KEYS
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
