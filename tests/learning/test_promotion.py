"""Promotion refuses a worse (or incomparable) challenger unless forced; tau and budget."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from classifiers.featurizer import FeaturizerConfig
from classifiers.router_fit import fit_router_from_features
from router.cascade import CascadeRequest, Decision
from router.cli import main as thinkgate
from router.engines.base import ChatMessage, Completion
from router.learning.promotion import PromotionRefused, promote_router, promote_tau
from router.learning.records import ActiveVersions, DecisionRecord
from router.learning.store import LearningStore
from router.sampling import SamplingParams

FEATURIZER = FeaturizerConfig(static_tokens=0, static_tail_tokens=(), text_features=True)


def _log(store: LearningStore, x: np.ndarray, strong_better: np.ndarray) -> None:
    versions = ActiveVersions(router="r", budget="b", tau="tau-1", tau_value=1.0)
    rows, labels = [], []
    for i, (vector, value) in enumerate(zip(x, strong_better, strict=True)):
        request = CascadeRequest(
            [ChatMessage("user", "q")], SamplingParams(max_tokens=1), request_id=f"r{i}"
        )
        record = DecisionRecord.build(
            request,
            Decision(route="small", reason="router", tier="small"),
            key_id="k",
            created_at=time.time(),
            answer_model="m",
            prompt_tokens=1,
            completions=[Completion("a")],
            latency_s=0.0,
            stream=False,
            versions=versions,
        )
        rows.append(
            record.to_row(
                store_text=False, router_features=vector, featurizer_id=FEATURIZER.featurizer_id
            )
        )
        labels.append(
            {
                "request_id": f"r{i}",
                "source": "judge",
                "created_at": time.time(),
                "strong_better": float(value),
                "small_ok": bool(value <= 0.5),
                "has_reference": False,
            }
        )
    store.insert_decisions(rows)
    for label in labels:
        store.upsert_label(label)


def test_worse_challenger_is_refused_unless_forced(database_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    # strong better on ~80%: preference labels need a quality gap for APGR to mean much
    strong_better = (x[:, 0] + 0.3 * rng.normal(size=300) > -0.8).astype(float)
    store = LearningStore(database_url)
    _log(store, x, strong_better)
    good = fit_router_from_features(x, 1 - strong_better, strong_better, featurizer=FEATURIZER)
    bad = fit_router_from_features(x, strong_better, 1 - strong_better, featurizer=FEATURIZER)
    good_dir, bad_dir = good.save(tmp_path / "good"), bad.save(tmp_path / "bad")

    # the shipped router cannot score these stored vectors (other featurizer): no comparison
    with pytest.raises(PromotionRefused, match="cannot compare"):
        promote_router(store, good_dir)
    assert store.active_versions() == {}
    first = promote_router(store, good_dir, force=True)
    assert store.active_versions()["router"] == first["version"]

    with pytest.raises(PromotionRefused, match="worse") as refused:
        promote_router(store, bad_dir)
    detail = refused.value.detail
    assert detail["n_holdout"] >= 40
    assert detail["challenger"]["apgr"] < detail["active"]["apgr"]
    assert store.active_versions()["router"] == first["version"]

    forced = promote_router(store, bad_dir, force=True)
    assert forced["previous"] == first["version"]
    assert store.active_versions()["router"] == forced["version"]
    events = [e for e in store.events() if e["kind"] == "router"]
    assert [e["forced"] for e in events] == [True, True]

    out = tmp_path / "eval.json"
    rc = thinkgate(
        ["eval-router", "--from-log", database_url, "--router", str(good_dir), "--json", str(out)]
    )
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["n"] == detail["n_holdout"] and report["apgr"] == pytest.approx(
        detail["active"]["apgr"]
    )

    tau = promote_tau(store, 0.42, force=True)
    assert store.active_versions()["tau"] == tau["version"] == "tau-0.42"
    assert store.artifact("tau-0.42")["value"] == pytest.approx(0.42)  # type: ignore[index]
    store.close()
