"""Outcome files: boolean and numeric columns, exclusions, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.outcomes import OutcomesError, load_excluded_prompts, load_outcomes


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_boolean_csv_and_exclude(tmp_path: Path) -> None:
    csv_file = _write(
        tmp_path / "a.csv",
        'prompt,weak,strong\n"Q1, with comma",True,True\nQ2,False,True\nQ3,False,False\n',
    )
    exclude = _write(tmp_path / "x.jsonl", json.dumps({"eval_prompt": "Q3"}) + "\n")
    data = load_outcomes(
        [csv_file],
        weak_column="weak",
        strong_column="strong",
        exclude=load_excluded_prompts(exclude),
    )
    assert data.prompts == ["Q1, with comma", "Q2"]
    assert data.kind == "boolean"
    assert data.labels().tolist() == [0, 1]


def test_numeric_jsonl_scores(tmp_path: Path) -> None:
    rows = [{"q": "a", "w": 3, "s": 9}, {"q": "b", "w": 8, "s": 8}, {"q": "c", "w": 10, "s": 1}]
    file = _write(tmp_path / "chat.jsonl", "\n".join(json.dumps(r) for r in rows))
    data = load_outcomes([file], weak_column="w", strong_column="s", prompt_column="q")
    assert data.kind == "numeric"
    assert data.labels().tolist() == [1, 0, 0]
    assert data.labels(margin=5).tolist() == [1, 0, 0]
    weak, strong = data.normalized()
    assert weak.min() >= 0 and strong.max() <= 1
    assert data.gain.tolist() == pytest.approx([6 / 9, 0, -1])


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    file = _write(tmp_path / "bad.csv", "prompt,weak\nQ,True\n")
    with pytest.raises(OutcomesError, match=r"bad\.csv.*column 'strong' not found"):
        load_outcomes([file], weak_column="weak", strong_column="strong")


def test_malformed_value_names_file_column_and_row(tmp_path: Path) -> None:
    file = _write(tmp_path / "bad.csv", "prompt,weak,strong\nQ1,True,False\nQ2,maybe,True\n")
    with pytest.raises(OutcomesError) as info:
        load_outcomes([file], weak_column="weak", strong_column="strong")
    message = str(info.value)
    assert "bad.csv" in message and "'weak'" in message and "row 2" in message
    assert isinstance(info.value, ValueError)


def test_empty_cell_and_bad_json_are_named(tmp_path: Path) -> None:
    file = _write(tmp_path / "e.csv", "prompt,weak,strong\nQ1,,True\n")
    with pytest.raises(OutcomesError, match=r"e\.csv: column 'weak', row 1: empty"):
        load_outcomes([file], weak_column="weak", strong_column="strong")
    broken = _write(tmp_path / "b.jsonl", '{"prompt": "x"}\n{not json\n')
    with pytest.raises(OutcomesError, match=r"b\.jsonl: line 2"):
        load_outcomes([broken], weak_column="w", strong_column="s")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OutcomesError, match="no such file"):
        load_outcomes([tmp_path / "nope.csv"], weak_column="w", strong_column="s")
