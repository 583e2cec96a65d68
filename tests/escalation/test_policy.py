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


def test_may_escalate_is_the_one_decision() -> None:
    policy = EscalationPolicy(EscalationConfig(band_low=0.3))

    def may(**changes: object) -> bool:
        asked: dict[str, object] = {
            "mode": "auto", "tier": "small", "difficulty": 0.3, "client_escalate": None
        }  # fmt: skip
        return policy.may_escalate(**{**asked, **changes})  # type: ignore[arg-type]

    assert may() and may(difficulty=None) and may(client_escalate=True)
    assert not may(difficulty=0.29)  # below the band
    assert not may(mode="small")  # the client forced a tier
    assert not may(tier="strong")  # routed (or fallen back) to the strong tier
    assert not may(client_escalate=False)  # routing.escalate: false
    off = EscalationPolicy(EscalationConfig(enabled=False))
    assert not off.may_escalate(mode="auto", tier="small", difficulty=1.0, client_escalate=True)


def test_sampling_as_served_is_what_a_client_without_settings_gets() -> None:
    from router.config import TierConfig
    from router.escalation.policy import sampling_as_served

    params = sampling_as_served(TierConfig(max_tokens_default=77))
    assert (params.max_tokens, params.temperature, params.top_p) == (77, 1.0, 1.0)
    assert params.logprobs and params.top_logprobs == 5
    with pytest.raises(ConfigError, match="thinking"):
        sampling_as_served(TierConfig(thinking=True))


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
