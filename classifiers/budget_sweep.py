"""Budget sweeps: accuracy against thinking tokens actually spent, fixed vs predicted budgets.

A sweep file has one JSON line per question: ``{"prompt", "natural_tokens", "budgets",
"correct"}``: whether the model's answer was right when its thinking was force-closed at
each budget (increasing; the last is the natural length). Under a budget ``b`` a question
is correct as at the largest listed budget ``<= b`` (none: incorrect) and spends
``min(b, natural_tokens)``: a model that stops by itself spends what it needed. Optional
per-budget keys ``probe_answers``, ``probe_confidences`` and ``probe_mass`` (the answer
probed at each cut) feed the online stop rule of :mod:`classifiers.budget_probes`.

:func:`evaluate_sweep` compares one fixed budget for every question with ``scale x`` a
predicted per-question budget. Both curves are step functions with known steps, so the
least mean spent reaching the target accuracy (the unlimited accuracy) is exact on each;
``spent_ratio`` is predicted / fixed at that target (below 1: the predictor saves tokens).

Example::

    >>> import numpy as np
    >>> from classifiers.budget_sweep import SweepRow, evaluate_sweep
    >>> rows = [SweepRow("easy", 100, np.array([10, 100]), np.array([True, True])),
    ...         SweepRow("hard", 400, np.array([200, 400]), np.array([False, True]))]
    >>> result = evaluate_sweep(rows, np.array([1.0, 40.0]))
    >>> result["fixed_spent_at_target"], result["predicted_spent_at_target"]
    (250.0, 205.0)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["SweepRow", "accuracy_and_spent", "evaluate_sweep", "read_sweep", "sweep_line"]

_KEYS = ("prompt", "natural_tokens", "budgets", "correct")
_GRID_POINTS = 60


class SweepRow(NamedTuple):
    """One question of a sweep file."""

    prompt: str
    natural_tokens: int
    budgets: np.ndarray
    """Increasing budgets, the last one the natural length, ``int64``."""
    correct: np.ndarray
    """Right or not when force-closed at each budget, ``bool``."""
    probe_answers: tuple[str, ...] | None = None
    """Optional: the answer probed at each budget (see :mod:`classifiers.budget_probes`)."""
    probe_confidences: np.ndarray | None = None
    """Optional: that answer's share among the valid answers, ``float64``."""
    probe_mass: np.ndarray | None = None
    """Optional: the valid answers' share of the next-token distribution (NaN: unknown)."""


def sweep_line(row: SweepRow) -> str:
    """One JSONL line of ``row``, keys as in the file format."""
    record: dict[str, Any] = {
        "prompt": row.prompt,
        "natural_tokens": int(row.natural_tokens),
        "budgets": [int(b) for b in row.budgets],
        "correct": [bool(c) for c in row.correct],
    }
    if row.probe_answers is not None:
        record["probe_answers"] = list(row.probe_answers)
    if row.probe_confidences is not None:
        record["probe_confidences"] = [float(c) for c in row.probe_confidences]
    if row.probe_mass is not None:
        record["probe_mass"] = [None if np.isnan(m) else float(m) for m in row.probe_mass]
    return json.dumps(record, ensure_ascii=False)


