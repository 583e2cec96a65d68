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
from dataclasses import dataclass, field
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


@dataclass
class SmallAnswerRows:
    """Small-tier answers with their serving-time uncertainty and a label (small_ok);
    ``scored``: the uncertainty of every scored small answer, labelled or not."""

    uncertainties: list[float]
    ok: list[bool]
    scorer: str | None
    scored: list[float] = field(default_factory=list)


SCORED_ROUTES = ("small", "escalated")
"""Routes whose small answer was scored: kept (``small``) or replaced (``escalated``)."""


def small_answer_rows(
    store: LearningStore,
    *,
    holdout_fraction: float = 0.0,
    holdout: bool = False,
    scored: bool = False,
) -> SmallAnswerRows:
    """Small answers that were scored, kept or escalated (an escalated record logs the
    uncertainty of the small answer it replaced), with a label: the judge's ``small_ok``
    (for an escalated request, the shadow small answer's), else feedback (``score >=
    0.5``, small answers only: feedback on an escalated request rates the strong
    answer). ``scored``: also every scored answer's uncertainty, labelled or not (what a
    target escalation rate needs)."""

    def keep(record: dict[str, Any]) -> bool:
        if record["route"] not in SCORED_ROUTES or record["uncertainty"] is None:
            return False
        return not holdout_fraction or (
            is_holdout(record["request_id"], holdout_fraction) == holdout
        )

    values: list[float] = []
    ok: list[bool] = []
    scorers: set[str] = set()
    for record, labels in store.labelled_records():
        if not keep(record):
            continue
        flags = [lab["small_ok"] for lab in labels if lab["small_ok"] is not None]
        if not flags:
            continue
        values.append(float(record["uncertainty"]))
        ok.append(bool(flags[0]))
        if record["escalation_scorer"]:
            scorers.add(str(record["escalation_scorer"]))
    every: list[float] = []
    if scored:
        for record in store.decisions():
            if keep(record):
                every.append(float(record["uncertainty"]))
                if record["escalation_scorer"]:
                    scorers.add(str(record["escalation_scorer"]))
    return SmallAnswerRows(values, ok, ",".join(sorted(scorers)) or None, every)


def tau_for_error(uncertainties: Sequence[float], ok: Sequence[bool], error: float) -> float:
    """The largest tau whose kept answers (``u <= tau``) are wrong at most ``error`` of
    the time; keeps as many small answers as that allows (0 when none can be kept)."""
    pairs = sorted(zip(uncertainties, ok, strict=True))
    best = 0.0
    wrong = 0
    for kept, (u, right) in enumerate(pairs, start=1):
        wrong += not right
        tie_next = kept < len(pairs) and pairs[kept][0] == u
        if not tie_next and wrong / kept <= error:
            best = u
    return best


@dataclass
class BudgetRows:
    features: np.ndarray
    lengths: np.ndarray
    censored: np.ndarray
    request_ids: list[str]
    tokenizer: str
    skipped: int


def budget_rows(
    store: LearningStore,
    n_features: int,
    compute: Callable[[list[str]], np.ndarray] | None = None,
    *,
    holdout_fraction: float = HOLDOUT_FRACTION,
    holdout: bool = False,
) -> BudgetRows:
    """Strong-tier answers with a thinking budget: reasoning tokens in the strong model's
    own tokenizer; a force-closed answer is censored (its natural length is at least what
    it spent). Held-out request ids are left out (``holdout``: only they are kept)."""
    features: list[np.ndarray | None] = []
    texts: list[str | None] = []
    lengths: list[float] = []
    censored: list[bool] = []
    ids: list[str] = []
    models: set[str] = set()
    skipped = 0
    for record in store.decisions():
        if record["tier"] != "strong" or record["thinking_budget"] is None:
            continue
        if is_holdout(record["request_id"], holdout_fraction) != holdout:
            continue
        vector = unpack(record["budget_features"])
        if vector is not None and len(vector) != n_features:
            vector = None
        if vector is None and (record["prompt_text"] is None or compute is None):
            skipped += 1
            continue
        features.append(vector)
        texts.append(record["prompt_text"])
        lengths.append(float(record["reasoning_tokens"]))
        censored.append(bool(record["forced_close"]))
        ids.append(record["request_id"])
        models.add(str(record["answer_model"]))
    missing = [i for i, v in enumerate(features) if v is None]
    if missing and compute is not None:
        for i, row in zip(missing, compute([str(texts[i]) for i in missing]), strict=True):
            features[i] = np.asarray(row, dtype=np.float64)
    matrix = np.stack([np.asarray(v) for v in features]) if features else np.zeros((0, n_features))
    return BudgetRows(
        matrix,
        np.asarray(lengths),
        np.asarray(censored, dtype=bool),
        ids,
        ",".join(sorted(models)),
        skipped,
    )
