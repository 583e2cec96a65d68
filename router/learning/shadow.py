"""Shadow answers: a sample of requests is also answered by the tier that did not answer.

After the client has its answer (`LearningLoop.after_answer`), with probability
``learning.shadow_rate`` and at most ``learning.shadow_max_per_minute`` times a minute, the
other tier answers the same request in the background, with the same sampling settings
(and thinking budget) it would have had when serving. Both directions are sampled (small-
and strong-answered requests), so the labels do not just confirm the current router. A
shadow call is never charged to the client's limits (it does not go through the gateway's
rate limits or concurrency gate), and client traffic always goes first:

- vllm tiers schedule by priority: a shadow answer is sent at `BACKGROUND_PRIORITY`, so vLLM
  runs it on the capacity client requests leave (a client request is scheduled before it);
  it is bounded by count (``shadow_max_in_flight`` at once, ``shadow_max_per_minute``) and
  by age (given up after ``shadow_max_age_s``: outcome ``expired``). The judge's next-token
  reads are one prefill each and are not skipped either.
- other engines cannot put client requests first, so there a shadow or judge call is
  skipped, not queued, when the tier is busy (``skipped_busy``).

The two answers are then judged (`router.learning.judge`) and one ``judge`` label is
written.

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
from router.engines.base import BACKGROUND_PRIORITY
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
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Shadow answers (with their judge calls) running now."""
        return self._in_flight

    def _prioritised(self, tier: str) -> bool:
        """Whether ``tier`` schedules client requests before background ones (vLLM)."""
        config = self.loop.cascade.config
        return (config.small if tier == "small" else config.strong).engine.kind == "vllm"

    def _busy(self, tier: str) -> bool:
        if self._prioritised(tier):
            return self._in_flight >= self.loop.settings.shadow_max_in_flight
        return tier_busy(self.loop.cascade.tiers[tier])

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
        if self._busy(other) or self._busy(settings.judge):
            metrics.shadow_calls.labels(tier=other, outcome="skipped_busy").inc()
            return
        if not self._rate_allows():
            metrics.shadow_calls.labels(tier=other, outcome="skipped_rate").inc()
            return
        self._in_flight += 1
        try:
            await self._shadow(record, other)
        except TimeoutError:
            metrics.shadow_calls.labels(tier=other, outcome="expired").inc()
        except Exception as exc:  # a shadow never fails anything: count and go on
            metrics.shadow_calls.labels(tier=other, outcome="failed").inc()
            if not self._warned:
                log.warning("shadow answer failed (%s: %s)", type(exc).__name__, exc)
                self._warned = True
        finally:
            self._in_flight -= 1

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
        sent = request.generation_request(params)
        if self._prioritised(other):  # behind client requests, for at most shadow_max_age_s
            sent = dataclasses.replace(sent, priority=BACKGROUND_PRIORITY)
            result = await asyncio.wait_for(
                cascade.tiers[other].generate(sent), settings.shadow_max_age_s
            )
        else:
            result = await cascade.tiers[other].generate(sent)
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
        if not self._prioritised(loop.settings.judge) and tier_busy(judge):
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
