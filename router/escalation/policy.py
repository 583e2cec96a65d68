"""The escalation threshold policy: escalate when the small model's uncertainty exceeds τ.

The scorer (`router.escalation.uncertainty`) says how unsure the small model is; this policy
decides. As in RouteLLM, the threshold is best set by calibration: `tau_for_rate` picks τ
so that a target share of answers on a calibration set is escalated
(``thinkgate calibrate-escalation``).

Example::

    policy = EscalationPolicy(config.escalation)
    if policy.tries_escalation(p_strong) and policy.should_escalate(u):
        ...  # call the strong model

    tau = tau_for_rate([0.1, 0.4, 0.8, 0.9], rate=0.5)   # 0.6: escalates 0.8 and 0.9
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from router._exceptions import ConfigError
from router.config import EscalationConfig


class EscalationPolicy:
    """Decides escalation from an uncertainty in [0, 1]: escalate when ``u > tau``."""

    def __init__(self, config: EscalationConfig) -> None:
        self.config = config

    @property
    def tau(self) -> float:
        return self.config.tau

    def tries_escalation(self, router_score: float) -> bool:
        """Whether an answer routed to the small model may be escalated at all: escalation
        is enabled and the router score is at least ``band_low``."""
        return self.config.enabled and router_score >= self.config.band_low

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
