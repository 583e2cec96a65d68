"""Rows of (prompt, reasoning text) for training and checking the complexity predictor.

A source is a JSONL or CSV file with one prompt column and one target column: the reference
solution or reasoning trace whose length is what the prompt "needs". GSM8K's
``{"question", "answer"}`` is the default shape; any other file names its own fields.

The held-out split hashes each prompt with a seed, so it does not depend on the order of
the file, and the same command always holds out the same rows.

Example::

    >>> from classifiers.budget_data import BudgetRow, holdout_mask
    >>> rows = [BudgetRow("What is 2 + 2?", "2 + 2 = 4"), BudgetRow("Hi", "Hello")]
    >>> holdout_mask([r.prompt for r in rows], fraction=0.0).tolist()
    [False, False]
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "BudgetRow",
    "count_steps",
    "file_sha256",
    "holdout_mask",
    "read_budget_rows",
    "write_budget_rows",
]

_CSV_SUFFIXES = {".csv", ".tsv"}


class BudgetRow(NamedTuple):
    """One prompt and the reasoning text it needed."""

    prompt: str
    target: str


def _field(record: dict[str, object], field: str, where: str) -> str:
    if field not in record:
        names = ", ".join(sorted(record)) or "none"
        raise ValueError(f"{where}: no field {field!r} (fields: {names})")
    value = record[field]
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    return value


def _read_jsonl(path: Path, prompt_field: str, target_field: str) -> list[BudgetRow]:
    rows: list[BudgetRow] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not a JSON object ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
            rows.append(
                BudgetRow(_field(record, prompt_field, where), _field(record, target_field, where))
            )
    return rows


def _read_csv(path: Path, prompt_field: str, target_field: str) -> list[BudgetRow]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows: list[BudgetRow] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for number, record in enumerate(reader, start=2):
            where = f"{path}:{number}"
            rows.append(
                BudgetRow(
                    _field(dict(record), prompt_field, where),
                    _field(dict(record), target_field, where),
                )
            )
    return rows


def read_budget_rows(
    path: str | Path, prompt_field: str = "question", target_field: str = "answer"
) -> list[BudgetRow]:
    """Read ``(prompt, target)`` rows from a JSONL file, or a CSV/TSV file by its suffix.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when a line is not a JSON object or lacks a field; the message names
            the file, the line and the fields that are there.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no such data file: {source}")
    if source.suffix.lower() in _CSV_SUFFIXES:
        return _read_csv(source, prompt_field, target_field)
    return _read_jsonl(source, prompt_field, target_field)


def write_budget_rows(
    rows: Iterable[BudgetRow],
    path: str | Path,
    prompt_field: str = "question",
    target_field: str = "answer",
) -> int:
    """Write rows as JSONL with the given field names; returns how many were written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with target.open("w", encoding="utf-8") as handle:
        for row in rows:
            record = {prompt_field: row.prompt, target_field: row.target}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    return written


def holdout_mask(prompts: Sequence[str], fraction: float, seed: int = 0) -> np.ndarray:
    """Return a boolean mask, True for the prompts held out of training.

    A prompt is held out when ``sha256(f"{seed}:{prompt}")``, read as a number in
    ``[0, 1)``, is below ``fraction``: the choice depends only on the prompt and the seed,
    so it survives reordering, and a duplicated prompt never lands on both sides.

    Raises:
        ValueError: when ``fraction`` is not in ``[0, 1)``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    mask = np.zeros(len(prompts), dtype=bool)
    for index, prompt in enumerate(prompts):
        digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
        mask[index] = int.from_bytes(digest[:8], "big") / 2.0**64 < fraction
    return mask


def count_steps(text: str) -> int:
    """Count the reasoning steps of a solution: its non-empty lines, else its sentences.

    GSM8K writes one step per line and a final ``#### answer`` line, which is not a step.
    A one-paragraph trace counts its sentences instead.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    steps = [line for line in lines if not line.lstrip().startswith("####")]
    if len(steps) > 1:
        return len(steps)
    sentences = [part for part in text.replace("!", ".").replace("?", ".").split(". ") if part]
    return max(1, len(sentences))


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (recorded so an artifact names the data it came from)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
