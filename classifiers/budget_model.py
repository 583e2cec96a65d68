"""The numeric core of the complexity predictor: a censored ridge on ``log1p(tokens)``.

Reasoning lengths are skewed and their spread grows with their size, so the model works in
log space: scikit-learn's ``StandardScaler`` + ``Ridge`` predict the centre ``mu`` of
``log1p(tokens)``, and each quantile ``q`` adds ``sigma * Phi^-1(q)`` (a log-normal
spread, ``sigma`` from out-of-fold residuals). The fitted arrays are exported
(``scaler.mean``, ``ridge.coef``, ...) and saved as safetensors, like the router's heads:
no pickle, and prediction needs only numpy.

**Censored rows.** A row flagged censored was cut before it finished (a forced close in
the decision log, or a trace that never reached the right answer): its true length is
``>=`` the value given. They are fitted as in a Tobit model, by expectation-maximisation:
each censored target is replaced by ``E[y | y >= c]`` under the current Gaussian fit
(``mu + sigma * phi(z) / (1 - Phi(z))``, ``z = (c - mu) / sigma``) and the ridge refitted,
until the imputations settle. Without censored rows this is one plain ridge fit.

``cv_coverage`` is a real held-out check: the fit (weights and ``sigma``, at the chosen
penalty) is rerun without each outer fold, and the share of that fold's rows under each
predicted quantile is recorded (a censored row counts only when the quantile is below its
cut, where it is surely over). It is near ``q`` only when the log-normal spread fits.

Example::

    >>> import numpy as np
    >>> from classifiers.budget_model import fit_budget_ridge
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 3))
    >>> tokens = np.expm1(4 + x[:, 0] * 0.5 + rng.normal(scale=0.1, size=200))
    >>> censored = np.zeros(200, dtype=bool)
    >>> censored[:20] = True               # these 20 ran out: their length is >= the value
    >>> tokens[:20] = tokens[:20] * 0.7
    >>> fit = fit_budget_ridge(x, tokens, censored, quantiles=(0.5, 0.9), alphas=(0.1, 1.0))
    >>> fit.model.predict_tokens(x[:2]).shape
    (2, 2)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["BudgetRidge", "BudgetRidgeFit", "fit_budget_ridge", "group_folds"]

_TENSORS = (
    "scaler.mean",
    "scaler.scale",
    "ridge.coef",
    "ridge.intercept",
    "quantile.levels",
    "quantile.offsets",
)
_EM_ITERATIONS = 30
_EM_TOLERANCE = 1e-3
_MIN_SIGMA = 1e-3


@dataclass(frozen=True)
class BudgetRidge:
    """``log1p(tokens)`` quantiles = ``((x - mean) / scale) @ coef + intercept + offsets``.

    Immutable, so one model may serve many threads.
    """

    mean: np.ndarray
    """Feature means of the training rows (``StandardScaler.mean_``), ``(d,)``."""
    scale: np.ndarray
    """Feature standard deviations (``StandardScaler.scale_``), ``(d,)``."""
    coef: np.ndarray
    """Ridge weights on the standardised features (``Ridge.coef_``), ``(d,)``."""
    intercept: float
    """``Ridge.intercept_``."""
    quantiles: tuple[float, ...]
    """Quantile levels, increasing."""
    offsets: np.ndarray
    """``sigma * Phi^-1(q)`` of each level, increasing, ``(q,)``."""

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

    def to_tensors(self) -> dict[str, np.ndarray]:
        """Arrays by name, for safetensors (float64: a budget is read back exactly)."""
        arrays = {
            "scaler.mean": self.mean,
            "scaler.scale": self.scale,
            "ridge.coef": self.coef,
            "ridge.intercept": np.array([self.intercept]),
            "quantile.levels": np.array(self.quantiles),
            "quantile.offsets": self.offsets,
        }
        return {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> BudgetRidge:
        """Inverse of :meth:`to_tensors`.

        Raises:
            ValueError: when an array is missing or the shapes disagree.
        """
        missing = [name for name in _TENSORS if name not in tensors]
        if missing:
            raise ValueError(f"missing arrays {missing}")
        return cls(
            mean=tensors["scaler.mean"],
            scale=tensors["scaler.scale"],
            coef=tensors["ridge.coef"],
            intercept=float(tensors["ridge.intercept"][0]),
            quantiles=tuple(float(q) for q in tensors["quantile.levels"]),
            offsets=tensors["quantile.offsets"],
        )

    def save(self, path: str | Path) -> None:
        """Write the arrays to a ``.safetensors`` file."""
        from safetensors.numpy import save_file

        save_file(self.to_tensors(), str(Path(path)))

    @classmethod
    def load(cls, path: str | Path) -> BudgetRidge:
        """Read a model written by :meth:`save` (raises ``ValueError`` if incomplete)."""
        from safetensors.numpy import load_file

        try:
            return cls.from_tensors(load_file(str(Path(path))))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class BudgetRidgeFit:
    """A fitted model and how it was chosen and checked."""

    model: BudgetRidge
    alpha: float
    """The ridge penalty with the lowest cross-validated censored log-loss."""
    sigma: float
    """Spread of ``log1p(tokens)`` around the centre, from out-of-fold residuals."""
    cv_loss: dict[float, float] = field(default_factory=dict)
    """Out-of-fold censored Gaussian negative log-likelihood per penalty tried."""
    cv_coverage: dict[float, float] = field(default_factory=dict)
    """Held-out share of rows under each quantile (outer folds; empty when not checked)."""
    n_censored: int = 0
    """Rows flagged censored."""


def group_folds(groups: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Fold number of each row; rows of one group (e.g. one prompt) share a fold.

    A group's fold is a hash of ``seed`` and the group, so it does not depend on row order.
    """
    out = np.zeros(len(groups), dtype=np.int64)
    for index, group in enumerate(groups):
        digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
        out[index] = int.from_bytes(digest[:8], "big") % folds
    return out


