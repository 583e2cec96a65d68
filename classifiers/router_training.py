"""Training the difficulty router: candidates, grouped validation, calibration.

Validation always holds out *whole groups* (one group per outcomes file, i.e. a domain or
benchmark), so the chosen model is the one that generalises to unseen domains, not the
one that memorises them. Steps of :func:`train_router`:

1. features of every prompt (:class:`~classifiers.featurizer.PromptFeaturizer`);
2. for each candidate head, out-of-fold logits from group k-fold; score = mean APGR of
   the held-out folds (RouteLLM's method, :mod:`classifiers.evaluation`);
3. refit the best candidate on all data; fit Platt calibration on its out-of-fold logits.

:func:`cross_validate` wraps the whole of it in an outer group k-fold: each outer fold
trains a router (with its own inner model selection) without the fold's files and
evaluates it on them.

Example::

    >>> from classifiers.featurizer import FeaturizerConfig
    >>> router, summary = train_router(outcomes, FeaturizerConfig())   # doctest: +SKIP
    >>> summary.best.name                                             # doctest: +SKIP
    'logistic-C0.05'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classifiers.difficulty import DifficultyRouter
from classifiers.evaluation import RouterReport, evaluate_scores
from classifiers.featurizer import FeaturizerConfig, PromptFeaturizer
from classifiers.outcomes import Outcomes
from classifiers.router_heads import GainHead, LinearHead, PlattCalibration

__all__ = [
    "DEFAULT_CANDIDATES",
    "Candidate",
    "FoldResult",
    "TrainingSummary",
    "cross_validate",
    "fit_head",
    "group_folds",
    "select_candidate",
    "train_router",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    """One head configuration: L2-regularised logistic regression with inverse strength ``C``.

    Both quality models (strong and weak) of a :class:`~classifiers.router_heads.GainHead`
    use it.
    """

    name: str
    C: float

    def to_json(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"name": self.name, "kind": "logistic", "C": self.C}


DEFAULT_CANDIDATES: tuple[Candidate, ...] = (
    Candidate("logistic-C0.0001", 0.0001),
    Candidate("logistic-C0.0003", 0.0003),
    Candidate("logistic-C0.001", 0.001),
)
"""Heads tried by default, from most to least regularised."""


def _fit_quality(features: np.ndarray, quality: np.ndarray, C: float) -> LinearHead:
    """Logistic model of a score in [0, 1] (soft labels as weighted duplicate rows)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features)
    scaled = scaler.transform(features)
    both = np.concatenate([scaled, scaled])
    targets = np.concatenate([np.ones(len(quality)), np.zeros(len(quality))])
    weights = np.concatenate([quality, 1.0 - quality])
    keep = weights > 0
    if len(np.unique(targets[keep])) < 2:
        raise ValueError("a model's scores are all equal: the outcomes carry no signal")
    model = LogisticRegression(C=C, max_iter=2000)
    model.fit(both[keep], targets[keep], sample_weight=weights[keep])
    return LinearHead.from_sklearn(scaler, model)


def fit_head(candidate: Candidate, features: np.ndarray, data: Outcomes) -> GainHead:
    """Fit the strong and weak quality models of ``data`` on ``features``."""
    weak, strong = data.normalized()
    return GainHead(
        strong=_fit_quality(features, strong, candidate.C),
        weak=_fit_quality(features, weak, candidate.C),
    )


