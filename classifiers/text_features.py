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
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["FEATURE_NAMES", "text_features"]

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_EQUATION = re.compile(r"[\w)\]}]\s*=\s*[-\w(\[{\\]")
_LATEX = re.compile(r"\\[A-Za-z]+|\$[^$\n]+\$")
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |return\b|for .+:|while .+:|if .+:|"
    r"#include|public |private |function\b|var |let |const |SELECT\b|print\()"
    r"|[;{}]\s*$",
    re.MULTILINE,
)
_CODE_FENCE = re.compile(r"```|~~~")
_ENUMERATED_LINE = re.compile(r"^\s*(?:[A-Za-z]|\d{1,2}|[ivx]{1,4})[.)]\s+\S", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")

_QUESTION_WORDS = frozenset(
    [
        "what",
        "why",
        "how",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "whether",
        "explain",
        "describe",
        "compute",
        "calculate",
        "find",
        "prove",
        "show",
        "determine",
        "solve",
        "evaluate",
        "estimate",
    ]
)
_NEGATIONS = frozenset(["not", "except", "never", "least", "false", "incorrect"])
_REASONING_CUES = frozenset(
    [
        "if",
        "then",
        "therefore",
        "because",
        "assume",
        "suppose",
        "given",
        "each",
        "total",
        "remaining",
        "probability",
        "ratio",
        "percent",
        "rate",
        "average",
    ]
)

# Character classes by code point (ASCII), looked up with numpy instead of a Python loop.
_ASCII = np.arange(128)
_IS_DIGIT = (_ASCII >= 48) & (_ASCII <= 57)
_IS_UPPER = (_ASCII >= 65) & (_ASCII <= 90)
_IS_PUNCT = np.isin(_ASCII, [ord(c) for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"])
_IS_OPERATOR = np.isin(_ASCII, [ord(c) for c in "+*/^=<>"])
_UNICODE_OPERATORS = "×÷±≤≥≠√∑∫∂∞≈∈"

# Regular expressions look at most this many characters (head and tail halves) and
# scale their counts up; past it a prompt is "long" for every feature anyway.
_SAMPLE_CHARS = 8000


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
    if n_chars > _SAMPLE_CHARS:
        half = _SAMPLE_CHARS // 2
        sample = text[:half] + "\n" + text[-half:]
    else:
        sample = text
    scale = n_chars / len(sample) if sample else 1.0
    codes = np.frombuffer(sample.encode("utf-32-le"), dtype=np.uint32)
    ascii_codes = codes[codes < 128]
    words = _WORD.findall(sample)
    lowered = [w.lower() for w in words]
    n_words = len(words)
    tail = _last_paragraph(sample)
    tail_words = [w.lower() for w in _WORD.findall(tail[-2000:])]
    n_lines = sum(1 for line in sample.splitlines() if line.strip())
    sentences = max(1.0, len(_SENTENCE_END.findall(sample)) * scale)
    n_sample = max(1, len(sample))
    operators = int(_IS_OPERATOR[ascii_codes].sum()) + sum(
        sample.count(op) for op in _UNICODE_OPERATORS
    )
    operators += sample.count(" - ")
    return [
        _log_count(n_chars),
        _log_count(n_words * scale),
        _log_count(n_lines * scale),
        _log_count(sentences),
        _ratio(n_words * scale, sentences) / 50.0,
        _ratio(sum(len(w) for w in words), n_words) / 10.0,
        _ratio(sum(len(w) >= 9 for w in words), n_words),
        _log_count(len(_NUMBER.findall(sample)) * scale),
        float(_IS_DIGIT[ascii_codes].sum()) / n_sample,
        _log_count(operators * scale),
        _log_count(len(_EQUATION.findall(sample)) * scale),
        _log_count(len(_LATEX.findall(sample)) * scale),
        _log_count(len(_CODE_LINE.findall(sample)) * scale),
        1.0 if _CODE_FENCE.search(sample) else 0.0,
        _log_count(sample.count("?") * scale),
        1.0 if tail.rstrip().endswith("?") else 0.0,
        _log_count(sum(w in _QUESTION_WORDS for w in lowered) * scale),
        _log_count(sum(w in _NEGATIONS for w in tail_words)),
        _log_count(sum(w in _REASONING_CUES for w in lowered) * scale),
        _log_count(len(_ENUMERATED_LINE.findall(sample)) * scale),
        float(_IS_UPPER[ascii_codes].sum()) / n_sample,
        float(_IS_PUNCT[ascii_codes].sum()) / n_sample,
        float(codes.size - ascii_codes.size) / n_sample,
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
    return feature_matrix(texts, _features_of, len(FEATURE_NAMES))


def feature_matrix(
    texts: Sequence[str], features_of: Callable[[str], list[float]], width: int
) -> np.ndarray:
    """``features_of`` applied to each text, stacked as float32 ``(len(texts), width)``.

    Raises:
        TypeError: when an element of ``texts`` is not a string.
    """
    rows: list[list[float]] = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be a str, got {type(text).__name__}")
        rows.append(features_of(text))
    if not rows:
        return np.zeros((0, width), dtype=np.float32)
    return np.asarray(rows, dtype=np.float32)
