"""Reasoning models' thinking traces, graded, with what each question *needed*.

The shared ``budget/mip_overthinking`` data holds the full responses of QwQ-32B (``QwQ``),
DeepSeek-R1-Distill-Qwen-32B (``DSQ``) and DeepSeek-R1 (``deepseekR1``) on 582 GSM8K and
52 MATH problems; the thinking is the text before ``</think>``. For each trace this module

- grades the final answer: the last ``\\boxed{...}`` after the thinking (else in the whole
  text, else the last number of the answer) against GSM8K's ``#### N``; MATH traces carry
  the dataset's own ``eval_result``;
- finds where the correct answer *first appears* in the thinking (``answer_end``, a
  character offset): what follows is checking. A GSM8K answer is a number equal to the gold
  one; when that number is also in the question it must read as a result (after ``=``,
  "is", "be", "get", ... or in ``\\boxed{``). A MATH answer is the gold string, compared
  with spaces and ``\\left``/``\\right``/``\\!`` removed, ``\\dfrac`` read as ``\\frac``.

What a question needs is then the token position of ``answer_end`` (see
:func:`need_and_censoring`): a forced close after it still answers correctly.

Example::

    >>> from classifiers.budget_traces import first_answer_end, grade_gsm8k
    >>> grade_gsm8k("So 3 * 60 = 180.</think> The answer is \\\\boxed{180}.", "180")
    True
    >>> text = "3 sprints of 60 m: 3*60 = 180 m. Check: 180."
    >>> text[: first_answer_end(text, "180", "James runs 3 sprints of 60 meters.")]
    '3 sprints of 60 m: 3*60 = 180'
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "MODELS",
    "Trace",
    "first_answer_end",
    "grade_gsm8k",
    "load_traces",
    "need_and_censoring",
]

MODELS = ("QwQ", "DSQ", "deepseekR1")
"""Models with full thinking in the data (o1/o3-mini have token counts only)."""

_TEXT_FIELD = {"QwQ": "model_answer", "DSQ": "model_answer", "deepseekR1": ""}
_R1_FIELD = "deepseek-reasoner (question)"
_CLOSE = "</think>"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_RESULT_BEFORE = re.compile(
    r"(?:=|\bis|\bare|\bbe|\bget|\bgets|\bgives?|\bequals?|\btotal of|\{)\s*\\?\$?\s*$"
)


class Trace(NamedTuple):
    """One model's response to one problem."""

    dataset: str
    """``gsm8k`` or ``math``."""
    model: str
    prompt: str
    thinking: str
    """The text before ``</think>``."""
    correct: bool
    """The final answer is right."""
    answer_end: int | None
    """Character offset in ``thinking`` just after the correct answer first appears."""


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, index = 1, start + len("\\boxed{")
    while index < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        index += 1
    return text[start + len("\\boxed{") : index - 1]


def _as_number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").rstrip("."))
    except ValueError:
        return None


def _last_number(text: str | None) -> float | None:
    if text is None:
        return None
    found = _NUMBER.findall(text.replace("\\!", ""))
    return _as_number(found[-1]) if found else None


def grade_gsm8k(response: str, gold: str) -> bool:
    """True when the response's final answer equals the gold number."""
    _, _, answer = response.partition(_CLOSE)
    boxed = _last_boxed(answer) or _last_boxed(response)
    value = _last_number(boxed) if boxed is not None else _last_number(answer or response)
    target = _as_number(gold.strip())
    return value is not None and target is not None and abs(value - target) < 1e-6


def _squash(text: str) -> tuple[str, list[int]]:
    """``text`` without spaces and LaTeX sizing, and each kept character's end offset."""
    out: list[str] = []
    ends: list[int] = []
    index = 0
    skips = ("\\left", "\\right", "\\!", "\\,", "\\displaystyle")
    while index < len(text):
        skip = next((s for s in skips if text.startswith(s, index)), None)
        if skip is not None:
            index += len(skip)
            continue
        if text.startswith("\\dfrac", index):
            out.extend("\\frac")
            ends.extend([index + 6] * 5)
            index += 6
            continue
        if not text[index].isspace():
            out.append(text[index])
            ends.append(index + 1)
        index += 1
    return "".join(out), ends


