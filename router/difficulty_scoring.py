"""Difficulty scoring: a score in [0, 1] saying how much a prompt needs the strong model.

The score is separate from the policy (RouteLLM's split): `RoutingPolicy` turns a score into
a tier with a threshold, set directly or calibrated to a target share of strong calls.

Two scorers:
- `LearnedScorer` — the trained difficulty router (``classifiers.difficulty``), the default.
- `LengthBaselineScorer` — a transparent baseline: longer prompts are taken as harder,
  ``score = min(1, words / saturation_words)``. Useful without the learned router.

Example::

    scorer = create_difficulty_scorer(config.routing)
    policy = RoutingPolicy.from_config(config.routing, scorer)
    [p] = scorer.score(["What is 2+2?"]);  policy.tier_for(p)   # "small"
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from router._exceptions import ConfigError
from router.config import RoutingConfig

DEFAULT_STRONG_SHARE = 0.3
"""With neither a threshold nor a share configured, calibrate to send 30% of typical traffic
to the strong tier (the learned router's scores are calibrated probabilities, not a 50/50
split)."""


class DifficultyScorer(Protocol):
    name: str

    def score(self, prompts: Sequence[str]) -> list[float]:
        """p_strong for each prompt, in [0, 1]."""
        ...

    def threshold_for_share(self, strong_share: float) -> float:
        """Threshold that sends ``strong_share`` of typical traffic to the strong tier."""
        ...


class LengthBaselineScorer:
    """Transparent baseline: the share of ``saturation_words`` words the prompt has."""

    name = "length_baseline"

    def __init__(self, saturation_words: int = 400) -> None:
        if saturation_words < 1:
            raise ValueError(f"saturation_words must be >= 1, got {saturation_words}")
        self.saturation_words = saturation_words

    def score(self, prompts: Sequence[str]) -> list[float]:
        return [min(1.0, len(p.split()) / self.saturation_words) for p in prompts]

    def threshold_for_share(self, strong_share: float) -> float:
        # Without a reference distribution, assume word counts spread evenly over the range.
        return 1.0 - strong_share


class LearnedScorer:
    """The trained difficulty router, loaded lazily and shared across threads."""

    name = "learned"

    def __init__(self, router_path: str | None = None) -> None:
        self._path = router_path
        self._router: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._router is None:
                from classifiers.difficulty import DifficultyRouter

                self._router = DifficultyRouter.load(self._path)
            return self._router

    def score(self, prompts: Sequence[str]) -> list[float]:
        router = self.load()
        return [float(x) for x in router.score(list(prompts))]

    def threshold_for_share(self, strong_share: float) -> float:
        router = self.load()
        quantiles = router.metadata.get("score_quantiles")
        if not quantiles:
            raise ConfigError(
                "routing.strong_share needs a router artifact with `score_quantiles` in its "
                "metadata; set routing.threshold instead or retrain the router"
            )
        import numpy as np

        levels = np.linspace(0.0, 1.0, len(quantiles))
        return float(np.interp(1.0 - strong_share, levels, np.asarray(quantiles, dtype=float)))


def create_difficulty_scorer(config: RoutingConfig) -> DifficultyScorer:
    if config.scorer == "length_baseline":
        return LengthBaselineScorer()
    return LearnedScorer(config.router_path)


class RoutingPolicy:
    """Threshold policy: ``p_strong >= threshold`` goes to the strong tier."""

    def __init__(self, threshold: float) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.threshold = threshold

    @classmethod
    def from_config(cls, config: RoutingConfig, scorer: DifficultyScorer) -> RoutingPolicy:
        if config.threshold is not None:
            return cls(config.threshold)
        share = config.strong_share if config.strong_share is not None else DEFAULT_STRONG_SHARE
        return cls(scorer.threshold_for_share(share))

    def tier_for(self, p_strong: float) -> str:
        return "strong" if p_strong >= self.threshold else "small"


class ScoreBatcher:
    """Scores concurrent requests together: a prompt arriving while a batch is being scored
    waits for the next batch; an idle batcher scores at once (no added latency)."""

    def __init__(self, scorer: DifficultyScorer, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.scorer = scorer
        self.max_batch = max_batch
        self._pending: list[tuple[str, asyncio.Future[float]]] = []
        self._running = False

    async def score(self, prompt: str) -> float:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pending.append((prompt, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    scores = await asyncio.to_thread(self.scorer.score, [p for p, _ in batch])
                except Exception as exc:  # every waiter gets the scorer's error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), value in zip(batch, scores, strict=True):
                    if not future.done():
                        future.set_result(value)
        finally:
            self._running = False
