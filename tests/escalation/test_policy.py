"""Escalation threshold policy and calibration to a target escalation rate."""

from __future__ import annotations

import pytest

from router._exceptions import ConfigError
from router.config import EscalationConfig
from router.escalation import EscalationPolicy, escalation_rate, tau_for_rate


def test_should_escalate_strictly_above_tau_and_only_when_enabled() -> None:
    policy = EscalationPolicy(EscalationConfig(tau=0.5))
    assert policy.should_escalate(0.51)
    assert not policy.should_escalate(0.5)
    assert not EscalationPolicy(EscalationConfig(tau=0.5, enabled=False)).should_escalate(0.9)


def test_tries_escalation_from_band_low() -> None:
    policy = EscalationPolicy(EscalationConfig(band_low=0.3))
    assert policy.tries_escalation(0.3)
    assert not policy.tries_escalation(0.29)


def test_tau_for_rate_is_midpoint_between_kth_and_next_largest() -> None:
    values = [0.1, 0.4, 0.8, 0.9]
    assert tau_for_rate(values, 0.5) == pytest.approx(0.6)
    assert escalation_rate(values, 0.6) == 0.5
    assert tau_for_rate(values, 0.25) == pytest.approx(0.85)


def test_tau_for_rate_extremes() -> None:
    values = [0.2, 0.4, 0.6]
    assert tau_for_rate(values, 0.0) == 0.6
    assert escalation_rate(values, tau_for_rate(values, 0.0)) == 0.0
    assert tau_for_rate(values, 1.0) == pytest.approx(0.1)
    assert escalation_rate(values, tau_for_rate(values, 1.0)) == 1.0


def test_tau_for_rate_hits_target_on_many_values() -> None:
    values = [i / 100 for i in range(100)]
    for rate in (0.05, 0.2, 0.5, 0.9):
        assert escalation_rate(values, tau_for_rate(values, rate)) == pytest.approx(rate)


def test_tau_for_rate_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="rate must be in"):
        tau_for_rate([0.5], 1.5)
    with pytest.raises(ConfigError, match="empty"):
        tau_for_rate([], 0.5)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        tau_for_rate([1.5], 0.5)
