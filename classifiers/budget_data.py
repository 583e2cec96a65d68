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

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from classifiers.records import read_records, record_field

__all__ = [
    "BudgetRow",
    "count_steps",
    "file_sha256",
    "holdout_mask",
    "read_budget_rows",
    "write_budget_rows",
]


class BudgetRow(NamedTuple):
    """One prompt and the reasoning text it needed."""

    prompt: str
    target: str


def read_budget_rows(
    path: str | Path, prompt_field: str = "question", target_field: str = "answer"
) -> list[BudgetRow]:
    """Read ``(prompt, target)`` rows from a JSONL file, or a CSV/TSV file by its suffix.

    Raises:
        RecordsError: when ``path`` does not exist, a line is not a JSON object or a record
            lacks a field; the message names the file, the record and the fields there.
    """
    rows: list[BudgetRow] = []
    for number, record in enumerate(read_records(path), start=1):
        where = f"{path}: record {number}"
        rows.append(
            BudgetRow(
                record_field(record, prompt_field, where), record_field(record, target_field, where)
            )
        )
    return rows


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
