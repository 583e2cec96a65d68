"""The one reader of record files (JSONL or CSV/TSV) used by every command, and its error.

A record file holds one record (a flat object) per row: JSON Lines (``.jsonl``,
``.ndjson``, ``.json``: one JSON object per non-empty line) or a table with a header row
(``.csv``, ``.tsv``). Which one is decided by the suffix, or forced with ``jsonl=True``.
Everything that can go wrong while reading raises `RecordsError`, whose message names the
file (and the line or row where one is to blame).

Example::

    >>> from classifiers.records import read_records           # doctest: +SKIP
    >>> read_records("qa.jsonl")[0]["prompt"]                  # doctest: +SKIP
    'What is 2 + 2?'
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

__all__ = [
    "JSONL_SUFFIXES",
    "TABLE_SUFFIXES",
    "RecordsError",
    "read_records",
    "record_columns",
    "record_field",
]

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
TABLE_SUFFIXES = frozenset({".csv", ".tsv"})


class RecordsError(ValueError):
    """A record file is missing, unreadable or malformed, or a record lacks what is needed.

    The message names the file, and the line/row and field where one is to blame.
    """


def read_records(path: str | Path, *, jsonl: bool | None = None) -> list[dict[str, object]]:
    """Every record of a JSONL or CSV/TSV file, in file order.

    ``jsonl`` forces the format; by default it follows the suffix (a file that is neither
    JSONL nor TSV by suffix is read as CSV). CSV cells are strings; a CSV file with a
    header and no rows gives ``[]``.

    Raises:
        RecordsError: no such file, not UTF-8, a JSONL line that is not a JSON object, or a
            CSV file the csv module rejects.
    """
    file = Path(path)
    if not file.is_file():
        raise RecordsError(f"{file}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordsError(f"{file}: cannot read as UTF-8 text ({exc})") from exc
    suffix = file.suffix.lower()
    if jsonl or (jsonl is None and suffix in JSONL_SUFFIXES):
        return _jsonl_records(file, text)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        return [dict(row) for row in reader]
    except csv.Error as exc:
        raise RecordsError(f"{file}: not a valid CSV file ({exc})") from exc


def _jsonl_records(file: Path, text: str) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordsError(f"{file}: line {number} is not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise RecordsError(
                f"{file}: line {number} is not a JSON object (got {type(record).__name__})"
            )
        records.append(record)
    return records


def record_columns(records: list[dict[str, object]]) -> list[str]:
    """Every field name that occurs in ``records``, in order of first appearance."""
    return list(dict.fromkeys(name for record in records for name in record))


def record_field(record: dict[str, object], field: str, where: str) -> str:
    """``record[field]`` as a string; `RecordsError` naming ``where`` and the fields there."""
    if field not in record:
        names = ", ".join(sorted(record)) or "none"
        raise RecordsError(f"{where}: no field {field!r} (fields: {names})")
    value = record[field]
    if not isinstance(value, str):
        raise RecordsError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    return value
