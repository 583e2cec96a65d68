"""Grading reasoning traces, where the answer first appears, and the shared MiP traces."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from classifiers.budget_traces import (
    cut_budgets,
    first_answer_end,
    grade_gsm8k,
    load_traces,
    need_and_censoring,
    sweep_correct,
)

_DATA = Path(
    os.environ.get("THINKGATE_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data")
)
_TRACES = _DATA / "budget" / "mip_overthinking"


def test_grading_reads_boxed_then_last_number() -> None:
    assert grade_gsm8k("think</think> so \\boxed{\\$1,250}", "1250")
    assert grade_gsm8k("think</think> It costs 18 dollars.", "18")
    assert not grade_gsm8k("think</think> \\boxed{17} not 18", "18")
    assert grade_gsm8k("\\boxed{\\frac{1}{2}} no close marker, boxed 0.5? \\boxed{0.5}", "0.5")
    assert not grade_gsm8k("think</think> no number at all", "3")


def test_answer_in_the_question_must_read_as_a_result() -> None:
    question = "Ann has 3 bags of 4 apples and gives away 9. How many are left?"
    thinking = "She has 3 bags. 3 * 4 = 12 apples, minus 9 gives 3. So the answer is 3."
    end = first_answer_end(thinking, "3", question)
    assert end is not None
    assert thinking[:end].endswith("minus 9 gives 3")
    # a number not in the question counts wherever it appears
    assert thinking[: first_answer_end(thinking, "12", question)].endswith("= 12")
    assert first_answer_end(thinking, "99", question) is None


def test_math_answers_match_without_spaces_and_sizing() -> None:
    thinking = "So the slope is \\left( \\dfrac{1}{2} \\right), let me check."
    end = first_answer_end(thinking, "\\frac{1}{2}", "Find the slope.")
    assert end is not None and thinking[:end].endswith("\\dfrac{1}{2}")


def test_need_and_censoring() -> None:
    natural = np.array([100, 100, 100, 100])
    answer_at = np.array([30, -1, -1, 150])
    correct = np.array([True, True, False, False])
    need, censored = need_and_censoring(natural, answer_at, correct)
    assert need.tolist() == [30, 100, 100, 100]
    assert censored.tolist() == [False, False, True, False]


def test_cuts_are_right_once_the_answer_has_appeared() -> None:
    budgets = cut_budgets(100)
    assert budgets[0] == 16 and budgets[-1] == 100
    assert (np.diff(budgets) > 0).all()
    flags = sweep_correct(budgets, 40, correct=False)
    assert not flags[budgets < 40].any()
    assert flags[(budgets >= 40) & (budgets < 100)].all()
    assert not flags[-1]  # the final answer was wrong: talked out of it
    assert cut_budgets(5).tolist() == [5]


@pytest.mark.skipif(not _TRACES.is_dir(), reason=f"traces not found at {_TRACES}")
def test_shared_traces_grade_like_the_published_accuracy() -> None:
    traces = load_traces(_TRACES)
    assert len(traces) == 3 * (582 + 52)
    for model in ("QwQ", "DSQ", "deepseekR1"):
        mine = [t for t in traces if t.model == model and t.dataset == "gsm8k"]
        accuracy = np.mean([t.correct for t in mine])
        assert 0.93 <= accuracy <= 0.99, (model, accuracy)
        found = np.mean([t.answer_end is not None for t in mine])
        assert found > 0.8


@pytest.mark.slow
@pytest.mark.skipif(not _TRACES.is_dir(), reason=f"traces not found at {_TRACES}")
def test_make_train_budget_reproduces_the_shipped_artifact(tmp_path: Path) -> None:
    import json

    from classifiers.budget_predictor import DEFAULT_BUDGET_DIR
    from router.cli import main

    shipped = json.loads((DEFAULT_BUDGET_DIR / "metadata.json").read_text())
    argv = ["train-budget", "--traces", str(_TRACES), "--datasets", "gsm8k"]
    assert main([*argv, "--holdout-fraction", "0.2", "--out", str(tmp_path)]) == 0
    rebuilt = json.loads((tmp_path / "metadata.json").read_text())
    assert rebuilt["data"] == shipped["data"]  # same files, same sha256
    # Same tensors up to float rounding: BLAS and torch reductions round differently with
    # the thread count and CPU (a loaded CI run differed in the last bits of the ridge).
    from safetensors.numpy import load_file

    got = load_file(tmp_path / "weights.safetensors")
    want = load_file(DEFAULT_BUDGET_DIR / "weights.safetensors")
    assert sorted(got) == sorted(want)
    for name, tensor in want.items():
        assert got[name].shape == tensor.shape, name
        np.testing.assert_allclose(got[name], tensor, rtol=1e-6, atol=1e-9, err_msg=name)
