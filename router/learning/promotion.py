"""Promotion: make a router, budget model or tau the active one on every gateway replica.

`promote_router` compares the challenger with the active router and with the prompt-length
baseline (longer prompt = harder, by the record's prompt tokens) on the same held-out
labelled records of the decision log (`router.learning.log_data`; APGR, RouteLLM's
method) and refuses one that is worse than either, or that cannot be compared (too few
held-out records), unless ``force``. The artifact folder is stored in the database (a tar; routers
and budget models are tens of KB) and the ``active`` row is set; every replica's
`VersionPoller` swaps it in within ``learning.poll_interval_s``. Budget models and tau
are compared the same way (`router.learning.compare`: coverage of natural thinking
lengths, then tokens spent; kept-answer error for a target). Each promotion is an
``events`` row (previous version, forced or not, the comparison).

Example::

    result = promote_router(store, "new-router", force=False)
    result["version"], result["comparison"]["challenger"]["apgr"]
    result["comparison"]["prompt_length"]["apgr"]     # the baseline it had to beat
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from router.learning.artifacts import (
    MIN_COMPARE,
    MIN_GAP,
    folder_version,
    pack_folder,
    tau_version,
    unpack_artifact,
)
from router.learning.store import LearningStore


class PromotionRefused(Exception):
    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.detail = detail


def detect_kind(folder: str | Path) -> str:
    root = Path(folder)
    if (root / "router.json").is_file():
        return "router"
    if (root / "metadata.json").is_file():
        return "budget"
    raise ValueError(f"{root}: neither a router folder (router.json) nor a budget model")


def _active_folder(
    store: LearningStore, kind: str, configured: str | None, default: Path
) -> tuple[str, Path]:
    """(version, folder) of the ``kind`` artifact in force: the promoted one, else
    ``configured``, else ``default`` (the shipped one)."""
    version = store.active_versions().get(kind)
    if version is not None:
        artifact = store.artifact(version)
        if artifact is not None:
            return version, unpack_artifact(version, artifact["payload"])
    folder = Path(configured) if configured else default
    return folder_version(kind, folder), folder


def active_router_folder(store: LearningStore, configured: str | None) -> tuple[str, Path | None]:
    """(version, folder) of the router in force: the promoted one, else ``configured``
    (None = the shipped default)."""
    from classifiers.difficulty import DEFAULT_ROUTER_PATH

    return _active_folder(store, "router", configured, DEFAULT_ROUTER_PATH)


def compare_routers(
    store: LearningStore, challenger: Any, active: Any, *, holdout_fraction: float
) -> dict[str, Any]:
    """APGR of both routers on the held-out labelled records both can score."""
    from router.learning.log_data import apgr_of, router_rows

    def rows_for(router: Any) -> Any:
        rows = router_rows(
            store, router.featurizer_id, router.features, holdout_fraction=holdout_fraction
        )
        return rows.subset(rows.holdout)

    rows_c, rows_a = rows_for(challenger), rows_for(active)
    common = sorted(set(rows_c.request_ids) & set(rows_a.request_ids))
    rows_c = rows_c.subset(np.isin(rows_c.request_ids, common))
    rows_a = rows_a.subset(np.isin(rows_a.request_ids, common))
    order_c, order_a = np.argsort(rows_c.request_ids), np.argsort(rows_a.request_ids)
    rows_c, rows_a = rows_c.subset(order_c), rows_a.subset(order_a)
    detail: dict[str, Any] = {"n_holdout": len(rows_c), "holdout_fraction": holdout_fraction}
    gap = float(np.mean(rows_c.strong - rows_c.weak)) if common else 0.0
    detail["quality_gap"] = gap
    if len(common) < MIN_COMPARE or gap < MIN_GAP:
        detail["comparable"] = False
        return detail
    detail["comparable"] = True
    detail["challenger"] = apgr_of(challenger.score_features(rows_c.features), rows_c)
    detail["active"] = apgr_of(active.score_features(rows_a.features), rows_a)
    lengths = prompt_lengths(store, rows_c.request_ids)
    detail["prompt_length"] = apgr_of(lengths, rows_c)
    return detail


def prompt_lengths(store: LearningStore, request_ids: list[str]) -> np.ndarray:
    """The prompt-length baseline's scores: each record's prompt tokens (longer = harder),
    kept for every record whether or not its text was stored."""
    tokens = {
        record["request_id"]: float(record["prompt_tokens"])
        for record, _ in store.labelled_records()
    }
    return np.array([tokens[i] for i in request_ids], dtype=np.float64)


def promote_router(
    store: LearningStore,
    folder: str | Path,
    *,
    force: bool = False,
    configured: str | None = None,
    holdout_fraction: float = 0.2,
) -> dict[str, Any]:
    from classifiers.difficulty import DifficultyRouter

    challenger = DifficultyRouter.load(folder)
    version = folder_version("router", folder)
    active_version, active_folder = active_router_folder(store, configured)
    detail: dict[str, Any] = {"active_version": active_version}
    if active_version == version:
        detail["comparable"] = False
        detail["note"] = "already active"
    else:
        active = DifficultyRouter.load(active_folder)
        detail.update(compare_routers(store, challenger, active, holdout_fraction=holdout_fraction))
    if not force and active_version != version:
        if not detail["comparable"]:
            raise PromotionRefused(
                f"cannot compare with the active router {active_version}: only "
                f"{detail['n_holdout']} held-out labelled records (need {MIN_COMPARE}, with "
                f"mean strong - weak >= {MIN_GAP}); collect more labels or pass --force",
                detail,
            )
        if detail["challenger"]["apgr"] < detail["active"]["apgr"]:
            raise PromotionRefused(
                f"the challenger is worse than the active router {active_version} on "
                f"{detail['n_holdout']} held-out labelled records (APGR "
                f"{detail['challenger']['apgr']:.3f} < {detail['active']['apgr']:.3f}); "
                "pass --force to promote it anyway",
                detail,
            )
        if detail["challenger"]["apgr"] < detail["prompt_length"]["apgr"]:
            raise PromotionRefused(
                f"the challenger is worse than the prompt-length baseline on "
                f"{detail['n_holdout']} held-out labelled records (APGR "
                f"{detail['challenger']['apgr']:.3f} < {detail['prompt_length']['apgr']:.3f}); "
                "pass --force to promote it anyway",
                detail,
            )
    metadata = json.loads((Path(folder) / "router.json").read_text(encoding="utf-8"))
    store.put_artifact(version, "router", metadata, pack_folder(folder))
    previous = store.activate("router", version, forced=force, detail=detail)
    return {"kind": "router", "version": version, "previous": previous, "comparison": detail}


def active_budget_folder(store: LearningStore, configured: str | None) -> tuple[str, Path]:
    """(version, folder) of the budget model in force: the promoted one, else
    ``configured`` (None = the shipped default)."""
    from classifiers.budget_predictor import DEFAULT_BUDGET_DIR

    return _active_folder(store, "budget", configured, DEFAULT_BUDGET_DIR)


def _refuse_if_worse(kind: str, detail: dict[str, Any], measure: str) -> None:
    active = detail["active_version"]
    if not detail["comparable"]:
        raise PromotionRefused(
            f"cannot compare with the active {kind} {active}: only {detail['n_holdout']} "
            f"held-out records ({measure}); collect more labels or pass --force",
            detail,
        )
    if detail["worse"]:
        raise PromotionRefused(
            f"the challenger is worse than the active {kind} {active} on "
            f"{detail['n_holdout']} held-out records (challenger {detail['challenger']}, "
            f"active {detail['active']}); pass --force to promote it anyway",
            detail,
        )


def promote_budget(
    store: LearningStore,
    folder: str | Path,
    *,
    force: bool = False,
    configured: str | None = None,
    quantile: float = 0.9,
    holdout_fraction: float = 0.2,
) -> dict[str, Any]:
    """Store and activate a budget model; refused (unless ``force``) when it covers fewer
    held-out natural thinking lengths than the active one, or as many with more tokens
    (`router.learning.compare`)."""
    from classifiers.budget_predictor import ComplexityPredictor
    from router.learning.compare import compare_budgets

    ComplexityPredictor.load(folder)  # refuses a malformed folder before anything is stored
    version = folder_version("budget", folder)
    active_version, active_folder = active_budget_folder(store, configured)
    detail: dict[str, Any] = {"active_version": active_version}
    if active_version == version:
        detail.update(comparable=False, note="already active")
    else:
        detail.update(
            compare_budgets(
                store,
                Path(folder),
                active_folder,
                quantile=quantile,
                holdout_fraction=holdout_fraction,
            )
        )
        if not force:
            _refuse_if_worse(
                "budget model",
                detail,
                f"strong answers with a thinking budget, need {MIN_COMPARE}",
            )
    metadata = json.loads((Path(folder) / "metadata.json").read_text(encoding="utf-8"))
    store.put_artifact(version, "budget", metadata, pack_folder(folder))
    previous = store.activate("budget", version, forced=force, detail=detail)
    return {"kind": "budget", "version": version, "previous": previous, "comparison": detail}


def promote_tau(
    store: LearningStore,
    tau: float,
    *,
    force: bool = False,
    configured: float | None = None,
    target_error: float | None = None,
    holdout_fraction: float = 0.2,
) -> dict[str, Any]:
    """Activate a tau; refused (unless ``force``) when, on the held-out labelled small
    answers, it does worse than the active tau (the promoted one, else ``configured``) for
    ``target_error`` (`router.learning.compare`), or when it cannot be compared."""
    from router.learning.compare import compare_taus

    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    version = tau_version(tau)
    active_version = store.active_versions().get("tau")
    active_tau = configured
    if active_version is not None:
        artifact = store.artifact(active_version)
        if artifact is not None and artifact["value"] is not None:
            active_tau = float(artifact["value"])
    if active_version is None and configured is not None:
        active_version = tau_version(configured)
    detail: dict[str, Any] = {"tau": tau, "active_version": active_version}
    if active_version == version:
        detail.update(comparable=False, note="already active")
    else:
        detail.update(
            compare_taus(
                store,
                tau,
                active_tau,
                target_error=target_error,
                holdout_fraction=holdout_fraction,
            )
        )
        if not force:
            _refuse_if_worse(
                "tau",
                detail,
                f"labelled small answers with an uncertainty, need {MIN_COMPARE}, and "
                "--target-error",
            )
    store.put_artifact(version, "tau", {"tau": tau}, None, tau)
    previous = store.activate("tau", version, forced=force, detail=detail)
    return {"kind": "tau", "version": version, "previous": previous, "comparison": detail}