def _norm_pdf(z: np.ndarray) -> np.ndarray:
    value: np.ndarray = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    return value


def _norm_sf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    value: np.ndarray = ndtr(-z)
    return value


def _fit_em(
    x: np.ndarray, y: np.ndarray, censored: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Scaler mean/scale, ridge coef/intercept and the Gaussian spread of ``y`` on ``x``.

    Censored ``y`` are lower bounds: Tobit EM replaces each by ``E[y | y >= c]`` and counts
    its conditional variance ``sigma^2 (1 + z * hazard)`` in the spread.
    """
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    scaled = scaler.transform(x)
    target = y.copy()
    ridge = Ridge(alpha=alpha, solver="cholesky").fit(scaled, target)
    mu = ridge.predict(scaled)
    sigma = max(float(np.sqrt(np.mean((y - mu)[~censored] ** 2))), _MIN_SIGMA)
    if censored.any():
        for _ in range(_EM_ITERATIONS):
            z = (y[censored] - mu[censored]) / sigma
            hazard = _norm_pdf(z) / np.maximum(_norm_sf(z), 1e-12)
            imputed = np.maximum(mu[censored] + sigma * hazard, y[censored])
            change = float(np.max(np.abs(imputed - target[censored])))
            target[censored] = imputed
            spread = np.sum((y - mu)[~censored] ** 2) + np.sum(sigma**2 * (1.0 + z * hazard))
            sigma = max(float(np.sqrt(spread / len(y))), _MIN_SIGMA)
            ridge = Ridge(alpha=alpha, solver="cholesky").fit(scaled, target)
            mu = ridge.predict(scaled)
            if change < _EM_TOLERANCE:
                break
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    return scaler.mean_.copy(), scale, ridge.coef_.copy(), float(ridge.intercept_), sigma


def _censored_nll(y: np.ndarray, mu: np.ndarray, censored: np.ndarray, sigma: np.ndarray) -> float:
    """Mean Gaussian negative log-likelihood; a censored row scores ``-log P(Y >= y)``."""
    z = (y - mu) / sigma
    observed = 0.5 * z[~censored] ** 2 + np.log(sigma[~censored] * np.sqrt(2.0 * np.pi))
    tail = -np.log(np.maximum(_norm_sf(z[censored]), 1e-300))
    return float((observed.sum() + tail.sum()) / len(y))


def _check_inputs(
    x: np.ndarray,
    counts: np.ndarray,
    cut: np.ndarray,
    folds: int,
    levels: tuple[float, ...],
    alphas: Sequence[float],
) -> None:
    if x.ndim != 2 or x.shape[0] != counts.shape[0] or cut.shape != counts.shape:
        raise ValueError(
            "features must be (n, d) with n == len(lengths) == len(censored), got "
            f"{x.shape}, {counts.shape} and {cut.shape}"
        )
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if x.shape[0] < 2 * folds:
        raise ValueError(f"need at least {2 * folds} rows for {folds} folds, got {x.shape[0]}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("token counts must be finite and non-negative")
    if cut.all():
        raise ValueError("every row is censored: at least one finished length is needed")
    if not levels or any(not 0.0 < q < 1.0 for q in levels) or list(levels) != sorted(set(levels)):
        raise ValueError(f"quantiles must be increasing values in (0, 1), got {levels}")
    if not alphas or any(a <= 0 for a in alphas):
        raise ValueError(f"alphas must be positive, got {list(alphas)}")


def fit_budget_ridge(
    features: np.ndarray,
    lengths: np.ndarray,
    censored: np.ndarray | None = None,
    *,
    quantiles: Sequence[float] = (0.5, 0.9),
    alphas: Sequence[float] = (1.0, 10.0, 100.0, 1000.0),
    folds: int = 5,
    groups: Sequence[str] | None = None,
    seed: int = 0,
    check_coverage: bool = True,
) -> BudgetRidgeFit:
    """Fit :class:`BudgetRidge`, choosing the penalty by ``folds``-fold cross-validation.

    Args:
        features: ``(n, d)`` feature rows.
        lengths: tokens each row needed (or spent, when censored), ``(n,)``.
        censored: True where the length is only a lower bound (the row was cut off).
        groups: rows of one group stay in one fold (several models' traces of one prompt).
        check_coverage: rerun the procedure without each fold to measure held-out coverage
            (``folds`` times the work; the result's ``cv_coverage``).

    The penalty minimises the out-of-fold censored Gaussian log-loss. The final weights are
    refitted on all rows; ``sigma`` is their EM spread, widened by the ratio of
    out-of-fold to in-sample RMSE on the uncensored rows.

    Raises:
        ValueError: on mismatched inputs, fewer rows than ``2 * folds``, negative lengths,
            all rows censored, quantiles outside ``(0, 1)`` or not increasing, or no penalty.
    """
    from scipy.stats import norm

    x = np.asarray(features, dtype=np.float64)
    counts = np.asarray(lengths, dtype=np.float64).reshape(-1)
    cut = (
        np.zeros(counts.shape, dtype=bool)
        if censored is None
        else np.asarray(censored, dtype=bool).reshape(-1)
    )
    levels = tuple(float(q) for q in quantiles)
    _check_inputs(x, counts, cut, folds, levels, alphas)
    names = [str(i) for i in range(len(counts))] if groups is None else list(groups)
    if len(names) != len(counts):
        raise ValueError(f"groups must have one entry per row, got {len(names)}")

    y = np.log1p(counts)
    fold_of = group_folds(names, folds, seed)
    out_of_fold = {float(a): np.zeros_like(y) for a in alphas}
    fold_sigma = {float(a): np.ones_like(y) for a in alphas}
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        if not train.any() or not test.any() or cut[train].all():
            continue
        for alpha in out_of_fold:
            mean, scale, coef, intercept, spread = _fit_em(x[train], y[train], cut[train], alpha)
            fold_sigma[alpha][test] = spread
            out_of_fold[alpha][test] = ((x[test] - mean) / scale) @ coef + intercept
    cv_loss = {a: _censored_nll(y, p, cut, fold_sigma[a]) for a, p in out_of_fold.items()}
    best = min(cv_loss, key=lambda a: (cv_loss[a], a))
    mean, scale, coef, intercept, in_sample = _fit_em(x, y, cut, best)
    # the EM spread is in-sample; widen it by how much larger out-of-fold errors are
    fitted = ((x - mean) / scale) @ coef + intercept
    oof_rmse = float(np.sqrt(np.mean((y - out_of_fold[best])[~cut] ** 2)))
    fit_rmse = max(float(np.sqrt(np.mean((y - fitted)[~cut] ** 2))), _MIN_SIGMA)
    sigma = in_sample * max(1.0, oof_rmse / fit_rmse)
    offsets = np.maximum.accumulate(sigma * norm.ppf(np.array(levels)))
    model = BudgetRidge(mean, scale, coef, intercept, levels, offsets)

    coverage: dict[float, float] = {}
    if check_coverage:
        under: dict[float, list[bool]] = {q: [] for q in levels}
        for k in range(folds):
            train, test = fold_of != k, fold_of == k
            if not test.any() or cut[train].all() or train.sum() < 2 * folds:
                continue
            inner = fit_budget_ridge(
                x[train],
                counts[train],
                cut[train],
                quantiles=levels,
                alphas=(best,),
                folds=folds,
                groups=[names[i] for i in np.flatnonzero(train)],
                seed=seed + 1,
                check_coverage=False,
            )
            predicted = inner.model.predict_tokens(x[test])
            for column, q in enumerate(levels):
                bound = predicted[:, column]
                # a censored row is surely over a quantile below its cut; above it, unknown
                known = ~cut[test] | (bound < counts[test])
                under[q].extend((counts[test] <= bound)[known].tolist())
        coverage = {q: float(np.mean(v)) for q, v in under.items() if v}
    return BudgetRidgeFit(
        model=model,
        alpha=best,
        sigma=sigma,
        cv_loss=cv_loss,
        cv_coverage=coverage,
        n_censored=int(cut.sum()),
    )
