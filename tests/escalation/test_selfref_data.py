"""The shared answer judge and the QA dataset reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.records import RecordsError
from router.escalation.selfref_data import (
    first_line,
    is_correct,
    normalize_answer,
    read_qa_jsonl,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,000.", "1000"),
        ("18.50", "18.5"),
        ("7.0 apples", "7 apples"),
        ("The Answer: Paris!", "the answer paris"),
        ("-3", "-3"),
        ("1,23", "1 23"),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("reply", "gold", "correct"),
    [
        ("The answer is 72.", "72", True),
        ("72", "72.0", True),
        ("It costs $1,200 in total", "1200", True),
        ("720", "72", False),
        ("7.2", "72", False),
        ("72.5", "72", False),
        ("-72", "72", False),
        ("Paris, France", "paris", True),
        ("Parisian food", "Paris", False),
        ("New York City", "new york", True),
        ("\n\n  The answer is 5\nthen 6", "5", True),
        ("The answer is\n5", "5", False),
        ("", "5", False),
    ],
)
def test_is_correct_needs_whole_words_in_first_line(reply: str, gold: str, correct: bool) -> None:
    assert is_correct(reply, gold) is correct


def test_first_line_skips_blank_lines() -> None:
    assert first_line("\n \nabc\ndef") == "abc"
    assert first_line("") == ""


def test_read_qa_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    rows = [{"prompt": "2+2?", "answer": 4}, {"prompt": "Capital of France?", "answer": "Paris"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = read_qa_jsonl(path)
    assert [(i.prompt, i.answer) for i in items] == [("2+2?", "4"), ("Capital of France?", "Paris")]
    assert items[0].messages[0].role == "user"
    assert len(read_qa_jsonl(path, limit=1)) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "qa.jsonl: line 2 is not valid JSON"),
        ('{"prompt": "", "answer": "1"}', "'prompt' must be"),
        ('{"prompt": "q", "answer": true}', "'answer' must be"),
        ('{"prompt": "q", "answer": "..."}', "no words"),
    ],
)
def test_read_qa_jsonl_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"prompt": "q", "answer": "1"}\n' + line + "\n")
    with pytest.raises(RecordsError, match=message):
        read_qa_jsonl(path)


def test_read_qa_jsonl_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordsError, match="no such file"):
        read_qa_jsonl(tmp_path / "nope.jsonl")
