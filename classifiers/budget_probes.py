"""Thinking probes on a sweep file: the online stop rule against one fixed budget.

A sweep row (:mod:`classifiers.budget_sweep`) may carry, per cut, the answer the model gave
when its thinking was closed there (``probe_answers``, ``probe_confidences``,
``probe_mass``). The online rule (:class:`~classifiers.budget_probe_rule.ProbeRule`) is
replayed on it:

- a probe runs at every cut strictly inside the trace (``0 < budget < natural_tokens``):
  the sweep's cuts are the probe interval. No probe at 0 (nothing thought yet) nor at the
  natural end (thinking ended by itself);
- at each probe the rule sees only the probes so far; when it fires at cut ``k`` the
  thinking stops there, the answer is the one at cut ``k`` (``correct[k]``) and the row
  spends ``budgets[k] + probes x probe_tokens``;
- when it never fires the row thinks to its natural end: ``correct[-1]``, spending
  ``natural_tokens + probes x probe_tokens``.

``fixed_spent_at_same_accuracy`` is the least mean spent of one fixed budget for all rows
(semantics of :mod:`classifiers.budget_sweep`: correct as at the largest cut ``<=`` the
budget, spending ``min(budget, natural)``) reaching ``min(online accuracy, best fixed
accuracy)``, and ``spent_ratio = mean_spent / fixed_spent_at_same_accuracy``.

Worked example (``agree=2``, thresholds 0.9 and 0.5, 10 tokens a probe): row ``a`` has
cuts 0, 100, 200, 300, 400 (natural), is right from 200 on, and its probes say C, B, B at
100, 200, 300, all confident: the rule fires at 300 after 3 probes, right, spending
300 + 30 = 330. Row ``b`` has cuts 0, 50, 100 (natural) and one probe, so it thinks to the
end: right, spending 100 + 10 = 110. Online: accuracy 1.0, mean spent 220. The least fixed
budget reaching 1.0 is 200 (``a`` needs 200, ``b`` 100): mean spent (200 + 100) / 2 = 150,
so the ratio is 220 / 150 = 1.467::

    >>> import numpy as np
    >>> from classifiers.budget_sweep import SweepRow
    >>> from classifiers.budget_probes import evaluate_online
    >>> from classifiers.budget_probe_rule import ProbeRule
    >>> a = SweepRow("a", 400, np.array([0, 100, 200, 300, 400]), np.arange(5) >= 2,
    ...              ("", "C", "B", "B", "B"), np.full(5, 0.95), np.full(5, 0.9))
    >>> b = SweepRow("b", 100, np.array([0, 50, 100]), np.array([False, False, True]),
    ...              ("", "C", "D"), np.full(3, 0.95), np.full(3, 0.9))
    >>> rule = ProbeRule(agree=2, min_confidence=0.9, min_mass=0.5, probe_tokens=10)
    >>> report = evaluate_online([a, b], rule)
    >>> report["accuracy"], report["mean_spent"], report["fixed_spent_at_same_accuracy"]
    (1.0, 220.0, 150.0)
    >>> round(report["spent_ratio"], 3)
    1.467
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any, NamedTuple

import numpy as np

from classifiers.answer_normalisation import AnswerKind, normalise_answer
from classifiers.budget_probe_rule import Probe, ProbeRule
from classifiers.budget_sweep import SweepRow, _least_spent, _steps

__all__ = [
    "Outcomes",
    "cross_validate_rule",
    "evaluate_online",
    "online_outcomes",
    "rule_grid",
    "summarise_online",
]


class Outcomes(NamedTuple):
    """Per row: right or not, tokens spent (probes included), probes run, stop cut."""

    correct: np.ndarray
    spent: np.ndarray
    probes: np.ndarray
    stop: np.ndarray
    """Index of the cut where thinking stopped (the last one: it ran to the end)."""


def _probe_lists(rows: Sequence[SweepRow], kind: AnswerKind) -> list[list[tuple[int, Probe]]]:
    """Per row, (cut index, probe) for each cut strictly inside the trace."""
    out = []
    for row in rows:
        if row.probe_answers is None:
            raise ValueError(f"row {row.prompt[:40]!r} has no probe_answers")
        confidences = row.probe_confidences
        masses = row.probe_mass
        probes = []
        for k, budget in enumerate(row.budgets):
            if not 0 < budget < row.natural_tokens:
                continue
            mass = None if masses is None or np.isnan(masses[k]) else float(masses[k])
            confidence = 1.0 if confidences is None else float(confidences[k])
            answer = normalise_answer(row.probe_answers[k], kind)
            probes.append((k, Probe(answer, confidence, mass)))
        out.append(probes)
    return out


def online_outcomes(
    rows: Sequence[SweepRow],
    rule: ProbeRule,
    kind: AnswerKind = "auto",
    *,
    probes: list[list[tuple[int, Probe]]] | None = None,
) -> Outcomes:
    """Replay ``rule`` on every row (see the module docstring)."""
    lists = _probe_lists(rows, kind) if probes is None else probes
    correct = np.zeros(len(rows), dtype=bool)
    spent = np.zeros(len(rows))
    count = np.zeros(len(rows), dtype=np.int64)
    stop = np.zeros(len(rows), dtype=np.int64)
    for i, (row, row_probes) in enumerate(zip(rows, lists, strict=True)):
        seen: list[Probe] = []
        stop[i] = len(row.budgets) - 1
        for k, probe in row_probes:
            seen.append(probe)
            if rule.settled(seen):
                stop[i] = k
                break
        count[i] = len(seen)
        correct[i] = bool(row.correct[stop[i]])
        spent[i] = float(row.budgets[stop[i]]) + len(seen) * rule.probe_tokens
    return Outcomes(correct, spent, count, stop)


def summarise_online(
    rows: Sequence[SweepRow], outcomes: Outcomes, probe_tokens: np.ndarray | float
) -> dict[str, Any]:
    """The ``online`` keys for outcomes (possibly of per-fold rules) on ``rows``."""
    natural = np.array([row.natural_tokens for row in rows], dtype=np.float64)
    ones = np.ones(len(rows))
    points, changes = _steps(rows, ones)
    candidates = np.unique(points)
    cumulative = np.concatenate([[0], np.cumsum(changes)])
    best_fixed = float(
        (cumulative[np.searchsorted(points, candidates, side="right")] / len(rows)).max()
    )
    accuracy = float(outcomes.correct.mean())
    target = min(accuracy, best_fixed)
    _, _, fixed_spent = _least_spent(points, changes, natural, ones, target)
    mean_spent = float(outcomes.spent.mean())
    return {
        "accuracy": accuracy,
        "mean_spent": mean_spent,
        "probes": float(outcomes.probes.mean()),
        "probe_tokens": float(np.mean(outcomes.probes * probe_tokens)),
        "fixed_spent_at_same_accuracy": fixed_spent,
        "spent_ratio": mean_spent / fixed_spent if fixed_spent > 0 else float("inf"),
        "early_stop_share": float(np.mean(outcomes.stop < [len(r.budgets) - 1 for r in rows])),
        "best_fixed_accuracy": best_fixed,
    }


def evaluate_online(
    rows: Sequence[SweepRow], rule: ProbeRule, kind: AnswerKind = "auto"
) -> dict[str, Any]:
    """The ``online`` object of ``eval-budget --sweep`` for one rule, plus the rule.

    Raises:
        ValueError: on no rows, or a row without ``probe_answers``.
    """
    if not rows:
        raise ValueError("cannot evaluate an empty sweep")
    outcomes = online_outcomes(rows, rule, kind)
    return {**summarise_online(rows, outcomes, rule.probe_tokens), "rule": asdict(rule)}


def rule_grid(
    agree: Iterable[int] = (1, 2, 3),
    min_confidence: Iterable[float] = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999),
    min_mass: Iterable[float] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7),
    probe_tokens: int = ProbeRule().probe_tokens,
) -> list[ProbeRule]:
    """Every combination, for :func:`cross_validate_rule`."""
    return [
        ProbeRule(a, c, m, probe_tokens)
        for a, c, m in itertools.product(agree, min_confidence, min_mass)
    ]


def _choose(
    rows: Sequence[SweepRow],
    probes: list[list[tuple[int, Probe]]],
    grid: Sequence[ProbeRule],
    cost: float,
) -> ProbeRule:
    """The rule of ``grid`` maximising ``accuracy - cost x mean_spent / natural mean``.

    Accuracy first, tokens as a tie-break of weight ``cost`` (0.05: spending the whole
    natural length again is worth 5 points of accuracy). Minimising the spent ratio itself
    overfits: the fixed reference is a cliff (it spends least just below the best fixed
    accuracy), so a rule chosen at its edge falls off it on other questions.
    """
    natural = float(np.mean([row.natural_tokens for row in rows]))
    best: tuple[float, ProbeRule] | None = None
    for rule in grid:
        outcomes = online_outcomes(rows, rule, probes=probes)
        score = float(outcomes.correct.mean()) - cost * float(outcomes.spent.mean()) / natural
        if best is None or score > best[0] + 1e-12:
            best = (score, rule)
    if best is None:
        raise ValueError("the rule grid is empty")
    return best[1]


def cross_validate_rule(
    rows: Sequence[SweepRow],
    grid: Sequence[ProbeRule],
    *,
    folds: int = 5,
    seed: int = 0,
    cost: float = 0.05,
    kind: AnswerKind = "auto",
) -> dict[str, Any]:
    """Out-of-fold figures of choosing the rule on the other questions' traces.

    Rows are grouped by prompt (all samples of one question fall in one fold). In each fold
    the rule is chosen on the training rows (see :func:`_choose` for ``cost``); the held-out
    rows are then replayed with it. Returns ``online`` (the summary of all out-of-fold
    outcomes), the rule chosen per fold and ``in_sample`` (the rule chosen on all rows).
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    prompts = sorted({row.prompt for row in rows})
    if len(prompts) < folds:
        raise ValueError(f"need at least {folds} questions, got {len(prompts)}")
    order = np.random.default_rng(seed).permutation(len(prompts))
    fold_of = {prompts[j]: rank % folds for rank, j in enumerate(order)}
    probes = _probe_lists(rows, kind)
    correct = np.zeros(len(rows), dtype=bool)
    spent = np.zeros(len(rows))
    count = np.zeros(len(rows), dtype=np.int64)
    stop = np.zeros(len(rows), dtype=np.int64)
    charged = np.zeros(len(rows))
    chosen = []
    for fold in range(folds):
        test = [i for i, row in enumerate(rows) if fold_of[row.prompt] == fold]
        train = [i for i, row in enumerate(rows) if fold_of[row.prompt] != fold]
        rule = _choose([rows[i] for i in train], [probes[i] for i in train], grid, cost)
        chosen.append(asdict(rule))
        held = online_outcomes([rows[i] for i in test], rule, probes=[probes[i] for i in test])
        correct[test], spent[test] = held.correct, held.spent
        count[test], stop[test] = held.probes, held.stop
        charged[test] = rule.probe_tokens
    outcomes = Outcomes(correct, spent, count, stop)
    return {
        "folds": folds,
        "seed": seed,
        "cost": cost,
        "grid_size": len(grid),
        "online": summarise_online(rows, outcomes, charged),
        "fold_rules": chosen,
        "in_sample": asdict(_choose(rows, probes, grid, cost)),
    }