def first_answer_end(thinking: str, gold: str, question: str) -> int | None:
    """Offset just after the first appearance of the answer ``gold`` in ``thinking``."""
    target = _as_number(gold.strip().strip("$"))
    if target is not None:
        in_question = any(
            value is not None and abs(value - target) < 1e-9
            for value in map(_as_number, _NUMBER.findall(question))
        )
        for match in _NUMBER.finditer(thinking):
            value = _as_number(match.group())
            if value is None or abs(value - target) > 1e-9:
                continue
            before = thinking[max(0, match.start() - 16) : match.start()]
            if not in_question or _RESULT_BEFORE.search(before):
                return match.end()
        return None
    squashed, ends = _squash(thinking)
    needle, _ = _squash(gold)
    found = squashed.find(needle) if needle else -1
    return None if found < 0 else ends[found + len(needle) - 1]


def _read(path: Path) -> list[dict[str, Any]]:
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of problems")
    return records


def _response(record: dict[str, Any], model: str) -> str:
    field = _TEXT_FIELD[model] or _R1_FIELD
    return str(record.get(field) or "")


def load_traces(
    root: str | Path, datasets: Sequence[str] = ("gsm8k", "math"), models: Sequence[str] = MODELS
) -> list[Trace]:
    """Read, grade and locate the answers of every trace under ``root``.

    MATH files of QwQ and DSQ carry no question; they are in the order of DeepSeek-R1's
    file (the gold answers agree line by line), which has it.

    Raises:
        FileNotFoundError: when a model's file is missing.
        ValueError: when the MATH files do not line up.
    """
    folder = Path(root)
    traces: list[Trace] = []
    for dataset in datasets:
        questions: list[str] = []
        if dataset == "math":
            reference = _read(folder / "math" / "deepseekR1.json")
            questions = [str(r["question"]) for r in reference]
            answers = [str(r["answer"]) for r in reference]
        for model in models:
            records = _read(folder / dataset / f"{model}.json")
            for index, record in enumerate(records):
                response = _response(record, model)
                thinking = response.partition(_CLOSE)[0]
                if dataset == "math":
                    if index >= len(answers) or str(record["answer"]) != answers[index]:
                        raise ValueError(f"{dataset}/{model}.json: line {index} does not line up")
                    question, gold = questions[index], answers[index]
                    correct = bool(record.get("eval_result"))
                else:
                    question = str(record["question"])
                    gold = str(record["answer"]).split("####")[-1].strip()
                    correct = grade_gsm8k(response, gold)
                end = first_answer_end(thinking, gold, question)
                traces.append(Trace(dataset, model, question, thinking, correct, end))
    return traces


def need_and_censoring(
    natural: np.ndarray, answer_at: np.ndarray, correct: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """What each trace needed, in tokens, and whether that is only a lower bound.

    ``answer_at`` is the token position where the correct answer first appears (-1: never).
    Need is that position; a correct trace whose thinking never shows the answer needed
    all of it (it was worked out after ``</think>``); a wrong one that never shows it needs
    more than it spent: censored at its natural length.
    """
    found = answer_at >= 0
    need = np.where(found, np.minimum(answer_at, natural), natural)
    censored = ~found & ~correct
    return need.astype(np.int64), censored


def measure_traces(traces: Sequence[Trace], counter: Any) -> tuple[np.ndarray, np.ndarray]:
    """Natural thinking length of each trace and the token position of its answer (-1: none).

    ``counter`` is a :class:`classifiers.budget_tokens.TokenCounter`: the unit of both.
    """
    ends = [0 if t.answer_end is None else t.answer_end for t in traces]
    natural, position = counter.count_prefixes([t.thinking for t in traces], ends, progress=True)
    found = np.array([t.answer_end is not None for t in traces], dtype=bool)
    return natural, np.where(found, position, -1)


def cut_budgets(natural: int, start: int = 16, steps_per_doubling: int = 8) -> np.ndarray:
    """Budgets at which to force-close one trace: a geometric grid below it, then itself."""
    grid: list[int] = []
    k = 0
    while (value := round(start * 2 ** (k / steps_per_doubling))) < natural:
        if not grid or value > grid[-1]:
            grid.append(value)
        k += 1
    return np.array([*grid, natural], dtype=np.int64)


def sweep_correct(budgets: np.ndarray, answer_at: int, correct: bool) -> np.ndarray:
    """Right or not when force-closed at each budget (the last one is the natural length).

    A cut is right once the correct answer has appeared before it; at the natural length
    the graded final answer counts (a model can find the answer and then talk itself out of
    it, which is why a cap can raise accuracy).
    """
    flags = (answer_at >= 0) & (budgets >= answer_at)
    flags[-1] = correct
    out: np.ndarray = flags.astype(bool)
    return out
