"""The escalation threshold policy: escalate when the small model's uncertainty exceeds τ.

The scorer (`router.escalation.uncertainty`) says how unsure the small model is; this policy
decides. As in RouteLLM, the threshold is best set by calibration: `tau_for_rate` picks τ
so that a target share of answers on a calibration set is escalated
(``thinkgate calibrate-escalation``).

Served exactly as calibrated: `EscalationPolicy.may_escalate` is the one place that says
whether an answer may be escalated at all, and `sampling_as_served` the sampling settings the
cascade gives the small tier when escalation is possible; ``calibrate-escalation``,
``eval-escalation`` and ``train-selfref`` answer with those same settings and score the
whole completion, as the cascade does.

Example::

    policy = EscalationPolicy(config.escalation)
    if policy.may_escalate(mode="auto", tier="small", difficulty=p_strong, client_escalate=None):
        escalate = policy.should_escalate(u)

    tau = tau_for_rate([0.1, 0.4, 0.8, 0.9], rate=0.5)   # 0.6: escalates 0.8 and 0.9
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from router._exceptions import ConfigError
from router.config import EscalationConfig, TierConfig
from router.sampling import SamplingParams

ESCALATION_TOP_LOGPROBS = 5
"""Alternatives per answer token the cascade asks for when a scorer reads log-probabilities
(at least; more when the client asked for more)."""


class EscalationPolicy:
    """Decides escalation from an uncertainty in [0, 1]: escalate when ``u > tau``."""

    def __init__(self, config: EscalationConfig) -> None:
        self.config = config

    @property
    def tau(self) -> float:
        return self.config.tau

    def may_escalate(
        self, *, mode: str, tier: str, difficulty: float | None, client_escalate: bool | None
    ) -> bool:
        """Whether an answer may be escalated at all: escalation is on, the cascade chose
        (``mode`` auto), the small tier answered (not a fallback to it), the client did not
        send ``routing.escalate: false`` and the router score (if any) is at least
        ``band_low``."""
        if not self.config.enabled or mode != "auto" or tier != "small":
            return False
        if client_escalate is False:
            return False
        return difficulty is None or difficulty >= self.config.band_low

    def should_escalate(self, uncertainty: float) -> bool:
        """True when escalation is enabled and ``uncertainty > tau``."""
        return self.config.enabled and uncertainty > self.config.tau


def tau_for_rate(uncertainties: Sequence[float], rate: float) -> float:
    """τ such that ``u > τ`` holds for ``round(rate * n)`` of the calibration uncertainties.

    τ is the midpoint between the k-th and the (k+1)-th largest value (k the target count),
    so that new answers just above or below a calibration point fall on the same side as
    their neighbours. Ties can make the realised share smaller than the target (values
    that are equal cannot be split). ``rate = 0`` gives the largest value (nothing above
    it); ``rate = 1`` gives half the smallest value (τ is kept in [0, 1]).
    """
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"the escalation rate must be in [0, 1], got {rate}")
    values = sorted((float(u) for u in uncertainties), reverse=True)
    if not values:
        raise ConfigError("cannot calibrate τ on an empty set of uncertainties")
    if any(math.isnan(u) or not 0.0 <= u <= 1.0 for u in values):
        raise ConfigError("uncertainties must lie in [0, 1]")
    k = round(rate * len(values))
    if k == 0:
        return values[0]
    if k == len(values):
        return values[-1] / 2.0
    return (values[k - 1] + values[k]) / 2.0


def escalation_rate(uncertainties: Sequence[float], tau: float) -> float:
    """The share of ``uncertainties`` that ``u > tau`` escalates."""
    if not uncertainties:
        return 0.0
    return sum(1 for u in uncertainties if u > tau) / len(uncertainties)


def sampling_as_served(
    tier: TierConfig,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int | None = None,
    max_tokens: int | None = None,
    needs_logprobs: bool = True,
) -> SamplingParams:
    """The sampling settings the cascade gives the small ``tier`` for a client request with
    these values (the defaults are what a client that sends none gets): ``max_tokens``
    defaults to the tier's ``max_tokens_default``; log-probabilities with
    `ESCALATION_TOP_LOGPROBS` alternatives when the scorer reads them.

    Raises `ConfigError` for a thinking small tier: its answers get a thinking budget from
    the budget predictor, which the escalation commands do not reproduce."""
    if tier.thinking:
        raise ConfigError(
            "escalation is calibrated on a small tier without thinking; small.thinking is true"
        )
    return SamplingParams(
        max_tokens=max_tokens if max_tokens is not None else tier.max_tokens_default,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        logprobs=needs_logprobs,
        top_logprobs=ESCALATION_TOP_LOGPROBS if needs_logprobs else 0,
    )
