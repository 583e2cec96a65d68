"""The numeric core of the complexity predictor: ridge regression on ``log1p(tokens)``.

Reasoning lengths are skewed and their spread grows with their size, so the model works
in log space: a ridge regression predicts the centre of ``log1p(tokens)`` from
standardised features, and each quantile ``q`` adds the ``q``-quantile of the
*cross-validated* residuals. The quantiles are therefore monotone by construction and
calibrated on rows each fold did not see. Tree ensembles, heteroscedastic spread models
and nearest neighbours on the embeddings did no better on GSM8K held-out rows, and a
linear model in log space is the least likely to overfit one workload.

Everything is numpy arrays, saved with :func:`numpy.savez` and read back with
``allow_pickle=False``.

Example::

    >>> import numpy as np
    >>> from classifiers.budget_model import fit_log_ridge
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 3))
    >>> tokens = np.expm1(4 + x[:, 0] * 0.5 + rng.normal(scale=0.1, size=200))
    >>> fit = fit_log_ridge(x, tokens, quantiles=(0.5, 0.9), alphas=(0.1, 1.0))
    >>> fit.model.predict_tokens(x[:2]).shape
    (2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["LogRidgeFit", "LogRidgeModel", "fit_log_ridge"]

_MIN_SCALE = 1e-6
_ARRAY_NAMES = ("mean", "scale", "coef", "intercept", "quantiles", "offsets")


@dataclass(frozen=True)
class LogRidgeModel:
    """``log1p(tokens)`` quantiles = ``((x - mean) / scale) @ coef + intercept + offsets``.

    Immutable, so one model may serve many threads.
    """

    mean: np.ndarray
    """Feature means of the training rows, ``(d,)``."""
    scale: np.ndarray
    """Feature standard deviations (floored), ``(d,)``."""
    coef: np.ndarray
    """Ridge weights on the standardised features, ``(d,)``."""
    intercept: float
    """Mean ``log1p(tokens)`` of the training rows."""
    quantiles: tuple[float, ...]
    """Quantile levels, increasing."""
    offsets: np.ndarray
    """Cross-validated residual quantile of each level, non-decreasing, ``(q,)``."""

    def __post_init__(self) -> None:
        d = self.coef.shape[0]
        if self.mean.shape != (d,) or self.scale.shape != (d,):
            raise ValueError(
                f"mean, scale and coef must all have shape ({d},), got "
                f"{self.mean.shape}, {self.scale.shape} and {self.coef.shape}"
            )
        if self.offsets.shape != (len(self.quantiles),):
            raise ValueError(
                f"offsets must have one value per quantile ({len(self.quantiles)}), "
                f"got shape {self.offsets.shape}"
            )
        if list(self.quantiles) != sorted(set(self.quantiles)):
            raise ValueError(f"quantiles must be strictly increasing, got {self.quantiles}")
        if np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must be non-decreasing across quantiles")

    @property
    def n_features(self) -> int:
        """Number of input features ``d``."""
        return int(self.coef.shape[0])

    def predict_center(self, features: np.ndarray) -> np.ndarray:
        """Predicted mean of ``log1p(tokens)`` for each row, ``(n,)``."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"features must have shape (n, {self.n_features}), got {x.shape}")
        centre: np.ndarray = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return centre

    def predict_tokens(self, features: np.ndarray) -> np.ndarray:
        """Predicted token quantiles, ``(n, q)``, each at least 1 and monotone across ``q``."""
        log_tokens = self.predict_center(features)[:, None] + self.offsets[None, :]
        tokens: np.ndarray = np.maximum(np.expm1(log_tokens), 1.0)
        return tokens

    def save(self, path: str | Path) -> None:
        """Write the arrays to an ``.npz`` file (no pickled objects)."""
        np.savez(
            Path(path),
            mean=self.mean.astype(np.float64),
            scale=self.scale.astype(np.float64),
            coef=self.coef.astype(np.float64),
            intercept=np.array([self.intercept], dtype=np.float64),
            quantiles=np.array(self.quantiles, dtype=np.float64),
            offsets=self.offsets.astype(np.float64),
        )

    @classmethod
    def load(cls, path: str | Path) -> LogRidgeModel:
        """Read a model written by :meth:`save`.

        Raises:
            ValueError: when an array is missing or the shapes disagree.
        """
        with np.load(Path(path), allow_pickle=False) as arrays:
            missing = [name for name in _ARRAY_NAMES if name not in arrays.files]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}")
            return cls(
                mean=arrays["mean"],
                scale=arrays["scale"],
                coef=arrays["coef"],
                intercept=float(arrays["intercept"][0]),
                quantiles=tuple(float(q) for q in arrays["quantiles"]),
                offsets=arrays["offsets"],
            )


