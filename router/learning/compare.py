"""Comparing a budget model or a tau with the active one on held-out records of the log.

**Budget models** (`compare_budgets`), on the held-out strong-tier answers that had a
thinking budget (both models score the same request ids): each model's budget is its raw
prediction at the serving quantile (``budget.quantile``; slack and clamps are the config's,
the same for both). An answer is *covered* when the budget reaches its natural length:
an answer that finished is covered iff ``budget >= length``; a force-closed one (censored:
its natural length is more than it spent) is not covered when ``budget <= spent`` and
unknown otherwise (left out of the coverage). *Spent* is the mean of ``min(length,
budget)``, a lower bound for censored answers. The challenger is worse when its coverage
is lower, or equal with more tokens spent: coverage first (a cut-off thought is a worse
answer), tokens second.

**Tau** (`compare_taus`), on the held-out small answers with an uncertainty and a label
(``small_ok``), for a target error rate of the small answers kept (``--target-error``, as
``calibrate-escalation --from-log`` prints it): a tau *meets* the target when the answers it
keeps (``u <= tau``) are wrong at most that often. The challenger is worse when the active
tau meets the target and it does not, when both meet it and the challenger escalates more,
or when neither does and its kept answers are wrong more often. Without a target the two
cannot be compared.

Both need `MIN_COMPARE` held-out records, else the comparison is ``comparable: False`` and
promotion refuses without ``force``.

Example::

    detail = compare_budgets(store, Path("my-budget"), active_folder, quantile=0.9,
                             holdout_fraction=0.2)
    detail["worse"], detail["challenger"]["coverage"], detail["active"]["spent"]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from router.learning.artifacts import MIN_COMPARE
from router.learning.store import LearningStore


def budget_score(budgets: np.ndarray, lengths: np.ndarray, censored: np.ndarray) -> dict[str, Any]:
    """Coverage of the natural lengths and mean tokens spent (see the module docstring)."""
    covered = np.where(censored, False, budgets >= lengths)
    known = ~censored | (budgets <= lengths)
    return {
        "coverage": float(covered[known].mean()) if known.any() else 0.0,
        "n_coverage": int(known.sum()),
        "spent": float(np.minimum(lengths, budgets).mean()) if len(lengths) else 0.0,
    }


def compare_budgets(
    store: LearningStore,
    challenger: Path,
    active: Path,
    *,
    quantile: float,
    holdout_fraction: float,
) -> dict[str, Any]:
    """Coverage and spent tokens of two budget-model folders on the same held-out answers."""
    from classifiers.budget_model import BudgetRidge
    from classifiers.budget_predictor import BudgetFeatures
    from router.learning.log_data import budget_rows

    def rows_for(folder: Path) -> Any:
        meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        spec = BudgetFeatures.from_json(meta["features"])
        return budget_rows(
            store,
            int(meta["n_features"]),
            spec.compute,
            holdout_fraction=holdout_fraction,
            holdout=True,
        )

    def column(model: BudgetRidge) -> int:
        levels = list(model.quantiles)
        return min(range(len(levels)), key=lambda i: abs(levels[i] - quantile))

    rows_c, rows_a = rows_for(challenger), rows_for(active)
    common = sorted(set(rows_c.request_ids) & set(rows_a.request_ids))
    detail: dict[str, Any] = {
        "n_holdout": len(common),
        "holdout_fraction": holdout_fraction,
        "quantile": quantile,
    }
    if len(common) < MIN_COMPARE:
        detail["comparable"] = False
        return detail
    detail["comparable"] = True
    for name, folder, rows in (("challenger", challenger, rows_c), ("active", active, rows_a)):
        model = BudgetRidge.load(folder / "weights.safetensors")
        index = {rid: i for i, rid in enumerate(rows.request_ids)}
        take = np.array([index[rid] for rid in common], dtype=np.int64)
        predicted = model.predict_tokens(rows.features[take])[:, column(model)]
        detail[name] = budget_score(predicted, rows.lengths[take], rows.censored[take])
    c, a = detail["challenger"], detail["active"]
    fewer = c["coverage"] < a["coverage"]
    detail["worse"] = bool(fewer or (c["coverage"] == a["coverage"] and c["spent"] > a["spent"]))
    return detail


def tau_score(uncertainties: np.ndarray, ok: np.ndarray, tau: float) -> dict[str, Any]:
    kept = uncertainties <= tau
    return {
        "tau": tau,
        "escalation_rate": float(1 - kept.mean()),
        "kept_error_rate": float(1 - ok[kept].mean()) if kept.any() else 0.0,
    }


def compare_taus(
    store: LearningStore,
    challenger: float,
    active: float | None,
    *,
    target_error: float | None,
    holdout_fraction: float,
) -> dict[str, Any]:
    """Both taus on the same held-out labelled small answers, for ``target_error``."""
    from router.learning.log_data import small_answer_rows

    rows = small_answer_rows(store, holdout_fraction=holdout_fraction, holdout=True)
    detail: dict[str, Any] = {
        "n_holdout": len(rows.ok),
        "holdout_fraction": holdout_fraction,
        "target_error": target_error,
    }
    if len(rows.ok) < MIN_COMPARE or target_error is None or active is None:
        detail["comparable"] = False
        return detail
    detail["comparable"] = True
    u, ok = np.asarray(rows.uncertainties), np.asarray(rows.ok, dtype=bool)
    c, a = tau_score(u, ok, challenger), tau_score(u, ok, active)
    c["meets"] = c["kept_error_rate"] <= target_error
    a["meets"] = a["kept_error_rate"] <= target_error
    detail["challenger"], detail["active"] = c, a
    if a["meets"] != c["meets"]:
        worse = bool(a["meets"])
    elif c["meets"]:
        worse = c["escalation_rate"] > a["escalation_rate"]
    else:
        worse = c["kept_error_rate"] > a["kept_error_rate"]
    detail["worse"] = bool(worse)
    return detail
