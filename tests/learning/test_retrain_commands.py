"""``train-budget --from-log`` (force-closed = censored) and ``calibrate-escalation
--from-log`` (tau for a rate or a target error), on records written to a real database."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from classifiers.budget_model import BudgetRidge
from classifiers.budget_predictor import ComplexityPredictor
from router.cli import main as thinkgate
from router.learning.records import pack
from router.learning.store import LearningStore


def _row(i: int, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "request_id": f"r{i}",
        "created_at": time.time(),
        "key_id": "k",
        "mode": "auto",
        "stream": False,
        "route": "strong",
        "reason": "router",
        "tier": "strong",
        "reasoning_tokens": 0,
        "forced_close": False,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "latency_s": 0.0,
        "answer_model": "tiny-strong",
    }
    row.update(values)
    return row


def test_train_budget_from_log_treats_forced_closes_as_censored(tmp_path: Path) -> None:
    width = int(ComplexityPredictor.load().metadata["n_features"])
    rng = np.random.default_rng(0)
    natural = np.exp(rng.normal(np.log(200), 0.4, size=120))
    budget = 180
    medians = {}
    for censor in (True, False):
        url = f"sqlite:///{tmp_path / f'{censor}.db'}"
        store = LearningStore(url)
        store.insert_decisions(
            [
                _row(
                    i,
                    thinking_budget=budget,
                    reasoning_tokens=int(min(n, budget)),
                    forced_close=bool(censor and n >= budget),
                    budget_features=pack(rng.normal(size=width) * 0.01),
                )
                for i, n in enumerate(natural)
            ]
        )
        store.close()
        out = tmp_path / f"budget-{censor}"
        assert thinkgate(["train-budget", "--from-log", url, "--out", str(out)]) == 0
        meta = json.loads((out / "metadata.json").read_text())
        assert meta["tokenizer"] == "tiny-strong"
        assert (meta["training_data"]["n_censored"] > 0) == censor
        model = BudgetRidge.load(out / "weights.safetensors")
        medians[censor] = float(np.median(model.predict_tokens(np.zeros((1, width)))[:, 0]))
    # cut-off answers are lower bounds: the censored fit sees past the budget, the naive
    # one (lengths taken at face value) cannot
    assert medians[True] > budget > medians[False]
    assert medians[True] == pytest.approx(200, rel=0.2)


def test_calibrate_escalation_from_log(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = LearningStore(url)
    uncertainties = np.linspace(0.0, 1.0, 101)
    store.insert_decisions(
        [
            _row(i, route="small", tier="small", uncertainty=float(u), escalation_scorer="margin")
            for i, u in enumerate(uncertainties)
        ]
    )
    for i, u in enumerate(uncertainties):
        store.upsert_label(
            {
                "request_id": f"r{i}",
                "source": "feedback",
                "created_at": time.time(),
                "score": float(u < 0.6),
                "small_ok": bool(u < 0.6),
                "has_reference": False,
            }
        )
    store.close()
    out = tmp_path / "tau.json"
    assert (
        thinkgate(
            ["calibrate-escalation", "--from-log", url, "--target-error", "0.0", "--json", str(out)]
        )
        == 0
    )
    details = json.loads(out.read_text())
    assert details["tau"] == pytest.approx(0.59) and details["kept_error_rate"] == 0.0
    assert details["scorer"] == "margin"
    assert (
        thinkgate(["calibrate-escalation", "--from-log", url, "--rate", "0.25", "--json", str(out)])
        == 0
    )
    assert json.loads(out.read_text())["escalation_rate"] == pytest.approx(0.25, abs=0.01)
    assert thinkgate(["calibrate-escalation", "--from-log", url]) == 2
    assert "--rate or --target-error" in capsys.readouterr().err
