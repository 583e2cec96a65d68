"""The stop rule for thinking probes: stop once the last answers have settled.

Every so many thinking tokens a probe asks the model for its answer so far (the thinking,
then the end-of-thinking marker and an answer cue, a few greedy tokens). Thinking stops
when the last ``agree`` probes gave the same normalised answer
(:mod:`classifiers.answer_normalisation`), each with ``confidence >= min_confidence`` and,
where the answer space is known (option letters), ``mass >= min_mass``: the valid answers'
share of the next-token distribution, low while the model is not ready to answer.

The same :class:`ProbeRule` decides in serving (``router.thinking_probes``) and in the
evaluation on sweep files (:mod:`classifiers.budget_probes`); its defaults are the shipped
``budget.probe`` settings, chosen by cross-validation grouped by question on the MMLU-Pro
probe trajectories (README, "Thinking probes").

Example::

    >>> from classifiers.budget_probe_rule import Probe, ProbeRule
    >>> from classifiers.answer_normalisation import Answer
    >>> rule = ProbeRule(agree=2, min_confidence=0.9, min_mass=0.5)
    >>> b = Answer("letter", "B")
    >>> rule.settled([Probe(b, 0.95, 0.8), Probe(b, 0.99, None)])
    True
    >>> rule.settled([Probe(b, 0.95, 0.3), Probe(b, 0.99, 0.9)])    # first not ready
    False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from classifiers.answer_normalisation import Answer

__all__ = [
    "DEFAULT_AGREE",
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_MIN_MASS",
    "DEFAULT_PROBE_TOKENS",
    "Probe",
    "ProbeRule",
]

DEFAULT_AGREE = 1
"""Shipped ``budget.probe.agree`` (see the README's cross-validation)."""
DEFAULT_MIN_CONFIDENCE = 0.99
"""Shipped ``budget.probe.min_confidence``."""
DEFAULT_MIN_MASS = 0.1
"""Shipped ``budget.probe.min_mass``."""
DEFAULT_PROBE_TOKENS = 16
"""Tokens one probe is charged in the evaluation: end marker, cue and the decoded answer."""


class Probe(NamedTuple):
    """One probe's result."""

    answer: Answer | None
    """The normalised answer; None when the probe's text held none."""
    confidence: float
    """The answer's probability (share among valid answers when those are known)."""
    mass: float | None
    """The valid answers' share of the next-token distribution; None when unknown."""


@dataclass(frozen=True)
class ProbeRule:
    """When the probes so far say thinking may stop.

    Raises:
        ValueError: on ``agree < 1``, a threshold outside ``[0, 1]`` or negative tokens.
    """

    agree: int = DEFAULT_AGREE
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    min_mass: float = DEFAULT_MIN_MASS
    probe_tokens: int = DEFAULT_PROBE_TOKENS

    def __post_init__(self) -> None:
        if self.agree < 1:
            raise ValueError(f"agree must be >= 1, got {self.agree}")
        for name in ("min_confidence", "min_mass"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.probe_tokens < 0:
            raise ValueError(f"probe_tokens must be >= 0, got {self.probe_tokens}")

    def ready(self, probe: Probe) -> bool:
        """Whether one probe is confident enough to count."""
        if probe.answer is None or probe.confidence < self.min_confidence:
            return False
        return probe.mass is None or probe.mass != probe.mass or probe.mass >= self.min_mass

    def settled(self, probes: Sequence[Probe]) -> bool:
        """Whether the last ``agree`` probes are ready and equal (the stop signal)."""
        if len(probes) < self.agree:
            return False
        last = probes[-self.agree :]
        first = last[0].answer
        return all(self.ready(p) and p.answer == first for p in last)