@dataclass(frozen=True)
class LogRidgeFit:
    """A fitted model and how it was chosen."""

    model: LogRidgeModel
    alpha: float
    """The ridge penalty with the lowest cross-validated error."""
    cv_rmse: dict[float, float] = field(default_factory=dict)
    """Cross-validated RMSE of ``log1p(tokens)`` for every penalty tried."""
    cv_coverage: dict[float, float] = field(default_factory=dict)
    """Share of rows under each quantile's prediction, on cross-validated predictions."""


def _solve(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge weights on already standardised ``x`` with an unpenalised intercept."""
    intercept = float(y.mean())
    gram = x.T @ x + alpha * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, x.T @ (y - intercept))
    return coef, intercept


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = np.maximum(x.std(axis=0), _MIN_SCALE)
    return mean, scale


def fit_log_ridge(
    features: np.ndarray,
    tokens: np.ndarray,
    quantiles: Sequence[float] = (0.5, 0.9),
    alphas: Sequence[float] = (10.0, 100.0, 300.0, 1000.0, 3000.0),
    folds: int = 5,
    seed: int = 0,
) -> LogRidgeFit:
    """Fit :class:`LogRidgeModel`, choosing the penalty by ``folds``-fold cross-validation.

    Residual quantiles come from the out-of-fold predictions at the chosen penalty; the
    final weights are refitted on all rows.

    Raises:
        ValueError: on mismatched inputs, fewer rows than ``2 * folds``, negative token
            counts, quantiles outside ``(0, 1)`` or not increasing, or no penalty.
    """
    x = np.asarray(features, dtype=np.float64)
    counts = np.asarray(tokens, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != counts.shape[0]:
        raise ValueError(
            f"features must be (n, d) with n == len(tokens), got {x.shape} and {counts.shape}"
        )
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if x.shape[0] < 2 * folds:
        raise ValueError(f"need at least {2 * folds} rows for {folds} folds, got {x.shape[0]}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("token counts must be finite and non-negative")
    levels = tuple(float(q) for q in quantiles)
    if not levels or any(not 0.0 < q < 1.0 for q in levels) or list(levels) != sorted(set(levels)):
        raise ValueError(f"quantiles must be increasing values in (0, 1), got {levels}")
    if not alphas or any(a <= 0 for a in alphas):
        raise ValueError(f"alphas must be positive, got {list(alphas)}")

    y = np.log1p(counts)
    fold_of = np.random.default_rng(seed).permutation(x.shape[0]) % folds
    out_of_fold = {float(a): np.zeros_like(y) for a in alphas}
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        mean, scale = _standardise(x[train])
        x_train, x_test = (x[train] - mean) / scale, (x[test] - mean) / scale
        for alpha in out_of_fold:
            coef, intercept = _solve(x_train, y[train], alpha)
            out_of_fold[alpha][test] = x_test @ coef + intercept
    cv_rmse = {a: float(np.sqrt(np.mean((y - p) ** 2))) for a, p in out_of_fold.items()}
    best = min(cv_rmse, key=lambda a: (cv_rmse[a], a))
    residuals = y - out_of_fold[best]
    offsets = np.quantile(residuals, levels)
    offsets = np.maximum.accumulate(offsets)

    mean, scale = _standardise(x)
    coef, intercept = _solve((x - mean) / scale, y, best)
    model = LogRidgeModel(mean, scale, coef, intercept, levels, offsets)
    cv_coverage = {
        q: float(np.mean(residuals <= offset)) for q, offset in zip(levels, offsets, strict=True)
    }
    return LogRidgeFit(model=model, alpha=best, cv_rmse=cv_rmse, cv_coverage=cv_coverage)