def _probes(record: dict[str, Any], size: int, where: str) -> dict[str, Any]:
    """The optional per-cut probe keys, checked: one value per budget."""
    found: dict[str, Any] = {}
    answers = record.get("probe_answers")
    if answers is None:
        return found
    if not isinstance(answers, list) or len(answers) != size:
        raise ValueError(f"{where}: probe_answers must be a list of {size} answers")
    found["probe_answers"] = tuple("" if a is None else str(a) for a in answers)
    for key in ("probe_confidences", "probe_mass"):
        values = record.get(key)
        if values is None:
            if key == "probe_confidences":
                found[key] = np.ones(size)
            continue
        if not isinstance(values, list) or len(values) != size:
            raise ValueError(f"{where}: {key} must be a list of {size} numbers")
        try:
            found[key] = np.array(
                [np.nan if v is None else float(v) for v in values], dtype=np.float64
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {key} must hold numbers") from exc
    return found


def _row(record: Any, where: str) -> SweepRow:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object")
    missing = [key for key in _KEYS if key not in record]
    if missing:
        raise ValueError(f"{where}: missing {missing}")
    budgets, correct = record["budgets"], record["correct"]
    if not isinstance(record["prompt"], str):
        raise ValueError(f"{where}: prompt must be a string")
    if not isinstance(budgets, list) or not isinstance(correct, list) or not budgets:
        raise ValueError(f"{where}: budgets and correct must be non-empty lists")
    if len(budgets) != len(correct):
        raise ValueError(f"{where}: {len(budgets)} budgets but {len(correct)} correct flags")
    if not all(isinstance(c, bool) for c in correct):
        raise ValueError(f"{where}: correct must hold booleans")
    try:
        values = np.array([int(b) for b in budgets], dtype=np.int64)
        natural = int(record["natural_tokens"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: budgets and natural_tokens must be integers") from exc
    if np.any(np.diff(values) <= 0) or values[0] < 0:
        raise ValueError(f"{where}: budgets must be non-negative and increasing")
    if values[-1] != natural:
        raise ValueError(
            f"{where}: the last budget ({values[-1]}) must be natural_tokens ({natural})"
        )
    return SweepRow(
        record["prompt"],
        natural,
        values,
        np.array(correct, dtype=bool),
        **_probes(record, len(budgets), where),
    )


def read_sweep(path: str | Path) -> list[SweepRow]:
    """Read a sweep JSONL file.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: on a malformed line; the message names the file and line.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no such sweep file: {source}")
    rows: list[SweepRow] = []
    with source.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{source}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not JSON ({exc.msg})") from exc
            rows.append(_row(record, where))
    return rows


def _steps(rows: Sequence[SweepRow], divisors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where (``budget / divisor``) and by how much each row's correctness changes."""
    where, delta = [], []
    for row, divisor in zip(rows, divisors, strict=True):
        flags = row.correct.astype(np.int64)
        where.append(row.budgets / divisor)
        delta.append(np.diff(flags, prepend=0))
    points, changes = np.concatenate(where), np.concatenate(delta)
    order = np.argsort(points, kind="stable")
    return points[order], changes[order]


def _accuracy_at(points: np.ndarray, changes: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    cumulative = np.concatenate([[0], np.cumsum(changes)])
    index = np.searchsorted(points, at, side="right")
    accuracy: np.ndarray = cumulative[index] / n
    return accuracy


def _spent(natural: np.ndarray, divisors: np.ndarray, at: np.ndarray) -> np.ndarray:
    spent: np.ndarray = np.minimum(at[:, None] * divisors[None, :], natural[None, :]).mean(axis=1)
    return spent


def _least_spent(
    points: np.ndarray,
    changes: np.ndarray,
    natural: np.ndarray,
    divisors: np.ndarray,
    target: float,
) -> tuple[float, float, float]:
    """The first step point reaching ``target``: (point, accuracy, mean spent)."""
    candidates = np.unique(points)
    accuracy = _accuracy_at(points, changes, candidates, len(natural))
    reached = np.flatnonzero(accuracy >= target - 1e-12)
    if reached.size == 0:
        raise ValueError(f"no budget reaches the target accuracy {target}")
    point = float(candidates[reached[0]])
    spent = float(_spent(natural, divisors, np.array([point]))[0])
    return point, float(accuracy[reached[0]]), spent


def _curve(
    points: np.ndarray, changes: np.ndarray, natural: np.ndarray, divisors: np.ndarray, extra: float
) -> list[tuple[float, float, float]]:
    low, high = max(float(points[points > 0].min(initial=1.0)), 1e-9), float(points.max())
    grid = np.unique(np.append(np.geomspace(low, high, _GRID_POINTS), extra))
    accuracy = _accuracy_at(points, changes, grid, len(natural))
    spent = _spent(natural, divisors, grid)
    return [(float(g), float(a), float(s)) for g, a, s in zip(grid, accuracy, spent, strict=True)]


def accuracy_and_spent(rows: Sequence[SweepRow], budgets: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean spent tokens when row ``i`` gets the budget ``budgets[i]``."""
    right, spent = 0, 0.0
    for row, budget in zip(rows, np.asarray(budgets, dtype=np.float64), strict=True):
        index = int(np.searchsorted(row.budgets, budget, side="right")) - 1
        right += bool(index >= 0 and row.correct[index])
        spent += min(float(budget), float(row.natural_tokens))
    return right / len(rows), spent / len(rows)


def evaluate_sweep(
    rows: Sequence[SweepRow], predicted: np.ndarray, target: float | None = None
) -> dict[str, Any]:
    """Accuracy and mean spent tokens of fixed budgets and of ``scale x predicted``.

    ``target`` defaults to the unlimited accuracy (the issue's definition); another value
    is for reports only (the ``target_accuracy`` key then says which).

    Returns the keys of ``thinkgate eval-budget --sweep``: ``n``, ``unlimited_accuracy``,
    ``unlimited_mean_spent``, ``fixed`` (``{budget, accuracy, mean_spent}``), ``predicted``
    (``{scale, accuracy, mean_spent}``), ``target_accuracy`` (= ``unlimited_accuracy``),
    ``fixed_spent_at_target``, ``predicted_spent_at_target`` and ``spent_ratio``.

    Raises:
        ValueError: on no rows, or predictions that are not one positive number per row.
    """
    weights = np.asarray(predicted, dtype=np.float64).reshape(-1)
    if not rows:
        raise ValueError("cannot evaluate an empty sweep")
    if weights.shape != (len(rows),):
        raise ValueError(f"need one predicted budget per row ({len(rows)}), got {weights.size}")
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError("every predicted budget must be positive and finite")
    natural = np.array([row.natural_tokens for row in rows], dtype=np.float64)
    unlimited = float(np.mean([row.correct[-1] for row in rows]))
    target = unlimited if target is None else float(target)
    ones = np.ones(len(rows))

    fixed_points, fixed_changes = _steps(rows, ones)
    budget, _, fixed_spent = _least_spent(fixed_points, fixed_changes, natural, ones, target)
    scale_points, scale_changes = _steps(rows, weights)
    scale, _, predicted_spent = _least_spent(scale_points, scale_changes, natural, weights, target)
    fixed = _curve(fixed_points, fixed_changes, natural, ones, budget)
    scaled = _curve(scale_points, scale_changes, natural, weights, scale)
    return {
        "n": len(rows),
        "unlimited_accuracy": unlimited,
        "unlimited_mean_spent": float(natural.mean()),
        "fixed": [{"budget": b, "accuracy": a, "mean_spent": s} for b, a, s in fixed],
        "predicted": [{"scale": c, "accuracy": a, "mean_spent": s} for c, a, s in scaled],
        "target_accuracy": target,
        "fixed_spent_at_target": fixed_spent,
        "predicted_spent_at_target": predicted_spent,
        "spent_ratio": predicted_spent / fixed_spent if fixed_spent > 0 else float("inf"),
    }
