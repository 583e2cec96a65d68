"""Routing outcome files: which prompts a weak and a strong model got right (or how well).

An outcomes file is a CSV or a JSONL file with one prompt per row and, per model, either
a boolean column (the answer was correct: ``True/False``, ``true/false``, ``1/0``,
``yes/no``) or a numeric column (a judge score, e.g. 1–10). Several files can be loaded
at once; each row remembers its file, so validation can hold out whole files (domains).

The label the router learns, for both kinds of column, is

    y = 1  if  strong_score - weak_score > margin   else 0

i.e. "the weak model does worse where the strong one would do better" (``margin`` is 0 by
default; for booleans this is "weak wrong and strong right"). ``gain`` keeps the signed
difference, scaled to ``[-1, 1]`` by the score range, for the oracle router.

Example::

    >>> from classifiers.outcomes import load_outcomes
    >>> data = load_outcomes(["mmlu_law.csv"], weak_column="weak",
    ...                      strong_column="strong")          # doctest: +SKIP
    >>> data.labels().mean()                                  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from classifiers.records import RecordsError, read_records, record_columns

__all__ = [
    "Outcomes",
    "OutcomesError",
    "ScoreKind",
    "files_digest",
    "load_excluded_prompts",
    "load_outcomes",
]

ScoreKind = Literal["boolean", "numeric"]

_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0", "correct"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0", "incorrect"})


OutcomesError = RecordsError
"""An outcomes or exclude file is missing, unreadable or malformed (the one error of every
record file, `classifiers.records.RecordsError`). The message names the file, and the column
and row where one is to blame."""


@dataclass(frozen=True)
class Outcomes:
    """Prompts with the weak and strong model's scores, from one or more files.

    Attributes:
        prompts: prompt texts.
        weak: weak model score per prompt (1.0/0.0 for boolean columns).
        strong: strong model score per prompt.
        groups: index into ``sources`` of the file each prompt came from.
        sources: the files, in the order given.
        kind: ``"boolean"`` when every score is 0/1, else ``"numeric"``.
    """

    prompts: list[str]
    weak: np.ndarray
    strong: np.ndarray
    groups: np.ndarray
    sources: list[str]
    kind: ScoreKind

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def score_range(self) -> float:
        """Spread of all scores (1 for booleans); used to scale ``gain``."""
        if self.kind == "boolean" or len(self) == 0:
            return 1.0
        both = np.concatenate([self.weak, self.strong])
        spread = float(both.max() - both.min())
        return spread if spread > 0 else 1.0

    @property
    def gain(self) -> np.ndarray:
        """``(strong - weak) / score_range``: what routing a prompt to strong gains."""
        result: np.ndarray = (self.strong - self.weak) / self.score_range
        return result

    def normalized(self) -> tuple[np.ndarray, np.ndarray]:
        """(weak, strong) scores mapped to ``[0, 1]`` by the common score range."""
        if self.kind == "boolean" or len(self) == 0:
            return self.weak, self.strong
        low = float(min(self.weak.min(), self.strong.min()))
        span = self.score_range
        return (self.weak - low) / span, (self.strong - low) / span

    def labels(self, margin: float = 0.0) -> np.ndarray:
        """Binary router target: 1 where ``strong - weak > margin`` (raw score units)."""
        result: np.ndarray = ((self.strong - self.weak) > margin).astype(np.int64)
        return result

    def subset(self, index: np.ndarray) -> Outcomes:
        """The rows at ``index`` (integer or boolean array), same sources."""
        rows = np.arange(len(self))[index]
        return Outcomes(
            prompts=[self.prompts[i] for i in rows],
            weak=self.weak[rows],
            strong=self.strong[rows],
            groups=self.groups[rows],
            sources=self.sources,
            kind=self.kind,
        )


def _parse_score(value: object, path: Path, column: str, row: int) -> tuple[float, bool]:
    """(score, is_boolean) of one cell; raises naming file, column and row."""
    where = f"{path}: column {column!r}, row {row}"
    if isinstance(value, bool):
        return (1.0 if value else 0.0), True
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        token = value.strip().lower()
        if token in _TRUE:
            return 1.0, True
        if token in _FALSE:
            return 0.0, True
        if not token:
            raise OutcomesError(f"{where}: empty value (expected a boolean or a number)")
        try:
            number = float(token)
        except ValueError:
            raise OutcomesError(
                f"{where}: {value!r} is neither a boolean (True/False) nor a number"
            ) from None
    elif value is None:
        raise OutcomesError(f"{where}: empty value (expected a boolean or a number)")
    else:
        raise OutcomesError(f"{where}: {value!r} is neither a boolean nor a number")
    if not math.isfinite(number):
        raise OutcomesError(f"{where}: {value!r} is not a finite number")
    return number, number in (0.0, 1.0)


def load_excluded_prompts(path: str | Path, key: str = "eval_prompt") -> set[str]:
    """Prompts listed under ``key`` in a JSONL file (one object per line)."""
    file = Path(path)
    rows = read_records(file, jsonl=True)
    excluded: set[str] = set()
    for number, row in enumerate(rows, start=1):
        value = row.get(key)
        if not isinstance(value, str):
            raise OutcomesError(f"{file}: row {number} has no string field {key!r}")
        excluded.add(value.strip())
    return excluded


def load_outcomes(
    files: Sequence[str | Path],
    *,
    weak_column: str,
    strong_column: str,
    prompt_column: str = "prompt",
    exclude: Iterable[str] = (),
) -> Outcomes:
    """Load and concatenate outcome files, dropping prompts in ``exclude``.

    Raises:
        OutcomesError: a file is missing or unreadable, a column is absent, a prompt is
            not text, or a score is neither a boolean nor a finite number. The message
            names the file and column (and row).
    """
    if not files:
        raise OutcomesError("no outcomes files given")
    excluded = {p.strip() for p in exclude}
    prompts: list[str] = []
    weak: list[float] = []
    strong: list[float] = []
    groups: list[int] = []
    all_boolean = True
    sources = [str(f) for f in files]
    for group, name in enumerate(files):
        path = Path(name)
        rows = read_records(path)
        columns = record_columns(rows)
        if not rows:
            raise OutcomesError(f"{path}: contains no rows")
        for column in (prompt_column, weak_column, strong_column):
            if column not in columns:
                raise OutcomesError(
                    f"{path}: column {column!r} not found (columns: {', '.join(columns)})"
                )
        for number, row in enumerate(rows, start=1):
            prompt = row.get(prompt_column)
            if not isinstance(prompt, str) or not prompt.strip():
                raise OutcomesError(
                    f"{path}: column {prompt_column!r}, row {number}: prompt is empty or not text"
                )
            if prompt.strip() in excluded:
                continue
            w, w_bool = _parse_score(row.get(weak_column), path, weak_column, number)
            s, s_bool = _parse_score(row.get(strong_column), path, strong_column, number)
            all_boolean = all_boolean and w_bool and s_bool
            prompts.append(prompt)
            weak.append(w)
            strong.append(s)
            groups.append(group)
    if not prompts:
        raise OutcomesError(f"no rows left in {', '.join(sources)} after exclusions")
    return Outcomes(
        prompts=prompts,
        weak=np.asarray(weak, dtype=np.float64),
        strong=np.asarray(strong, dtype=np.float64),
        groups=np.asarray(groups, dtype=np.int64),
        sources=sources,
        kind="boolean" if all_boolean else "numeric",
    )


def files_digest(files: Sequence[str | Path]) -> str:
    """SHA-256 over the file contents in the given order (names excluded)."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(Path(name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()
