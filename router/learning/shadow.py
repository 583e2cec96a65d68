"""Shadow answers: a sample of requests is also answered by the tier that did not answer.

After the client has its answer (`LearningLoop.after_answer`), with probability
``learning.shadow_rate`` and at most ``learning.shadow_max_per_minute`` times a minute, the
other tier answers the same request in the background, with the same sampling settings
(and thinking budget) it would have had when serving. Both directions are sampled (small-
and strong-answered requests), so the labels do not just confirm the current router. A
shadow call is never charged to the client's limits (it does not go through the gateway's
rate limits or concurrency gate) and is skipped, not queued, when the other tier or the
judge is busy: client traffic always goes first. The two answers are then judged
(`router.learning.judge`) and one ``judge`` label is written.

Example::

    sampler = ShadowSampler(loop)
    await sampler.maybe_shadow(record)    # maybe: shadow call, judge, label
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from router.cascade import Decision
from router.learning.judge import Verdict, grade_pair, judge_pair

if TYPE_CHECKING:
    from router.learning.loop import LearningLoop
    from router.learning.records import DecisionRecord

log = logging.getLogger("thinkgate.learning")


def tier_busy(tier: Any) -> bool:
    """A tier's own view of being busy (`LocalTier.busy`, `ServeTier.busy`); a tier
    that cannot tell is taken as idle."""
    busy = getattr(tier, "busy", None)
    return bool(busy()) if callable(busy) else False


class ShadowSampler:
    def __init__(self, loop: LearningLoop, *, rng: random.Random | None = None) -> None:
        self.loop = loop
        self.rng = rng or random.Random()
        self._started: collections.deque[float] = collections.deque()
        self._warned = False

    def _rate_allows(self) -> bool:
        limit = self.loop.settings.shadow_max_per_minute
        now = time.monotonic()
        while self._started and now - self._started[0] > 60.0:
            self._started.popleft()
        if len(self._started) >= limit:
            return False
        self._started.append(now)
        return True

    async def maybe_shadow(self, record: DecisionRecord) -> None:
        settings = self.loop.settings
        request = record.request
        if settings.shadow_rate <= 0 or request is None or not record.completions:
            return
        if record.decision.route == "escalated" or self.rng.random() >= settings.shadow_rate:
            return
        other = "strong" if record.decision.tier == "small" else "small"
        metrics = self.loop.metrics
        tiers = self.loop.cascade.tiers
        judge = tiers[settings.judge]
        if tier_busy(tiers[other]) or tier_busy(judge):
            metrics.shadow_calls.labels(tier=other, outcome="skipped_busy").inc()
            return
        if not self._rate_allows():
            metrics.shadow_calls.labels(tier=other, outcome="skipped_rate").inc()
            return
        try:
            await self._shadow(record, other)
        except Exception as exc:  # a shadow never fails anything: count and go on
            metrics.shadow_calls.labels(tier=other, outcome="failed").inc()
            if not self._warned:
                log.warning("shadow answer failed (%s: %s)", type(exc).__name__, exc)
                self._warned = True

    async def _shadow(self, record: DecisionRecord, other: str) -> None:
        loop, settings = self.loop, self.loop.settings
        request = record.request
        assert request is not None  # checked by maybe_shadow
        cascade = loop.cascade
        decision = Decision(
            route="small" if other == "small" else "strong", reason="forced", tier=other
        )
        params = await cascade.params_for(other, request, decision, need_logprobs=False)
        params = dataclasses.replace(
            params, n=1, max_tokens=min(params.max_tokens, settings.shadow_max_tokens)
        )
        result = await cascade.tiers[other].generate(request.generation_request(params))
        loop.metrics.shadow_calls.labels(tier=other, outcome="answered").inc()
        tokens = result.prompt_tokens + result.completion_tokens
        loop.metrics.learning_tokens.labels(purpose="shadow", tier=other).inc(tokens)
        shadow_text = result.choices[0].text if result.choices else ""
        served = record.answer
        small, strong = (shadow_text, served) if other == "small" else (served, shadow_text)
        verdict = await self._judge(record, small, strong)
        if verdict is None:
            return
        store_text = settings.store_text
        row = {
            "request_id": record.request_id,
            "source": "judge",
            "created_at": time.time(),
            "key_id": record.key_id,
            "strong_better": verdict.strong_better,
            "small_ok": verdict.small_ok,
            "score": None,
            "judge_model": cascade.tiers[settings.judge].model_name,
            "judge_tokens": verdict.prompt_chars // 4,
            "shadow_tier": other,
            "shadow_tokens": tokens,
            "has_reference": False,
            "shadow_text": shadow_text if store_text else None,
        }
        await asyncio.to_thread(loop.store.upsert_label, row)
        loop.metrics.labels_written.labels(source="judge").inc()

    async def _judge(self, record: DecisionRecord, small: str, strong: str) -> Verdict | None:
        loop = self.loop
        judge = loop.cascade.tiers[loop.settings.judge]
        metrics = loop.metrics
        if tier_busy(judge):
            metrics.judge_calls.labels(outcome="skipped_busy").inc()
            return None
        question = record.prompt
        reference = await asyncio.to_thread(self._reference, record.request_id)
        try:
            if reference is not None:
                verdict = await grade_pair(judge, question, small, strong, reference)
            else:
                verdict = await judge_pair(judge, question, small, strong)
        except Exception:
            metrics.judge_calls.labels(outcome="failed").inc()
            raise
        metrics.judge_calls.labels(outcome="answered").inc(verdict.calls)
        metrics.learning_tokens.labels(purpose="judge", tier=loop.settings.judge).inc(
            verdict.prompt_chars // 4
        )
        return verdict

    def _reference(self, request_id: str) -> str | None:
        """A reference answer sent with feedback (kept only with ``store_text``)."""
        try:
            labels = self.loop.store.labels(request_id)
        except Exception:  # no reference known when the database is away
            return None
        for label in labels:
            if label.get("reference_text"):
                return str(label["reference_text"])
        return None
