"""Escalated requests log the uncertainty of the small answer they replaced, and
``calibrate-escalation --from-log`` uses them: without them tau is biased toward the one
in force (every answer above it was escalated and would be missing)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from router.cascade import CascadeRequest, Decision
from router.cli import main as thinkgate
from router.engines.base import ChatMessage, Completion
from router.learning.records import ActiveVersions, DecisionRecord
from router.learning.store import LearningStore
from router.sampling import SamplingParams
from tests.learning.test_retrain_commands import _row


def test_escalated_record_keeps_the_small_answers_uncertainty() -> None:
    request = CascadeRequest(
        [ChatMessage("user", "q")], SamplingParams(max_tokens=1), request_id="e1"
    )
    decision = Decision(
        route="escalated",
        reason="router",
        tier="strong",
        uncertainty=0.8,
        escalation_scorer="margin",
    )
    row = DecisionRecord.build(
        request,
        decision,
        key_id="k",
        created_at=time.time(),
        answer_model="strong",
        prompt_tokens=1,
        completions=[Completion("a")],
        latency_s=0.0,
        stream=False,
        versions=ActiveVersions(router="r", budget="b", tau="tau-0.5", tau_value=0.5),
    ).to_row(store_text=False)
    assert row["route"] == "escalated" and row["uncertainty"] == pytest.approx(0.8)
    assert row["escalation_scorer"] == "margin"
    assert row["tau"] == 0.5 and row["tau_version"] == "tau-0.5"


def test_calibrate_from_log_sees_escalated_requests(database_url: str, tmp_path: Path) -> None:
    # served with tau 0.5: answers above it were escalated; the small tier is wrong past 0.7
    u = np.linspace(0.0, 1.0, 201)
    store = LearningStore(database_url)
    store.insert_decisions(
        [
            _row(
                i,
                route="small" if v <= 0.5 else "escalated",
                tier="small" if v <= 0.5 else "strong",
                uncertainty=float(v),
                escalation_scorer="margin",
            )
            for i, v in enumerate(u)
        ]
    )
    for i, v in enumerate(u):
        # feedback on an escalated request rates the strong answer: no small_ok
        escalated = v > 0.5
        store.upsert_label(
            {
                "request_id": f"r{i}",
                "source": "judge" if escalated and i % 2 else "feedback",
                "created_at": time.time(),
                "strong_better": 0.5,
                "small_ok": None if escalated and not i % 2 else bool(v <= 0.7),
                "has_reference": False,
            }
        )
    store.close()
    out = tmp_path / "tau.json"
    args = ["calibrate-escalation", "--from-log", database_url, "--json", str(out)]
    assert thinkgate([*args, "--target-error", "0.0"]) == 0
    details = json.loads(out.read_text())
    # past the tau in force: only the escalated requests' labels can show where errors start
    assert 0.69 <= details["tau"] < 0.7 and details["kept_error_rate"] == 0.0
    assert details["n_labelled"] == 101 + 50
    # a target rate counts every scored answer, labelled or not
    assert thinkgate([*args, "--rate", "0.25"]) == 0
    details = json.loads(out.read_text())
    assert details["n"] == 201 and details["tau"] == pytest.approx(0.75, abs=0.01)
