"""Answers compared after normalisation: option letters, numbers, ``\\boxed{...}``, text.

A thinking probe (:mod:`classifiers.budget_probes`) asks the model for its answer so far;
two probes agree when their *normalised* answers are equal. Normalisation:

- ``\\boxed{...}`` (the last one, braces balanced) is unwrapped first;
- ``letter``: one option letter, with the usual wrapping removed (``(B)``, ``B.``, ``B)``,
  ``**B**``, ``Answer: B``), upper-cased; only letters of the option set count;
- ``number``: commas, a leading ``$``, a trailing ``%`` or ``.`` and trailing zeros after a
  decimal point go (``1,234.50`` -> ``1234.5``, ``12.0`` -> ``12``, ``-0`` -> ``0``); text
  that is not a number as a whole gives its first number (``42 apples`` -> ``42``);
- ``text``: whitespace collapsed, case folded, a trailing full stop dropped; a free-form
  answer therefore agrees only with the exact same normalised text.

``kind="auto"`` tries letter (a lone letter only), then number, then text. An ``extract``
regex (per deployment: ``budget.probe.answer_pattern``) picks the answer out of the probe's
text first: its first group, or the whole match.

Example::

    >>> from classifiers.answer_normalisation import normalise_answer
    >>> normalise_answer("(b)", "letter"), normalise_answer("\\\\boxed{1,234.50}")
    (Answer(kind='letter', value='B'), Answer(kind='number', value='1234.5'))
    >>> normalise_answer("  The Moon. ", "text") == normalise_answer("the moon", "text")
    True
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Literal, NamedTuple

__all__ = ["OPTION_LETTERS", "Answer", "AnswerKind", "normalise_answer", "unbox"]

AnswerKind = Literal["auto", "letter", "number", "text"]
OPTION_LETTERS = "ABCDEFGHIJ"
"""The option letters of MMLU-Pro (ten options); MMLU uses the first four."""

_LETTER = re.compile(
    r"^\s*(?:\*\*)?\s*(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:=]?\s*)?"
    r"(?:\*\*)?[\(\[]?\s*([A-Za-z])\s*[\)\]]?(?:\*\*)?\s*[.:)]?(?:\*\*)?\s*(?:$|\s)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")
_FIRST_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


class Answer(NamedTuple):
    """A normalised answer: equal answers have equal ``(kind, value)``."""

    kind: Literal["letter", "number", "text"]
    value: str


def unbox(text: str) -> str:
    """The content of the last ``\\boxed{...}`` in ``text`` (braces balanced), else ``text``."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return text
    depth, begin = 0, start + len("\\boxed{")
    for index in range(begin, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            if depth == 0:
                return text[begin:index]
            depth -= 1
    return text[begin:]


def _letter(text: str, letters: str) -> Answer | None:
    match = _LETTER.match(text)
    if match is None:
        return None
    letter = match.group(1).upper()
    return Answer("letter", letter) if letter in letters else None


def _number(text: str) -> Answer | None:
    cleaned = text.strip().replace(",", "").replace("\\,", "").replace(" ", "")
    cleaned = cleaned.removeprefix("\\$").removeprefix("$").rstrip(".").removesuffix("\\%")
    cleaned = cleaned.removesuffix("%")
    if not _NUMBER.match(cleaned):
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if value == 0:
        return Answer("number", "0")
    text_value = format(value.normalize(), "f")
    if "." in text_value:
        text_value = text_value.rstrip("0").rstrip(".")
    return Answer("number", text_value)


def _text(text: str) -> Answer | None:
    folded = " ".join(text.split()).casefold().rstrip(".").strip()
    return Answer("text", folded) if folded else None


def normalise_answer(
    text: str,
    kind: AnswerKind = "auto",
    *,
    extract: str | re.Pattern[str] | None = None,
    letters: str = OPTION_LETTERS,
) -> Answer | None:
    """``text``'s answer, normalised as ``kind``; None when there is none.

    Args:
        text: what the model wrote after the answer cue.
        kind: ``letter``, ``number``, ``text`` or ``auto`` (see the module docstring).
        extract: a regex applied first; its first group (or the match) is the answer. No
            match: None.
        letters: the valid option letters.
    """
    if extract is not None:
        match = re.search(extract, text)
        if match is None:
            return None
        text = match.group(1) if match.groups() else match.group(0)
    text = unbox(text).strip()
    if not text:
        return None
    if kind == "letter":
        return _letter(text, letters)
    if kind == "number":
        first = _FIRST_NUMBER.search(text)
        return _number(text) or (_number(first.group(0)) if first else None)
    if kind == "text":
        return _text(text)
    if len(text.strip("()[]*.: ")) == 1:
        found = _letter(text, letters)
        if found is not None:
            return found
    return _number(text) or _text(text)
