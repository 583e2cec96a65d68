"""Promotion compares a budget model or a tau with the active one on held-out records of
the log (`router.learning.compare`): a worse one is refused, ``--force`` promotes it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from classifiers.budget_predictor import ComplexityPredictor
from router.cli import main as thinkgate
from router.learning.compare import budget_score
from router.learning.log_data import is_holdout
from router.learning.promotion import PromotionRefused, promote_budget, promote_tau
from router.learning.records import pack
from router.learning.store import LearningStore
from tests.learning.test_retrain_commands import _row


def _log_strong(url: str, scale: float, n: int = 300, budget: int = 1000) -> None:
    """Strong answers whose natural thinking length is ~``200 x scale`` tokens; answers
    past ``budget`` were force-closed (censored)."""
    width = int(ComplexityPredictor.load().metadata["n_features"])
    rng = np.random.default_rng(1)
    natural = scale * np.exp(rng.normal(np.log(200), 0.4, size=n))
    store = LearningStore(url)
    store.insert_decisions(
        [
            _row(
                i,
                thinking_budget=budget,
                reasoning_tokens=int(min(length, budget)),
                forced_close=bool(length >= budget),
                budget_features=pack(rng.normal(size=width) * 0.01),
            )
            for i, length in enumerate(natural)
        ]
    )
    store.close()


def test_budget_score_treats_forced_closes_as_censored() -> None:
    lengths = np.array([100.0, 100.0, 300.0, 300.0])
    censored = np.array([False, False, True, True])
    # a budget at or below a censored length is a miss; above it, unknown (left out)
    score = budget_score(np.array([150.0, 50.0, 200.0, 400.0]), lengths, censored)
    assert score["n_coverage"] == 3 and score["coverage"] == pytest.approx(1 / 3)
    assert score["spent"] == pytest.approx((100 + 50 + 200 + 300) / 4)


def test_worse_budget_model_is_refused_unless_forced(database_url: str, tmp_path: Path) -> None:
    folders = {}
    for name, scale in (("good", 1.0), ("bad", 0.3)):
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
        _log_strong(url, scale)
        folders[name] = tmp_path / name
        assert thinkgate(["train-budget", "--from-log", url, "--out", str(folders[name])]) == 0
    store = LearningStore(database_url)
    with pytest.raises(PromotionRefused, match="cannot compare"):
        promote_budget(store, folders["good"])  # nothing logged yet
    assert "budget" not in store.active_versions()
    _log_strong(database_url, 1.0)  # the traffic: natural lengths like the good model's
    first = promote_budget(store, folders["good"], force=True)

    with pytest.raises(PromotionRefused, match="worse") as refused:
        promote_budget(store, folders["bad"])
    detail = refused.value.detail
    assert detail["n_holdout"] >= 40
    assert detail["challenger"]["coverage"] < detail["active"]["coverage"]
    assert store.active_versions()["budget"] == first["version"]
    bad = promote_budget(store, folders["bad"], force=True)
    # the good one again (now the challenger) covers more: promoted without --force
    assert store.active_versions()["budget"] == bad["version"]
    again = promote_budget(store, folders["good"])
    assert again["comparison"]["worse"] is False
    assert store.active_versions()["budget"] == first["version"]
    events = [e for e in store.events() if e["kind"] == "budget"]
    assert [e["forced"] for e in events] == [True, True, False]
    store.close()


def _log_small(url: str, n: int = 300) -> None:
    """Small answers with uncertainty u: wrong when u > 0.6 (and 2% of the rest)."""
    rng = np.random.default_rng(2)
    u = rng.uniform(size=n)
    ok = (u <= 0.6) & (rng.uniform(size=n) > 0.02)
    store = LearningStore(url)
    store.insert_decisions(
        [
            _row(i, route="small", tier="small", uncertainty=float(v), escalation_scorer="margin")
            for i, v in enumerate(u)
        ]
    )
    for i, right in enumerate(ok):
        store.upsert_label(
            {
                "request_id": f"r{i}",
                "source": "feedback",
                "created_at": time.time(),
                "score": float(right),
                "small_ok": bool(right),
                "has_reference": False,
            }
        )
    store.close()


def test_worse_tau_is_refused_unless_forced(database_url: str, tmp_path: Path) -> None:
    _log_small(database_url)
    assert sum(is_holdout(f"r{i}") for i in range(300)) >= 40
    store = LearningStore(database_url)
    with pytest.raises(PromotionRefused, match="cannot compare"):
        promote_tau(store, 0.55, configured=0.5)  # no target error: no comparison
    # 0.55 keeps more answers than the configured 0.5, still under 10% wrong
    better = promote_tau(store, 0.55, configured=0.5, target_error=0.1)
    assert (
        better["comparison"]["active"]["escalation_rate"]
        > (better["comparison"]["challenger"]["escalation_rate"])
    )
    # 0.9 keeps many wrong answers: misses the target the active 0.55 meets
    with pytest.raises(PromotionRefused, match="worse") as refused:
        promote_tau(store, 0.9, configured=0.5, target_error=0.1)
    assert refused.value.detail["challenger"]["meets"] is False
    # 0.3 meets it but escalates more: worse too
    with pytest.raises(PromotionRefused, match="worse"):
        promote_tau(store, 0.3, target_error=0.1)
    assert store.active_versions()["tau"] == better["version"]
    store.close()

    refuse = ["promote", "--tau", "0.9", "--target-error", "0.1", "--database-url", database_url]
    assert thinkgate(refuse) == 3
    assert thinkgate([*refuse, "--force"]) == 0
    store = LearningStore(database_url)
    assert store.active_versions()["tau"] == "tau-0.9"
    assert store.events()[-1]["forced"] is True
    store.close()
