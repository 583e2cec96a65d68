"""Live share control: the threshold follows the running quantile of recent `auto` scores
(`router.difficulty_scoring.ShareControl`), bounded in pace and reach; a fixed threshold
stays fixed; the realised share and the threshold in force are exported."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from router.config import RoutingConfig
from router.difficulty_scoring import LengthBaselineScorer, RoutingPolicy, ShareControl
from router.metrics import GatewayMetrics


def _strong_share(policy: RoutingPolicy, scores: np.ndarray) -> float:
    return float(np.mean([policy.tier_for(float(s)) == "strong" for s in scores]))


def test_live_threshold_converges_on_a_shifted_score_stream() -> None:
    rng = np.random.default_rng(0)
    control = ShareControl(0.3, 0.5, window=200, min_samples=50, max_step=0.01, max_shift=0.45)
    policy = RoutingPolicy(0.5, control, share_window=200)
    low = rng.beta(2, 8, size=2000)  # mean 0.2: a fixed 0.5 sends ~3% strong
    high = rng.beta(8, 2, size=2000)  # mean 0.8: a fixed 0.5 sends ~99% strong
    for phase in (low, high, low):
        first, settled = phase[:400], phase[400:]
        _strong_share(policy, first)  # the window refills with this phase's scores
        assert _strong_share(policy, settled) == pytest.approx(0.3, abs=0.04)
        assert control.threshold == pytest.approx(np.quantile(settled, 0.7), abs=0.03)
    assert policy.realised_share == pytest.approx(0.3, abs=0.07)
    fixed = RoutingPolicy(0.5)
    assert _strong_share(fixed, low) < 0.1 and _strong_share(fixed, high) > 0.9
    assert fixed.threshold == 0.5


def test_the_threshold_moves_at_most_max_step_per_request_and_max_shift_in_all() -> None:
    control = ShareControl(0.3, 0.5, window=20, min_samples=10, max_step=0.01, max_shift=0.1)
    seen = [control.observe(0.99) for _ in range(9)]
    assert seen == [0.5] * 9  # fewer than min_samples scores: the threshold holds
    path = [control.observe(0.99) for _ in range(30)]
    assert np.all(np.diff([0.5, *path]) <= 0.01 + 1e-12)
    assert max(path) == pytest.approx(0.6)  # calibrated + max_shift, not 0.99


def test_scores_older_than_the_time_bound_leave_the_window() -> None:
    now = [0.0]
    control = ShareControl(
        0.5, 0.5, window=100, window_s=10.0, min_samples=5, max_step=1.0, clock=lambda: now[0]
    )
    for _ in range(50):
        control.observe(0.9)
    now[0] = 100.0  # an hour of silence: the old scores no longer count
    for _ in range(4):
        control.observe(0.2)
    assert control.threshold == pytest.approx(0.8)  # 4 < min_samples: held where it was
    control.observe(0.2)
    assert control.threshold == pytest.approx(0.2)


def test_config_picks_the_policy_and_metrics_follow_it() -> None:
    scorer = LengthBaselineScorer(saturation_words=10)
    fixed = RoutingPolicy.from_config(RoutingConfig(threshold=0.4), scorer)
    assert fixed.share_control is None
    held = RoutingPolicy.from_config(RoutingConfig(strong_share=0.3, live_share=False), scorer)
    assert held.share_control is None and held.threshold == pytest.approx(0.7)
    config = RoutingConfig(strong_share=0.3, share_window=20, share_min_samples=10)
    live = RoutingPolicy.from_config(config, scorer)
    assert live.share_control is not None and live.share_control.window == 20
    metrics = GatewayMetrics()
    live.bind_metrics(metrics)
    for _ in range(50):
        live.tier_for(0.9)
    threshold = metrics.registry.get_sample_value("thinkgate_routing_threshold")
    assert threshold == pytest.approx(live.threshold) and threshold > 0.7
    share = metrics.registry.get_sample_value("thinkgate_strong_share_realised")
    assert share == pytest.approx(live.realised_share)
    with pytest.raises(ValidationError, match="share_min_samples"):
        RoutingConfig(strong_share=0.3, share_window=10, share_min_samples=20)
