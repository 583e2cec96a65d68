"""APGR and CPT of a router, computed exactly as RouteLLM's ``evals/evaluate.py``.

Method (see ``../shared/data/README.md``): the 11 edges of 10 equal-count quantile bins
of the router scores are thresholds; at edge ``i`` a prompt goes to the strong model when
its score is ``>= edge`` (the last edge uses ``>``, i.e. ~0% strong). Each threshold gives a
point (strong-call share, mean quality); the points are sorted by share and

- APGR = (trapezoid area under quality − weak × span) / ((strong − weak) × span),
  ``span`` being the covered range of strong-call share;
- CPT(x) = ``np.interp(weak + x (strong − weak), qualities, shares)``.

Shares and CPT are fractions in ``[0, 1]`` (RouteLLM prints percentages).

Example::

    >>> import numpy as np
    >>> from classifiers.evaluation import evaluate_scores
    >>> weak = np.array([1.0, 0.0, 0.0, 1.0]); strong = np.array([1.0, 1.0, 0.0, 1.0])
    >>> report = evaluate_scores(np.array([0.1, 0.9, 0.5, 0.2]), weak, strong)
    >>> round(report.apgr, 3)
    0.875
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "RouterReport",
    "apgr",
    "cpt",
    "evaluate_scores",
    "oracle_scores",
    "quality_curve",
    "random_apgr",
]

NUM_BINS = 10
"""RouteLLM's ``num_results``: thresholds at the edges of 10 quantile bins."""


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def quality_curve(
    scores: np.ndarray, weak: np.ndarray, strong: np.ndarray, num_bins: int = NUM_BINS
) -> np.ndarray:
    """Points ``(strong_share, quality)``, shape ``(num_bins + 1, 2)``, sorted by share.

    ``quality`` is the mean score when prompts at or above each quantile edge go to the
    strong model and the rest to the weak one.
    """
    scores = np.asarray(scores, dtype=np.float64)
    weak = np.asarray(weak, dtype=np.float64)
    strong = np.asarray(strong, dtype=np.float64)
    if not (scores.shape == weak.shape == strong.shape) or scores.ndim != 1:
        raise ValueError(
            "scores, weak and strong must be 1-D arrays of one length, got shapes "
            f"{scores.shape}, {weak.shape}, {strong.shape}"
        )
    if scores.size == 0:
        raise ValueError("cannot evaluate a router on zero prompts")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    # pandas.qcut(..., retbins=True) takes these quantiles with linear interpolation.
    edges = np.quantile(scores, np.linspace(0.0, 1.0, num_bins + 1))
    points = np.empty((len(edges), 2), dtype=np.float64)
    for i, edge in enumerate(edges):
        to_strong = scores >= edge if i != len(edges) - 1 else scores > edge
        points[i, 0] = float(np.mean(to_strong))
        points[i, 1] = float(np.mean(np.where(to_strong, strong, weak)))
    order = np.argsort(points[:, 0], kind="stable")
    sorted_points: np.ndarray = points[order]
    return sorted_points


def apgr(curve: np.ndarray, weak_quality: float, strong_quality: float) -> float:
    """Average performance gap recovered by a ``quality_curve``.

    Raises:
        ValueError: when strong and weak quality are equal (there is no gap to recover)
            or the curve covers no range of strong-call share.
    """
    shares, qualities = curve[:, 0], curve[:, 1]
    span = float(shares[-1] - shares[0])
    gap = strong_quality - weak_quality
    if gap == 0 or span == 0:
        raise ValueError(
            f"APGR is undefined: strong - weak quality = {gap:g}, share span = {span:g}"
        )
    area = _trapezoid(qualities, shares)
    return (area - weak_quality * span) / (gap * span)


def cpt(curve: np.ndarray, weak_quality: float, strong_quality: float, fraction: float) -> float:
    """Strong-call share needed to recover ``fraction`` of the quality gap (``np.interp``)."""
    target = weak_quality + fraction * (strong_quality - weak_quality)
    return float(np.interp(target, curve[:, 1], curve[:, 0]))


def oracle_scores(weak: np.ndarray, strong: np.ndarray, seed: int = 0) -> np.ndarray:
    """Scores of the oracle router: the true gain ``strong - weak``, ties broken at random.

    Ties are broken so that the 10 quantile edges split the data as for any continuous
    router; otherwise a three-valued score would give only three distinct thresholds.
    """
    rng = np.random.default_rng(seed)
    gain = np.asarray(strong, dtype=np.float64) - np.asarray(weak, dtype=np.float64)
    spread = float(np.ptp(gain)) if gain.size else 0.0
    jitter = rng.random(gain.shape) * 1e-6 * (spread if spread > 0 else 1.0)
    result: np.ndarray = gain + jitter
    return result


def random_apgr(weak: np.ndarray, strong: np.ndarray, repeats: int = 20, seed: int = 0) -> float:
    """Mean APGR of a router with uniform random scores (``repeats`` seeded draws)."""
    rng = np.random.default_rng(seed)
    weak_quality, strong_quality = float(np.mean(weak)), float(np.mean(strong))
    values = [
        apgr(quality_curve(rng.random(len(weak)), weak, strong), weak_quality, strong_quality)
        for _ in range(repeats)
    ]
    return float(np.mean(values))


@dataclass(frozen=True)
class RouterReport:
    """APGR, CPT and the curve of one router on one set of outcomes."""

    n: int
    weak_accuracy: float
    strong_accuracy: float
    apgr: float
    cpt50: float
    cpt80: float
    curve: list[list[float]]
    random_apgr: float
    oracle_apgr: float
    oracle_curve: list[list[float]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The JSON keys of ``thinkgate eval-router`` (no oracle curve)."""
        return {
            "n": self.n,
            "weak_accuracy": self.weak_accuracy,
            "strong_accuracy": self.strong_accuracy,
            "apgr": self.apgr,
            "cpt50": self.cpt50,
            "cpt80": self.cpt80,
            "curve": self.curve,
            "random_apgr": self.random_apgr,
            "oracle_apgr": self.oracle_apgr,
        }


def evaluate_scores(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> RouterReport:
    """Full RouteLLM evaluation of router ``scores`` against the models' outcomes."""
    weak = np.asarray(weak, dtype=np.float64)
    strong = np.asarray(strong, dtype=np.float64)
    weak_quality, strong_quality = float(np.mean(weak)), float(np.mean(strong))
    curve = quality_curve(scores, weak, strong)
    oracle = quality_curve(oracle_scores(weak, strong), weak, strong)
    return RouterReport(
        n=len(weak),
        weak_accuracy=weak_quality,
        strong_accuracy=strong_quality,
        apgr=apgr(curve, weak_quality, strong_quality),
        cpt50=cpt(curve, weak_quality, strong_quality, 0.5),
        cpt80=cpt(curve, weak_quality, strong_quality, 0.8),
        curve=curve.tolist(),
        random_apgr=random_apgr(weak, strong),
        oracle_apgr=apgr(oracle, weak_quality, strong_quality),
        oracle_curve=oracle.tolist(),
    )
