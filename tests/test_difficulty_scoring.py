"""Routing policy: threshold vs target strong share, and batched scoring."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from router.config import RoutingConfig
from router.difficulty_scoring import (
    LearnedScorer,
    LengthBaselineScorer,
    RoutingPolicy,
    ScoreBatcher,
)


def test_strong_share_is_calibrated_from_the_shipped_router_quantiles() -> None:
    scorer = LearnedScorer()
    quantiles = scorer.load().metadata["score_quantiles"]
    assert len(quantiles) == 101 and quantiles == sorted(quantiles)
    policy = RoutingPolicy.from_config(RoutingConfig(strong_share=0.3), scorer)
    assert policy.threshold == pytest.approx(quantiles[70])
    # with neither a threshold nor a share, the default share (0.3) applies
    assert RoutingPolicy.from_config(RoutingConfig(), scorer).threshold == policy.threshold
    assert RoutingPolicy.from_config(RoutingConfig(threshold=0.9), scorer).threshold == 0.9


def test_length_baseline_is_transparent() -> None:
    scorer = LengthBaselineScorer(saturation_words=10)
    assert scorer.score(["a b", " ".join(["w"] * 30)]) == [0.2, 1.0]
    assert RoutingPolicy.from_config(RoutingConfig(strong_share=0.25), scorer).threshold == 0.75


class _CountingScorer(LengthBaselineScorer):
    def __init__(self) -> None:
        super().__init__(saturation_words=10)
        self.calls: list[int] = []

    def score(self, prompts: Sequence[str]) -> list[float]:
        self.calls.append(len(prompts))
        return super().score(prompts)


def test_concurrent_prompts_are_scored_together() -> None:
    scorer = _CountingScorer()

    async def run() -> list[float]:
        batcher = ScoreBatcher(scorer)
        return await asyncio.gather(*(batcher.score("w " * i) for i in range(1, 9)))

    scores = asyncio.run(run())
    assert scores == pytest.approx([i / 10 for i in range(1, 9)])
    assert sum(scorer.calls) == 8 and len(scorer.calls) < 8  # batched, none lost
