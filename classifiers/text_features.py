"""Cheap, format-agnostic text features of a prompt.

They describe the *shape* of a prompt — how long it is, how much maths, code, or
structure it contains, whether it asks a question — and never depend on one benchmark's
prompt template or on a domain name. Counts are log-scaled (``log1p``) and ratios lie in
``[0, 1]``, so the features keep a sane range on short chat prompts as well as on long
documents.

Example::

    >>> from classifiers.text_features import FEATURE_NAMES, text_features
    >>> x = text_features(["What is 2 + 2?", "def f(x):\\n    return x"])
    >>> x.shape == (2, len(FEATURE_NAMES))
    True
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

__all__ = ["FEATURE_NAMES", "text_features"]

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_NUMBER = re.compile(r"(?<![A-Za-z])[-+]?\d+(?:[.,]\d+)*")
_MATH_OPERATOR = re.compile(r"(?<=[\w)\]}\s])[+\-*/^=<>×÷±≤≥≠√∑∫](?=[\w(\[{\s\\])")
_EQUATION = re.compile(r"[\w)\]}]\s*=\s*[-\w(\[{\\]")
_LATEX = re.compile(r"\\[A-Za-z]+|\$[^$\n]+\$")
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |return\b|for .+:|while .+:|if .+:|"
    r"#include|public |private |function\b|var |let |const |SELECT\b|print\()"
    r"|[;{}]\s*$",
    re.MULTILINE,
)
_CODE_FENCE = re.compile(r"```|~~~")
_QUESTION_WORD = re.compile(
    r"\b(?:what|why|how|which|who|whom|whose|when|where|whether|explain|describe|"
    r"compute|calculate|find|prove|show|determine|solve|evaluate|estimate)\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:not|except|never|least|false|incorrect)\b", re.IGNORECASE)
_REASONING_CUE = re.compile(
    r"\b(?:if|then|therefore|because|assume|suppose|given|each|total|remaining|"
    r"probability|ratio|percent|rate|average)\b",
    re.IGNORECASE,
)
_ENUMERATED_LINE = re.compile(r"^\s*(?:[A-Za-z]|\d{1,2}|[ivx]{1,4})[.)]\s+\S", re.MULTILINE)


def _log_count(value: float) -> float:
    return math.log1p(value)


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def _last_paragraph(text: str) -> str:
    stripped = text.strip()
    cut = stripped.rfind("\n\n")
    return stripped[cut + 2 :] if cut >= 0 else stripped


def _features_of(text: str) -> list[float]:
    n_chars = len(text)
    words = _WORD.findall(text)
    n_words = len(words)
    lines = [line for line in text.splitlines() if line.strip()]
    n_lines = len(lines)
    numbers = _NUMBER.findall(text)
    digits = sum(ch.isdigit() for ch in text)
    uppercase = sum(ch.isupper() for ch in text)
    non_ascii = sum(ord(ch) > 127 for ch in text)
    punctuation = sum((not ch.isalnum()) and (not ch.isspace()) for ch in text)
    mean_word = _ratio(sum(len(w) for w in words), n_words)
    long_words = sum(len(w) >= 9 for w in words)
    sentences = max(1, len(re.findall(r"[.!?](?:\s|$)", text)))
    tail = _last_paragraph(text)
    return [
        _log_count(n_chars),
        _log_count(n_words),
        _log_count(n_lines),
        _log_count(sentences),
        _ratio(n_words, sentences) / 50.0,
        mean_word / 10.0,
        _ratio(long_words, n_words),
        _log_count(len(numbers)),
        _ratio(digits, n_chars),
        _log_count(len(_MATH_OPERATOR.findall(text))),
        _log_count(len(_EQUATION.findall(text))),
        _log_count(len(_LATEX.findall(text))),
        _log_count(len(_CODE_LINE.findall(text))),
        1.0 if _CODE_FENCE.search(text) else 0.0,
        _log_count(text.count("?")),
        1.0 if tail.rstrip().endswith("?") else 0.0,
        _log_count(len(_QUESTION_WORD.findall(text))),
        _log_count(len(_NEGATION.findall(tail))),
        _log_count(len(_REASONING_CUE.findall(text))),
        _log_count(len(_ENUMERATED_LINE.findall(text))),
        _ratio(uppercase, n_chars),
        _ratio(punctuation, n_chars),
        _ratio(non_ascii, n_chars),
        _log_count(len(tail)),
    ]


FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "log_lines",
    "log_sentences",
    "words_per_sentence",
    "mean_word_length",
    "long_word_share",
    "log_numbers",
    "digit_share",
    "log_math_operators",
    "log_equations",
    "log_latex",
    "log_code_lines",
    "has_code_fence",
    "log_question_marks",
    "ends_with_question",
    "log_question_words",
    "log_negations_in_tail",
    "log_reasoning_cues",
    "log_enumerated_lines",
    "uppercase_share",
    "punctuation_share",
    "non_ascii_share",
    "log_tail_chars",
)
"""Names of the columns :func:`text_features` returns, in order."""


def text_features(texts: Sequence[str]) -> np.ndarray:
    """Return the cheap features of each text as a float32 array ``(len(texts), F)``.

    ``F == len(FEATURE_NAMES)``; column ``j`` is the feature ``FEATURE_NAMES[j]``.
    Pure Python and regular expressions: about 0.1 ms for a 500-token prompt.

    Raises:
        TypeError: when an element of ``texts`` is not a string.
    """
    rows: list[list[float]] = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be a str, got {type(text).__name__}")
        rows.append(_features_of(text))
    if not rows:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return np.asarray(rows, dtype=np.float32)
