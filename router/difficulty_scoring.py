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
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from router._exceptions import ConfigError
from router.config import RoutingConfig

if TYPE_CHECKING:
    from router.metrics import GatewayMetrics

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
        levels = np.linspace(0.0, 1.0, len(quantiles))
        return float(np.interp(1.0 - strong_share, levels, np.asarray(quantiles, dtype=float)))


def create_difficulty_scorer(config: RoutingConfig) -> DifficultyScorer:
    if config.scorer == "length_baseline":
        return LengthBaselineScorer()
    return LearnedScorer(config.router_path)


class ShareControl:
    """Keeps the strong share of ``auto`` requests at ``target`` on live traffic.

    The threshold starts where the artifact's score quantiles put it (``calibrated``) and
    then follows the ``1 - target`` quantile of the recent ``auto`` scores: the last
    ``window`` requests, none older than ``window_s`` seconds. It moves only once the
    window holds ``min_samples`` scores, at most ``max_step`` per request (how fast) and
    never more than ``max_shift`` from ``calibrated`` (how far). One object per gateway
    replica: each replica holds its own share. Thread-safe.

    Example (a stream whose scores shift upwards; the threshold follows)::

        >>> control = ShareControl(0.3, 0.5, window=100, min_samples=20, max_step=0.05)
        >>> for i in range(400):
        ...     _ = control.observe(0.6 + (i % 100) / 1000)   # scores 0.6 .. 0.699
        >>> round(control.threshold, 2)                        # their 70% quantile
        0.67
    """

    def __init__(
        self,
        target: float,
        calibrated: float,
        *,
        window: int = 200,
        window_s: float = 3600.0,
        min_samples: int = 50,
        max_step: float = 0.005,
        max_shift: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"target must be in [0, 1], got {target}")
        if not 0.0 <= calibrated <= 1.0:
            raise ValueError(f"calibrated must be in [0, 1], got {calibrated}")
        if window < 1 or not 1 <= min_samples <= window:
            raise ValueError(
                f"need window >= 1 and 1 <= min_samples <= window, got window={window}, "
                f"min_samples={min_samples}"
            )
        if window_s <= 0 or max_step <= 0 or max_shift < 0:
            raise ValueError(
                f"window_s and max_step must be > 0 and max_shift >= 0, got {window_s}, "
                f"{max_step}, {max_shift}"
            )
        self.target = target
        self.calibrated = calibrated
        self.window, self.window_s, self.min_samples = window, window_s, min_samples
        self.max_step, self.max_shift = max_step, max_shift
        self.low = max(0.0, calibrated - max_shift)
        self.high = min(1.0, calibrated + max_shift)
        self._clock = clock
        self._recent: deque[tuple[float, float]] = deque()
        self.threshold = calibrated

    def observe(self, score: float) -> float:
        """Add one ``auto`` score; returns the threshold to decide it (and the next) with."""
        now = self._clock()
        recent = self._recent
        recent.append((now, score))
        while len(recent) > self.window or now - recent[0][0] > self.window_s:
            recent.popleft()
        if len(recent) >= self.min_samples:
            values = np.sort(np.fromiter((s for _, s in recent), dtype=np.float64))
            n_strong = round(self.target * values.size)
            wanted = (
                float(np.nextafter(values[-1], np.inf))
                if n_strong == 0
                else float(values[values.size - n_strong])
            )
            step = min(self.max_step, max(-self.max_step, wanted - self.threshold))
            self.threshold = min(self.high, max(self.low, self.threshold + step))
        return self.threshold


class RoutingPolicy:
    """Threshold policy: ``p_strong >= threshold`` goes to the strong tier.

    With ``share_control`` (``routing.strong_share``, or the default share) the threshold
    follows recent traffic (:class:`ShareControl`); without, it is fixed. Either way the
    realised strong share of the last ``share_window`` router decisions is kept and, once
    :meth:`bind_metrics` is called, exported with the threshold in force.
    """

    def __init__(
        self,
        threshold: float,
        share_control: ShareControl | None = None,
        *,
        share_window: int = 200,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if share_window < 1:
            raise ValueError(f"share_window must be >= 1, got {share_window}")
        self._fixed = threshold
        self.share_control = share_control
        self._decisions: deque[bool] = deque(maxlen=share_window)
        self._lock = threading.Lock()
        self._metrics: GatewayMetrics | None = None

    @classmethod
    def from_config(cls, config: RoutingConfig, scorer: DifficultyScorer) -> RoutingPolicy:
        if config.threshold is not None:
            return cls(config.threshold, share_window=config.share_window)
        share = config.strong_share if config.strong_share is not None else DEFAULT_STRONG_SHARE
        calibrated = scorer.threshold_for_share(share)
        if not config.live_share:
            return cls(calibrated, share_window=config.share_window)
        control = ShareControl(
            share,
            calibrated,
            window=config.share_window,
            window_s=config.share_window_s,
            min_samples=config.share_min_samples,
            max_step=config.share_max_step,
            max_shift=config.share_max_shift,
        )
        return cls(calibrated, control, share_window=config.share_window)

    @property
    def threshold(self) -> float:
        """The threshold in force (live with share control)."""
        return self._fixed if self.share_control is None else self.share_control.threshold

    @property
    def realised_share(self) -> float | None:
        """Strong share of the last ``share_window`` router decisions (None before any)."""
        with self._lock:
            if not self._decisions:
                return None
            return sum(self._decisions) / len(self._decisions)

    def bind_metrics(self, metrics: GatewayMetrics) -> None:
        """Export the threshold in force and the realised share to ``metrics`` (now and on
        every decision)."""
        self._metrics = metrics
        metrics.threshold.set(self.threshold)

    def tier_for(self, p_strong: float) -> str:
        """The tier of one ``auto`` request; with share control its score first joins the
        window the threshold follows."""
        with self._lock:
            threshold = (
                self._fixed if self.share_control is None else self.share_control.observe(p_strong)
            )
            strong = p_strong >= threshold
            self._decisions.append(strong)
            share = sum(self._decisions) / len(self._decisions)
        if self._metrics is not None:
            self._metrics.threshold.set(threshold)
            self._metrics.strong_share_realised.set(share)
        return "strong" if strong else "small"


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
