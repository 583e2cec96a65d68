"""How many thinking tokens predicted budgets save against one fixed budget.

Given the budget predicted for each prompt and the tokens each prompt really needed, the
evaluation scales all predictions by the one factor that covers ``coverage`` of the rows
(``needed <= scale * predicted``), finds the single fixed budget with the same coverage,
and compares what the two spend on average. A ``token_ratio`` below 1 means the predictor
buys the same coverage with fewer tokens than a fixed budget; only the ranking and the
relative sizes of the predictions matter, not their unit.

Example::

    >>> import numpy as np
    >>> from classifiers.budget_eval import evaluate_budgets
    >>> needed = np.array([10, 20, 40, 80])
    >>> result = evaluate_budgets(needed / 2, needed, coverage=1.0)
    >>> (result.scale, result.fixed_budget, result.token_ratio)
    (2.0, 80.0, 0.46875)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BudgetEvaluation", "evaluate_budgets"]


@dataclass(frozen=True)
class BudgetEvaluation:
    """The numbers ``thinkgate eval-budget`` writes, keys as issue 4 names them."""

    n: int
    """Rows evaluated."""
    spearman: float
    """Rank correlation of predicted budgets with needed tokens."""
    coverage: float
    """Share of rows whose needed tokens fit in the scaled budget (>= the target)."""
    scale: float
    """Factor applied to every predicted budget to reach the target coverage."""
    mean_budget: float
    """Mean of the scaled predicted budgets."""
    fixed_budget: float
    """The smallest single budget that reaches the same target coverage."""
    token_ratio: float
    """``mean_budget / fixed_budget``: below 1 the predictor spends fewer tokens."""
    target_coverage: float
    """The coverage asked for."""

    def to_dict(self) -> dict[str, float | int]:
        """The evaluation as a JSON-ready dict."""
        return asdict(self)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def evaluate_budgets(
    predicted: np.ndarray, needed: np.ndarray, coverage: float = 0.9
) -> BudgetEvaluation:
    """Compare scaled predicted budgets with the best fixed budget at equal coverage.

    ``k = ceil(coverage * n)`` rows must fit. The scale is the k-th smallest ratio
    ``needed / predicted`` and the fixed budget the k-th smallest ``needed``, so both are
    the least that covers ``k`` rows.

    Raises:
        ValueError: on empty or mismatched inputs, a coverage outside ``(0, 1]``, or a
            predicted budget that is not positive and finite.
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    needed = np.asarray(needed, dtype=np.float64).reshape(-1)
    if predicted.shape != needed.shape:
        raise ValueError(
            f"predicted and needed must have the same length, got {predicted.size} "
            f"and {needed.size}"
        )
    if predicted.size == 0:
        raise ValueError("cannot evaluate budgets on zero rows")
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    if not np.all(np.isfinite(predicted)) or np.any(predicted <= 0):
        raise ValueError("every predicted budget must be positive and finite")
    if np.any(needed < 0):
        raise ValueError("needed tokens must not be negative")
    n = predicted.size
    k = max(1, math.ceil(coverage * n - 1e-9))
    scale = float(np.sort(needed / predicted)[k - 1])
    budgets = scale * predicted
    fixed_budget = float(np.sort(needed)[k - 1])
    mean_budget = float(budgets.mean())
    token_ratio = mean_budget / fixed_budget if fixed_budget > 0 else math.inf
    return BudgetEvaluation(
        n=n,
        spearman=_spearman(predicted, needed),
        coverage=float(np.mean(needed <= budgets * (1 + 1e-12))),
        scale=scale,
        mean_budget=mean_budget,
        fixed_budget=fixed_budget,
        token_ratio=float(token_ratio),
        target_coverage=float(coverage),
    )
