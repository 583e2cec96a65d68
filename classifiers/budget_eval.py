"""Thinking tokens spent under predicted budgets vs one fixed budget, on natural lengths.

Given the budget predicted for each prompt and the tokens each prompt really needed (its
natural length), the evaluation scales all predictions by the one factor that covers
``coverage`` of the rows (``needed <= scale * predicted``) and finds the single fixed
budget with the same coverage, i.e. the same truncated share. A model that stops by itself
spends ``min(needed, budget)``, so that is what is compared: ``spent_ratio`` below 1 means
the predictor truncates as many rows as the fixed budget while spending fewer tokens.
``token_ratio`` compares reserved caps (mean budget / fixed budget) and is kept only for
reference: a cap that is never reached costs nothing. For accuracy against tokens spent,
use a sweep file (:mod:`classifiers.budget_sweep`).

Example::

    >>> import numpy as np
    >>> from classifiers.budget_eval import evaluate_budgets
    >>> needed = np.array([10, 20, 40, 80])
    >>> result = evaluate_budgets(needed / 2, needed, coverage=1.0)
    >>> (result.scale, result.fixed_budget, result.mean_spent, result.fixed_mean_spent)
    (2.0, 80.0, 37.5, 37.5)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BudgetEvaluation", "evaluate_budgets"]


@dataclass(frozen=True)
class BudgetEvaluation:
    """The numbers ``thinkgate eval-budget --data`` writes."""

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
    mean_spent: float
    """Mean of ``min(needed, scaled predicted budget)``: tokens really spent."""
    truncated_share: float
    """Share of rows cut by their scaled predicted budget (``1 - coverage``)."""
    fixed_mean_spent: float
    """Mean of ``min(needed, fixed_budget)``."""
    fixed_truncated_share: float
    """Share of rows cut by the fixed budget."""
    spent_ratio: float
    """``mean_spent / fixed_mean_spent``: below 1 the predictor spends fewer tokens."""

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
    mean_spent = float(np.minimum(needed, budgets).mean())
    fixed_mean_spent = float(np.minimum(needed, fixed_budget).mean())
    covered = needed <= budgets * (1 + 1e-12)
    return BudgetEvaluation(
        n=n,
        spearman=_spearman(predicted, needed),
        coverage=float(np.mean(covered)),
        scale=scale,
        mean_budget=mean_budget,
        fixed_budget=fixed_budget,
        token_ratio=float(token_ratio),
        target_coverage=float(coverage),
        mean_spent=mean_spent,
        truncated_share=float(np.mean(~covered)),
        fixed_mean_spent=fixed_mean_spent,
        fixed_truncated_share=float(np.mean(needed > fixed_budget)),
        spent_ratio=mean_spent / fixed_mean_spent if fixed_mean_spent > 0 else math.inf,
    )
