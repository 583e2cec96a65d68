"""Promotion also compares a router challenger with the prompt-length baseline (longer
prompt = harder, by the record's prompt tokens) on the held-out labelled records: one that
beats the champion but loses to prompt length is refused unless forced."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from classifiers.difficulty import DifficultyRouter
from classifiers.featurizer import FeaturizerConfig
from classifiers.router_heads import GainHead, LinearHead, PlattCalibration
from router.cascade import CascadeRequest, Decision
from router.cli import main as thinkgate
from router.engines.base import ChatMessage, Completion
from router.learning.promotion import PromotionRefused, promote_router
from router.learning.records import ActiveVersions, DecisionRecord
from router.learning.store import LearningStore
from router.sampling import SamplingParams

FEATURIZER = FeaturizerConfig(static_tokens=0, static_tail_tokens=(), text_features=True)
N = 400


def _log(
    store: LearningStore, x: np.ndarray, tokens: np.ndarray, strong_better: np.ndarray
) -> None:
    versions = ActiveVersions(router="r", budget="b", tau="tau-1", tau_value=1.0)
    rows = []
    for i, (vector, n_tokens) in enumerate(zip(x, tokens, strict=True)):
        request = CascadeRequest(
            [ChatMessage("user", "q")], SamplingParams(max_tokens=1), request_id=f"r{i}"
        )
        record = DecisionRecord.build(
            request,
            Decision(route="small", reason="router", tier="small"),
            key_id="k",
            created_at=time.time(),
            answer_model="m",
            prompt_tokens=int(n_tokens),
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
    store.insert_decisions(rows)
    for i, value in enumerate(strong_better):
        store.upsert_label(
            {
                "request_id": f"r{i}",
                "source": "judge",
                "created_at": time.time(),
                "strong_better": float(value),
                "small_ok": bool(value <= 0.5),
                "has_reference": False,
            }
        )


def _router(direction: np.ndarray, folder: Path) -> Path:
    """A router whose p_strong rises with ``features @ direction``."""
    d = len(direction)
    head = GainHead(
        strong=LinearHead(np.zeros(d), np.ones(d), [direction.reshape(d, 1)], [np.zeros(1)]),
        weak=LinearHead(np.zeros(d), np.ones(d), [np.zeros((d, 1))], [np.zeros(1)]),
    )
    return DifficultyRouter(FEATURIZER, head, PlattCalibration()).save(folder)


def test_a_challenger_that_loses_to_prompt_length_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, 4))
    difficulty = x[:, 0]
    strong_better = (difficulty + 0.3 * rng.normal(size=N) > -0.8).astype(float)
    # prompt length carries some of the difficulty; the weak challenger carries less
    tokens = np.maximum(1, np.round(300 + 100 * (difficulty + 0.7 * rng.normal(size=N))))
    store = LearningStore(database_url)
    _log(store, x, tokens, strong_better)
    champion = _router(np.array([0.0, 0.0, 0.0, 1.0]), tmp_path / "champion")  # noise
    weak = _router(np.array([0.3, 1.0, 0.0, 0.0]), tmp_path / "weak")
    good = _router(np.array([1.0, 0.0, 0.0, 0.0]), tmp_path / "good")
    first = promote_router(store, champion, force=True)

    with pytest.raises(PromotionRefused, match="prompt-length baseline") as refused:
        promote_router(store, weak)
    detail = refused.value.detail
    assert detail["active"]["apgr"] < detail["challenger"]["apgr"]  # beats the champion
    assert detail["challenger"]["apgr"] < detail["prompt_length"]["apgr"]  # not the baseline
    assert store.active_versions()["router"] == first["version"]
    # the CLI says the same and exits 3; --force promotes it anyway
    url = ["--database-url", database_url]
    assert thinkgate(["promote", str(weak), *url]) == 3
    assert store.active_versions()["router"] == first["version"]
    assert thinkgate(["promote", str(weak), *url, "--force"]) == 0
    forced = store.active_versions()["router"]
    assert forced != first["version"]

    promoted = promote_router(store, good)  # beats both: no --force needed
    comparison = promoted["comparison"]
    assert comparison["challenger"]["apgr"] > comparison["prompt_length"]["apgr"]
    assert promoted["previous"] == forced
    store.close()
