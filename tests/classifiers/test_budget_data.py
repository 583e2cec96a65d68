"""Reading prompt/reasoning rows, the hash holdout, and step counting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.budget_data import (
    BudgetRow,
    count_steps,
    file_sha256,
    holdout_mask,
    read_budget_rows,
    write_budget_rows,
)


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_reads_jsonl_with_default_fields(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "a.jsonl",
        [{"question": "Q1", "answer": "A1", "extra": 1}, {"question": "Q2", "answer": "A2"}],
    )
    assert read_budget_rows(path) == [BudgetRow("Q1", "A1"), BudgetRow("Q2", "A2")]


def test_custom_fields_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"p": "x", "r": "y"}\n\n{"p": "z", "r": "w"}\n', encoding="utf-8")
    assert read_budget_rows(path, "p", "r") == [BudgetRow("x", "y"), BudgetRow("z", "w")]


def test_reads_csv_with_multiline_cells(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('prompt,response\n"How many, in all?","step 1\nstep 2"\n', encoding="utf-8")
    rows = read_budget_rows(path, "prompt", "response")
    assert rows == [BudgetRow("How many, in all?", "step 1\nstep 2")]


def test_missing_field_names_file_line_and_fields(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "d.jsonl", [{"question": "Q", "answer": "A"}, {"question": "Q"}])
    with pytest.raises(
        ValueError, match=r"d\.jsonl: record 2: no field 'answer' \(fields: question\)"
    ):
        read_budget_rows(path)


def test_non_string_and_bad_json_are_errors(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "e.jsonl", [{"question": "Q", "answer": 3}])
    with pytest.raises(ValueError, match="must be a string, got int"):
        read_budget_rows(path)
    bad = tmp_path / "f.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"f\.jsonl: line 1 is not valid JSON"):
        read_budget_rows(bad)
    with pytest.raises(ValueError, match="no such file"):
        read_budget_rows(tmp_path / "missing.jsonl")


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    rows = [BudgetRow("Ünïcode prompt?", "line 1\nline 2"), BudgetRow("b", "c")]
    assert write_budget_rows(rows, tmp_path / "out" / "rows.jsonl", "p", "t") == 2
    assert read_budget_rows(tmp_path / "out" / "rows.jsonl", "p", "t") == rows


def test_holdout_is_deterministic_order_free_and_sized() -> None:
    prompts = [f"prompt number {i}" for i in range(2000)]
    mask = holdout_mask(prompts, 0.2, seed=0)
    assert 0.17 < mask.mean() < 0.23
    assert (holdout_mask(prompts, 0.2, seed=0) == mask).all()
    reversed_mask = holdout_mask(prompts[::-1], 0.2, seed=0)[::-1]
    assert (reversed_mask == mask).all()
    assert not (holdout_mask(prompts, 0.2, seed=1) == mask).all()
    assert not holdout_mask(prompts, 0.0).any()
    # A larger fraction only adds prompts: the 0.2 holdout is inside the 0.3 one.
    assert (holdout_mask(prompts, 0.3, seed=0) | ~mask).all()


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_holdout_fraction_is_checked(fraction: float) -> None:
    with pytest.raises(ValueError, match="holdout fraction must be in"):
        holdout_mask(["a"], fraction)


def test_count_steps_lines_then_sentences() -> None:
    gsm8k = "She has 2 + 3 = <<2+3=5>>5.\nThen 5 * 2 = <<5*2=10>>10.\n#### 10"
    assert count_steps(gsm8k) == 2
    assert count_steps("First add. Then multiply. Done") == 3
    assert count_steps("") == 1


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
