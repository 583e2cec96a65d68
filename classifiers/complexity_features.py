"""Cheap cues of how much reasoning a prompt needs, beside the general text features.

:mod:`classifiers.text_features` describes the shape of a prompt on a log scale. A
reasoning budget also grows with how many quantities must be combined and how many
operations and steps the text describes, so this module counts those: numbers (distinct
and all), quantity words ("twice", "half", "percent"), operation words ("each", "per",
"remaining", "total"), sequence cues ("then", "after", "if"), clauses and sentences. They are
plain English cues, not a benchmark's template: on a prompt without maths they are
simply small.

Example::

    >>> from classifiers.complexity_features import COMPLEXITY_FEATURE_NAMES, complexity_features
    >>> x = complexity_features(["Tom has 3 apples and buys twice as many. How many now?"])
    >>> dict(zip(COMPLEXITY_FEATURE_NAMES, x[0].round(2)))["numbers"]
    np.float32(0.69)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

__all__ = ["COMPLEXITY_FEATURE_NAMES", "complexity_features"]

_NUMBER = re.compile(r"(?<![A-Za-z])\d+(?:[.,]\d+)*")
_FRACTION = re.compile(r"\b\d+\s*/\s*\d+\b")
_QUANTITY_WORD = re.compile(
    r"\b(?:twice|half|double|doubles|triple|thrice|third|quarter|fourth|fifth|tenth|dozen|"
    r"percent|percentage|times|fraction|one|two|three|four|five|six|seven|eight|nine|ten|"
    r"eleven|twelve|twenty|thirty|fifty|hundred|thousand|million)\b",
    re.IGNORECASE,
)
_OPERATION_WORD = re.compile(
    r"\b(?:each|per|every|more|less|fewer|remaining|remainder|left|total|altogether|"
    r"combined|sum|difference|product|average|ratio|rate|rest|increase|decrease|"
    r"discount|profit|interest|split|divide|divided|multiply|share|spend|spent|cost|costs|"
    r"earn|earns|pay|pays|paid|buy|buys|bought|sell|sells|sold|save|saves)\b",
    re.IGNORECASE,
)
_SEQUENCE_CUE = re.compile(
    r"\b(?:then|after|afterwards|before|later|next|finally|first|second|third|if|when|"
    r"while|until|but|however|also|instead|otherwise|again)\b",
    re.IGNORECASE,
)
_UNIT_WORD = re.compile(
    r"\b(?:hours?|minutes?|seconds?|days?|weeks?|months?|years?|miles?|meters?|km|feet|"
    r"inches?|pounds?|kg|grams?|liters?|gallons?|dollars?|cents?)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_WORD = re.compile(r"\S+")

COMPLEXITY_FEATURE_NAMES: tuple[str, ...] = (
    "numbers",
    "distinct_numbers",
    "fractions",
    "quantity_words",
    "operation_words",
    "sequence_cues",
    "unit_words",
    "clauses",
    "sentences",
    "words",
    "money_or_percent_signs",
    "quantities_per_sentence",
)
"""Names of the columns :func:`complexity_features` returns, in order (all ``log1p``)."""


def _features_of(text: str) -> list[float]:
    numbers = _NUMBER.findall(text)
    quantity_words = len(_QUANTITY_WORD.findall(text))
    sentences = max(1, len(_SENTENCE_END.findall(text)))
    counts = [
        len(numbers),
        len(set(numbers)),
        len(_FRACTION.findall(text)),
        quantity_words,
        len(_OPERATION_WORD.findall(text)),
        len(_SEQUENCE_CUE.findall(text)),
        len(_UNIT_WORD.findall(text)),
        text.count(",") + text.count(";") + sentences,
        sentences,
        len(_WORD.findall(text)),
        text.count("$") + text.count("%") + text.count("€") + text.count("£"),
        (len(numbers) + quantity_words) / sentences,
    ]
    return [math.log1p(value) for value in counts]


def complexity_features(texts: Sequence[str]) -> np.ndarray:
    """Return the complexity cues of each text as a float32 array ``(len(texts), F)``.

    ``F == len(COMPLEXITY_FEATURE_NAMES)``; every column is ``log1p`` of a count or rate.

    Raises:
        TypeError: when an element of ``texts`` is not a string.
    """
    from classifiers.text_features import feature_matrix

    return feature_matrix(texts, _features_of, len(COMPLEXITY_FEATURE_NAMES))