def group_folds(groups: np.ndarray, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs holding out whole groups, about equal in rows.

    Groups are dealt, largest first, to the currently smallest fold. With fewer groups
    than ``k``, there are as many folds as groups; with a single group, rows are split
    at random instead (nothing better exists, and the summary says so).
    """
    if k < 2:
        raise ValueError(f"need at least 2 folds, got {k}")
    unique, counts = np.unique(groups, return_counts=True)
    rng = np.random.default_rng(seed)
    if len(unique) < 2:
        order = rng.permutation(len(groups))
        chunks = np.array_split(order, k)
        return [(np.setdiff1d(order, c), np.sort(c)) for c in chunks]
    k = min(k, len(unique))
    tie_break = rng.random(len(unique))
    sizes = np.zeros(k, dtype=np.int64)
    fold_of: dict[int, int] = {}
    for g in np.lexsort((tie_break, -counts)):
        target = int(np.argmin(sizes))
        fold_of[int(unique[g])] = target
        sizes[target] += counts[g]
    assignment = np.array([fold_of[int(g)] for g in groups])
    all_rows = np.arange(len(groups))
    return [(all_rows[assignment != f], all_rows[assignment == f]) for f in range(k)]


def _fold_apgr(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> float | None:
    if float(np.mean(strong)) == float(np.mean(weak)):
        return None
    return evaluate_scores(scores, weak, strong).apgr


@dataclass
class CandidateResult:
    """Validation of one candidate: per-fold APGR and out-of-fold expected gains."""

    candidate: Candidate
    fold_apgr: list[float]
    oof_gain: np.ndarray = field(repr=False)

    @property
    def mean_apgr(self) -> float:
        """Mean APGR over the folds that have a quality gap."""
        return float(np.mean(self.fold_apgr)) if self.fold_apgr else float("nan")


def select_candidate(
    features: np.ndarray,
    data: Outcomes,
    candidates: Sequence[Candidate],
    *,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[CandidateResult]:
    """Grouped k-fold validation of each candidate; best (highest mean APGR) first."""
    splits = group_folds(data.groups, folds, seed)
    results = []
    for candidate in candidates:
        oof = np.zeros(len(data), dtype=np.float64)
        fold_apgr = []
        for train, test in splits:
            head = fit_head(candidate, features[train], data.subset(train))
            oof[test] = head.gain(features[test])
            value = _fold_apgr(oof[test], data.weak[test], data.strong[test])
            if value is not None:
                fold_apgr.append(value)
        result = CandidateResult(candidate, fold_apgr, oof)
        results.append(result)
        if progress is not None:
            progress(f"{candidate.name}: mean held-out APGR {result.mean_apgr:.4f}")
    results.sort(key=lambda r: -r.mean_apgr if np.isfinite(r.mean_apgr) else np.inf)
    return results


@dataclass
class TrainingSummary:
    """What :func:`train_router` chose and why."""

    best: Candidate
    validation: list[dict[str, Any]]
    n: int
    positives: float
    folds: int

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (stored in the artifact's metadata)."""
        return {
            "selected": self.best.to_json(),
            "validation": self.validation,
            "n_train": self.n,
            "positive_rate": self.positives,
            "folds": self.folds,
        }


SCORE_QUANTILE_POINTS = 101
"""Quantiles of out-of-fold scores kept in the artifact (0%, 1%, ..., 100%)."""


def train_router(
    data: Outcomes,
    featurizer: FeaturizerConfig,
    *,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    folds: int = 5,
    margin: float = 0.0,
    seed: int = 0,
    features: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
    progress: Progress | None = None,
    show_progress_bar: bool = False,
) -> tuple[DifficultyRouter, TrainingSummary]:
    """Train a router on ``data``; ``features`` may be precomputed (same featurizer)."""
    if not candidates:
        raise ValueError("no candidate heads to train")
    if features is None:
        features = PromptFeaturizer(featurizer).features(
            data.prompts, show_progress_bar=show_progress_bar
        )
    labels = data.labels(margin)
    results = select_candidate(
        features, data, candidates, folds=folds, seed=seed, progress=progress
    )
    best = results[0]
    head = fit_head(best.candidate, features, data)
    calibration = PlattCalibration.fit(best.oof_gain, labels)
    summary = TrainingSummary(
        best=best.candidate,
        validation=[
            {"name": r.candidate.name, "mean_apgr": r.mean_apgr, "fold_apgr": r.fold_apgr}
            for r in results
        ],
        n=len(data),
        positives=float(labels.mean()),
        folds=folds,
    )
    # Out-of-fold p_strong quantiles: what `routing.strong_share` is calibrated against.
    oof_scores = calibration.probability(np.asarray(best.oof_gain, dtype=float))
    quantiles = np.quantile(oof_scores, np.linspace(0.0, 1.0, SCORE_QUANTILE_POINTS))
    router = DifficultyRouter(
        featurizer,
        head,
        calibration,
        {
            **(metadata or {}),
            "training": summary.to_json(),
            "label_margin": margin,
            "score_quantiles": [round(float(q), 6) for q in quantiles],
        },
    )
    return router, summary


@dataclass(frozen=True)
class FoldResult:
    """One outer fold of :func:`cross_validate`."""

    fold: int
    held_out: list[str]
    selected: str
    report: RouterReport


def cross_validate(
    data: Outcomes,
    featurizer: FeaturizerConfig,
    *,
    outer_folds: int = 5,
    inner_folds: int = 4,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    margin: float = 0.0,
    seed: int = 0,
    features: np.ndarray | None = None,
    progress: Progress | None = None,
    show_progress_bar: bool = False,
) -> list[FoldResult]:
    """Outer group k-fold: train (with inner selection) without a fold, evaluate on it."""
    if features is None:
        features = PromptFeaturizer(featurizer).features(
            data.prompts, show_progress_bar=show_progress_bar
        )
    results = []
    for number, (train, test) in enumerate(group_folds(data.groups, outer_folds, seed)):
        router, summary = train_router(
            data.subset(train),
            featurizer,
            candidates=candidates,
            folds=inner_folds,
            margin=margin,
            seed=seed,
            features=features[train],
        )
        held = data.subset(test)
        report = evaluate_scores(router.score_features(features[test]), held.weak, held.strong)
        names = sorted({data.sources[g] for g in np.unique(held.groups)})
        results.append(FoldResult(number, names, summary.best.name, report))
        if progress is not None:
            progress(
                f"fold {number}: n={report.n} APGR {report.apgr:.4f} CPT50 {report.cpt50:.4f} "
                f"({summary.best.name})"
            )
    return results
