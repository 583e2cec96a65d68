"""Fitting the router's logistic heads from a feature matrix, optionally toward a base router.

The objective is scikit-learn's L2 logistic regression (``0.5 * |penalised|^2 + C * sum of
weighted cross-entropies``, soft targets in [0, 1]), solved with L-BFGS, with three
additions the router needs:

- a *prior toward a base head*: the weights are ``scale * base + delta`` and only
  ``delta`` is penalised, so few labelled prompts of a new kind move a router only as far
  as they can justify (``scale`` is 1, or free when ``free_scale``: the base's direction
  is then kept but its strength is re-learnt, a stacking of the base score with a
  penalised correction);
- *per-source sample weights*: every source (a prompt type) weighs the same in total,
  however many prompts it has;
- *source intercepts*: with several sources, each gets its own unpenalised intercept
  during training and the served head uses their mean, so the weights explain
  differences *within* a source and a threshold means about the same on every source.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 3)); y = (x[:, 0] > 0).astype(float)
    >>> head = fit_linear_head(x, y, C=1.0)
    >>> bool(head.weights[0][0, 0] > 0)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classifiers.router_heads import GainHead, LinearHead, PlattCalibration

if TYPE_CHECKING:
    from classifiers.difficulty import DifficultyRouter
    from classifiers.featurizer import FeaturizerConfig

__all__ = [
    "ADAPT_C_VALUES",
    "DEFAULT_C_VALUES",
    "balanced_weights",
    "fit_linear_head",
    "fit_router_from_features",
    "fold_groups",
    "sample_rows",
    "weighted_quantiles",
]


def balanced_weights(sources: np.ndarray) -> np.ndarray:
    """Row weights giving every source the same total weight; they sum to ``len(sources)``."""
    labels = np.asarray(sources)
    unique, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    weights = (len(labels) / len(unique)) / counts[inverse]
    result: np.ndarray = weights.astype(np.float64)
    return result


def fit_linear_head(
    features: np.ndarray,
    target: np.ndarray,
    *,
    C: float,
    sample_weight: np.ndarray | None = None,
    sources: np.ndarray | None = None,
    base: LinearHead | None = None,
    free_scale: bool = False,
    max_iter: int = 500,
) -> LinearHead:
    """Logistic head of a soft ``target`` in [0, 1] on ``features`` ``(n, d)``.

    Args:
        C: inverse L2 strength (scikit-learn's convention), on the penalised weights.
        sample_weight: per-row weights (default 1).
        sources: per-row source labels; with two or more, one free intercept per source
            in training, their mean in the returned head.
        base: a logistic head to stay near (its standardisation is kept).
        free_scale: with ``base``, also learn the factor on the base's weights.
    """
    from scipy.optimize import minimize

    x = np.asarray(features, dtype=np.float64)
    y = np.clip(np.asarray(target, dtype=np.float64), 0.0, 1.0)
    n, d = x.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if base is not None:
        if base.kind != "logistic" or base.n_features != d:
            raise ValueError(
                f"base head must be logistic on {d} features, got {base.kind} on {base.n_features}"
            )
        mean, scale = base.mean, base.scale
        prior = base.weights[0][:, 0]
        prior_bias = float(base.biases[0][0])
    else:
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        scale = np.where(std > 0, std, 1.0)
        prior = np.zeros(d)
        prior_bias = 0.0
    z = (x - mean) / scale
    if sources is None:
        source_index = np.zeros(n, dtype=np.int64)
    else:
        _, source_index = np.unique(np.asarray(sources), return_inverse=True)
    n_src = int(source_index.max()) + 1
    use_scale = base is not None and free_scale
    base_logit = z @ prior
    # Parameters: delta (d), one intercept per source, and the base scale if free.
    n_par = d + n_src + (1 if use_scale else 0)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        delta = theta[:d]
        intercepts = theta[d : d + n_src]
        factor = theta[-1] if use_scale else 1.0
        logit = factor * base_logit + z @ delta + intercepts[source_index]
        # softplus(logit) - y * logit, stably.
        loss = np.logaddexp(0.0, logit) - y * logit
        residual = w * (1.0 / (1.0 + np.exp(-logit)) - y)
        value = 0.5 * float(delta @ delta) + C * float(w @ loss)
        grad = np.empty(n_par)
        grad[:d] = delta + C * (z.T @ residual)
        grad[d : d + n_src] = C * np.bincount(source_index, weights=residual, minlength=n_src)
        if use_scale:
            grad[-1] = C * float(residual @ base_logit)
        return value, grad

    start = np.zeros(n_par)
    start[d : d + n_src] = prior_bias
    if use_scale:
        start[-1] = 1.0
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    theta = result.x
    factor = theta[-1] if use_scale else 1.0
    weights = factor * prior + theta[:d]
    bias = float(np.mean(theta[d : d + n_src]))
    return LinearHead(
        mean=np.asarray(mean, dtype=np.float64),
        scale=np.asarray(scale, dtype=np.float64),
        weights=[weights.reshape(d, 1)],
        biases=[np.array([bias])],
    )


DEFAULT_C_VALUES: tuple[float, ...] = (0.0003, 0.001, 0.003, 0.01)
"""Inverse L2 strengths tried when training from scratch (chosen by inner folds)."""

ADAPT_C_VALUES: tuple[float, ...] = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1)
"""Inverse strengths of the prior toward a base router (0: keep the base unchanged)."""

SCORE_QUANTILE_POINTS = 101
"""Out-of-fold p_strong quantiles kept in an artifact (0%, 1%, ..., 100%)."""

MIN_ADAPT_ROWS = 20
"""Fewer labelled rows than this cannot choose an adaptation: the base is kept."""


def fold_groups(
    groups: np.ndarray, sources: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Validation groups: ``groups`` as given, but a source that is a single group (one
    file of one prompt type) is dealt at random into ``folds`` groups, so that held-out
    folds sample every source rather than holding one out whole."""
    out = np.asarray(groups).astype(np.int64).copy()
    src = np.asarray(sources)
    rng = np.random.default_rng(seed)
    next_id = int(out.max()) + 1 if len(out) else 0
    for s in np.unique(src):
        rows = np.flatnonzero(src == s)
        if len(np.unique(out[rows])) == 1:
            out[rows] = next_id + rng.permutation(len(rows)) % folds
            next_id += folds
    return out


def sample_rows(
    groups: np.ndarray, sources: np.ndarray, max_rows: int, seed: int = 0
) -> np.ndarray:
    """Sorted row indices keeping at most ``max_rows`` per source, stratified by group.

    Within a larger source every group keeps about the same fraction of its rows
    (random rows, seeded); smaller sources are kept whole.
    """
    g, src = np.asarray(groups), np.asarray(sources)
    rng = np.random.default_rng(seed)
    position = np.empty(len(g))
    for value in np.unique(g):
        rows = np.flatnonzero(g == value)
        position[rows] = (rng.permutation(len(rows)) + rng.random(len(rows))) / len(rows)
    keep = []
    for s in np.unique(src):
        rows = np.flatnonzero(src == s)
        keep.append(rows if len(rows) <= max_rows else rows[np.argsort(position[rows])[:max_rows]])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of ``values`` where row ``i`` counts ``weights[i]`` times."""
    order = np.argsort(values, kind="stable")
    v, w = np.asarray(values, dtype=np.float64)[order], np.asarray(weights, dtype=np.float64)[order]
    cumulative = (np.cumsum(w) - 0.5 * w) / w.sum()
    result: np.ndarray = np.interp(levels, cumulative, v)
    return result


def _gain_head(
    x: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    c: float,
    weights: np.ndarray,
    sources: np.ndarray | None,
    base: GainHead | None,
    free_scale: bool,
) -> GainHead:
    if base is not None and c == 0.0:
        return base
    return GainHead(
        strong=fit_linear_head(
            x,
            strong,
            C=c,
            sample_weight=weights,
            sources=sources,
            base=None if base is None else base.strong,
            free_scale=free_scale,
        ),
        weak=fit_linear_head(
            x,
            weak,
            C=c,
            sample_weight=weights,
            sources=sources,
            base=None if base is None else base.weak,
            free_scale=free_scale,
        ),
    )


def _cell_apgr(gain: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> float | None:
    from classifiers.evaluation import apgr, quality_curve

    wq, sq = float(weak.mean()), float(strong.mean())
    if len(gain) < 10 or abs(sq - wq) < 1e-9:
        return None
    return apgr(quality_curve(gain, weak, strong), wq, sq)


def fit_router_from_features(
    features: np.ndarray,
    weak_scores: np.ndarray,
    strong_scores: np.ndarray,
    *,
    featurizer: FeaturizerConfig | None = None,
    base: DifficultyRouter | str | Path | None = None,
    sources: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    prompts: Sequence[str] | None = None,
    c_values: Sequence[float] | None = None,
    free_scale: bool = False,
    folds: int = 5,
    seed: int = 0,
    metadata: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    length_weight: float = 1.0,
) -> DifficultyRouter:
    """Train (or, with ``base``, adapt) a router from a precomputed feature matrix.

    ``features`` must come from ``featurizer`` (or the base router's featurizer):
    :meth:`DifficultyRouter.features`, or vectors stored with the same
    :attr:`DifficultyRouter.featurizer_id`. Scores are each model's quality in [0, 1]
    (correctness, or a judge's preference: 1 weak better, 0.5 tie, 0 strong better).

    The strength (``c_values``; from scratch: L2, with a base: the prior toward it, 0
    meaning "keep the base") is chosen by k-fold over ``groups`` (default: random folds),
    on the mean APGR of the held-out cells (fold x source). Every source (e.g. a prompt
    type) weighs the same in training and in the artifact's ``score_quantiles``, which
    ``routing.strong_share`` is calibrated against.

    Example::

        >>> base = DifficultyRouter.load()                        # doctest: +SKIP
        >>> x = base.features(prompts)    # or vectors from the decision log  # doctest: +SKIP
        >>> router = fit_router_from_features(
        ...     x, weak, strong, base=base, prompts=prompts)      # doctest: +SKIP
        >>> router.save("my-router")                              # doctest: +SKIP

    With a ``prompt_length`` featurizer the heads are fitted on the other columns and the
    served score blends their gain with the last column, log prompt length, at
    ``length_weight`` (:class:`~classifiers.difficulty.LengthBlend`, both standardised on
    the training prompts; an adapted router keeps its base's blend). The strength is chosen
    on the gain alone; calibration and quantiles are of the blended score.

    Raises:
        ValueError: shapes disagree, scores outside [0, 1], or the featurizer differs
            from the base router's.
    """
    from classifiers.difficulty import DifficultyRouter, LengthBlend
    from classifiers.request_text import prompt_digests
    from classifiers.router_training import group_folds

    x = np.asarray(features, dtype=np.float64)
    weak = np.asarray(weak_scores, dtype=np.float64)
    strong = np.asarray(strong_scores, dtype=np.float64)
    n = len(x)
    if x.ndim != 2 or weak.shape != (n,) or strong.shape != (n,):
        raise ValueError(
            f"features {x.shape}, weak {weak.shape} and strong {strong.shape} disagree"
        )
    for name, values in (("weak_scores", weak), ("strong_scores", strong)):
        if n and (values.min() < 0.0 or values.max() > 1.0 or not np.isfinite(values).all()):
            raise ValueError(f"{name} must lie in [0, 1]")
    base_router = DifficultyRouter.load(base) if isinstance(base, (str, Path)) else base
    if base_router is not None:
        if featurizer is not None and featurizer.featurizer_id != base_router.featurizer_id:
            raise ValueError(
                f"featurizer {featurizer.featurizer_id} differs from the base router's "
                f"{base_router.featurizer_id}: features would not line up"
            )
        featurizer = base_router.featurizer_config
    if featurizer is None:
        raise ValueError("give the featurizer the features came from (or a base router)")
    base_head = None if base_router is None else base_router.head
    log_length = None
    if featurizer.prompt_length:  # the last column is blended, not learned
        x, log_length = x[:, :-1], x[:, -1].astype(np.float64)
    src = np.zeros(n, dtype=np.int64) if sources is None else np.asarray(sources)
    weights = balanced_weights(src)
    many_sources = len(np.unique(src)) > 1
    fit_sources = src if many_sources else None
    grid = tuple(c_values) if c_values else (ADAPT_C_VALUES if base_head else DEFAULT_C_VALUES)
    labels = (strong > weak).astype(np.int64)
    validation: list[dict[str, Any]] = []
    if base_head is not None and n < MIN_ADAPT_ROWS:
        best_c, oof = 0.0, base_head.gain(x)
    else:
        split_groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
        splits = group_folds(split_groups, min(folds, max(2, n // 10)), seed)
        best_c, best_value, oof = grid[0], -np.inf, np.zeros(n)
        for c in grid:
            fold_oof, cells = np.zeros(n), []
            for train, test in splits:
                head = _gain_head(
                    x[train],
                    weak[train],
                    strong[train],
                    c,
                    weights[train],
                    None if fit_sources is None else fit_sources[train],
                    base_head,
                    free_scale,
                )
                fold_oof[test] = head.gain(x[test])
                for s in np.unique(src[test]):
                    rows = test[src[test] == s]
                    value = _cell_apgr(fold_oof[rows], weak[rows], strong[rows])
                    if value is not None:
                        cells.append(value)
            mean = float(np.mean(cells)) if cells else float("nan")
            validation.append({"C": c, "mean_apgr": mean, "cells": len(cells)})
            if progress is not None:
                progress(f"C={c:g}: mean held-out APGR {mean:.4f} over {len(cells)} cells")
            if mean > best_value:
                best_c, best_value, oof = c, mean, fold_oof
    head = _gain_head(x, weak, strong, best_c, weights, fit_sources, base_head, free_scale)
    blend = None
    if log_length is not None:
        if base_router is not None and base_router.length_blend is not None:
            blend = base_router.length_blend
        else:
            gain = head.gain(x)
            blend = LengthBlend(
                weight=float(length_weight),
                gain_mean=float(np.average(gain, weights=weights)),
                gain_scale=float(np.sqrt(np.cov(gain, aweights=weights))) or 1.0,
                length_mean=float(np.average(log_length, weights=weights)),
                length_scale=float(np.sqrt(np.cov(log_length, aweights=weights))) or 1.0,
            )
        oof = blend.combine(oof, log_length)
    calibration = PlattCalibration.fit(oof, labels)
    levels = np.linspace(0.0, 1.0, SCORE_QUANTILE_POINTS)
    quantiles = weighted_quantiles(calibration.probability(oof), weights, levels)
    training: dict[str, Any] = {
        "method": "prior-toward-base" if base_head is not None else "from-scratch",
        "selected_C": best_c,
        "free_scale": free_scale,
        "validation": validation,
        "n_train": n,
        "sources": {str(s): int(np.sum(src == s)) for s in np.unique(src)},
        "positive_rate": float(labels.mean()) if n else 0.0,
    }
    if base_router is not None:
        training["base"] = {
            "featurizer_id": base_router.featurizer_id,
            "training_data": base_router.metadata.get("training_data"),
        }
    digests = None if prompts is None else prompt_digests(prompts)
    if digests is not None and base_router is not None and base_router.training_digests is not None:
        digests = np.union1d(base_router.training_digests, digests).astype(np.uint32)
    return DifficultyRouter(
        featurizer,
        head,
        calibration,
        {
            **(metadata or {}),
            "training": training,
            "score_quantiles": [round(float(q), 6) for q in quantiles],
        },
        training_digests=digests,
        length_blend=blend,
    )
