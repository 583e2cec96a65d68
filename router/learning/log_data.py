"""Training and evaluation rows from the decision log (what ``--from-log`` reads).

Router rows: every decision with a ``judge`` label gives ``strong = strong_better`` and
``weak = 1 - strong_better`` (a preference in [0, 1], as `fit_router_from_features`
takes it); its features are the stored vector when its featurizer id matches the
router's, else the prompt text featurized again (only with ``store_text``); rows with
neither are left out and counted. A fixed share of request ids (by hash,
``holdout_fraction``) is held out: ``train-router --from-log`` never trains on them,
``eval-router --from-log`` and ``thinkgate promote`` compare routers on them.

Example::

    rows = router_rows(store, router)       # LogRows(features, weak, strong, holdout, ...)
    rows.subset(~rows.holdout)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from router.learning.records import unpack
from router.learning.store import LearningStore

HOLDOUT_FRACTION = 0.2


def is_holdout(request_id: str, fraction: float = HOLDOUT_FRACTION) -> bool:
    """Deterministic: the same request is held out by every command and every replica."""
    head = hashlib.sha256(request_id.encode()).digest()[:4]
    return int.from_bytes(head, "big") / 2**32 < fraction


@dataclass
class LogRows:
    request_ids: list[str]
    features: np.ndarray
    weak: np.ndarray
    strong: np.ndarray
    holdout: np.ndarray
    prompts: list[str] | None
    skipped: int
    featurizer_id: str

    def __len__(self) -> int:
        return len(self.request_ids)

    def subset(self, rows: np.ndarray) -> LogRows:
        """The rows selected by a boolean mask, or at integer positions (in that order)."""
        rows = np.asarray(rows)
        index = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        return LogRows(
            [self.request_ids[i] for i in index],
            self.features[index],
            self.weak[index],
            self.strong[index],
            self.holdout[index],
            None if self.prompts is None else [self.prompts[i] for i in index],
            self.skipped,
            self.featurizer_id,
        )


def judge_label(labels: Sequence[dict[str, Any]]) -> float | None:
    for label in labels:
        if label["source"] == "judge" and label["strong_better"] is not None:
            return float(label["strong_better"])
    return None


def router_rows(
    store: LearningStore,
    featurizer_id: str,
    featurize: Callable[[list[str]], np.ndarray] | None = None,
    *,
    holdout_fraction: float = HOLDOUT_FRACTION,
) -> LogRows:
    """Judge-labelled decisions as router rows (features for ``featurizer_id``)."""
    ids: list[str] = []
    vectors: list[np.ndarray | None] = []
    texts: list[str | None] = []
    strong: list[float] = []
    skipped = 0
    for record, labels in store.labelled_records():
        value = judge_label(labels)
        if value is None:
            continue
        stored = unpack(record["router_features"])
        if stored is not None and record["featurizer_id"] == featurizer_id:
            vector: np.ndarray | None = stored
        elif record["prompt_text"] is not None and featurize is not None:
            vector = None
        else:
            skipped += 1
            continue
        ids.append(record["request_id"])
        vectors.append(vector)
        texts.append(record["prompt_text"])
        strong.append(value)
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing and featurize is not None:
        computed = featurize([str(texts[i]) for i in missing])
        for i, row in zip(missing, computed, strict=True):
            vectors[i] = np.asarray(row, dtype=np.float64)
    width = max((len(v) for v in vectors if v is not None), default=0)
    features = np.stack([np.asarray(v) for v in vectors]) if vectors else np.zeros((0, width))
    strong_arr = np.asarray(strong, dtype=np.float64)
    prompts = None if any(t is None for t in texts) else [str(t) for t in texts]
    return LogRows(
        ids,
        features,
        1.0 - strong_arr,
        strong_arr,
        np.array([is_holdout(i, holdout_fraction) for i in ids], dtype=bool),
        prompts,
        skipped,
        featurizer_id,
    )


def apgr_of(scores: np.ndarray, rows: LogRows) -> dict[str, Any]:
    """APGR / CPT of ``scores`` on ``rows`` (RouteLLM's method)."""
    from classifiers.evaluation import evaluate_scores

    report = evaluate_scores(scores, rows.weak, rows.strong)
    out = report.to_json()
    out.pop("curve", None)
    return out
