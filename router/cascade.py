"""The cascade: score the prompt, pick a tier, maybe escalate, set the thinking budget.

Flow for one request (``mode="auto"``)::

    p = scorer.score(prompt)                      # difficulty, p_strong
    p >= threshold            -> strong (with a thinking budget)
    band_low <= p < threshold -> small, then escalate to strong if uncertainty > tau
    p < band_low              -> small
    a tier unavailable        -> the other tier (fallback), when enabled

The cascade knows nothing of HTTP or Ray: tiers are `TierBackend`s (in-process or Serve
handles). Every decision is returned as a `Decision` and recorded in `GatewayMetrics`.

Example::

    cascade = Cascade(config, small=LocalTier(...), strong=LocalTier(...), metrics=m)
    outcome = await cascade.complete(CascadeRequest(messages, SamplingParams(max_tokens=32)))
    outcome.decision.route, outcome.result.choices[0].text
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from router._exceptions import ConfigError, TierUnavailableError
from router.budget import ThinkingBudget
from router.config import ThinkgateConfig
from router.difficulty_scoring import (
    DifficultyScorer,
    RoutingPolicy,
    ScoreBatcher,
    create_difficulty_scorer,
)
from router.engines.base import (
    ChatMessage,
    GenerationRequest,
    GenerationResult,
    StreamEvent,
    TokenLogprob,
)
from router.escalation.policy import ESCALATION_TOP_LOGPROBS, EscalationPolicy
from router.escalation.uncertainty import UncertaintyScorer, create_uncertainty_scorer
from router.metrics import GatewayMetrics
from router.sampling import SamplingParams
from router.thinking_probes import ProbeTrace, ThinkingProbes, ThinkingStop
from router.tiers import TierBackend

log = logging.getLogger("thinkgate.cascade")

Mode = Literal["auto", "small", "strong"]
ANSWER_RESERVE_TOKENS = 64
"""Tokens kept for the answer when a client's max_tokens also bounds thinking."""


@dataclass
class CascadeRequest:
    messages: Sequence[ChatMessage]
    params: SamplingParams
    """Client sampling settings; ``max_tokens`` is None-like when `max_tokens_given` is False."""
    mode: Mode = "auto"
    max_tokens_given: bool = True
    escalate: bool | None = None
    max_thinking_tokens: int | None = None
    reasoning_effort: str | None = None
    enable_thinking: bool | None = None
    request_id: str = ""
    continue_final_message: bool = False
    thinking_probe: bool | None = None
    """False: no answer probes while thinking (``budget.probe``) for this request."""

    def generation_request(self, params: SamplingParams) -> GenerationRequest:
        return GenerationRequest(
            self.messages, params, self.request_id, self.continue_final_message
        )

    def prompt_text(self) -> str:
        return "\n".join(m.content for m in self.messages if m.role != "assistant")


@dataclass
class Decision:
    route: Literal["small", "strong", "escalated"]
    reason: Literal["router", "forced", "fallback"]
    tier: str
    difficulty: float | None = None
    threshold: float | None = None
    uncertainty: float | None = None
    escalation_scorer: str | None = None
    thinking_budget: int | None = None
    fallback_from: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    thinking_stop: ThinkingStop | None = None
    """Why the strong tier's thinking ended (natural, budget, probe); None: it did not think."""
    probe_trace: ProbeTrace | None = None
    """The probes run while thinking, when probing applied."""

    @property
    def probes(self) -> int | None:
        return None if self.probe_trace is None else len(self.probe_trace.probes)


@dataclass
class CascadeOutcome:
    decision: Decision
    result: GenerationResult


class Cascade:
    """Routing, escalation and budgets over two tiers."""

    def __init__(
        self,
        config: ThinkgateConfig,
        *,
        small: TierBackend,
        strong: TierBackend,
        metrics: GatewayMetrics,
        scorer: DifficultyScorer | None = None,
        budget: ThinkingBudget | None = None,
    ) -> None:
        self.config = config
        self.tiers: dict[str, TierBackend] = {"small": small, "strong": strong}
        self.metrics = metrics
        self.scorer = scorer if scorer is not None else create_difficulty_scorer(config.routing)
        self.policy = RoutingPolicy.from_config(config.routing, self.scorer)
        self.batcher = ScoreBatcher(self.scorer)
        self.policy.bind_metrics(metrics)
        control = self.policy.share_control
        if control is not None:  # the target in force (also the default share)
            metrics.strong_share_target.set(control.target)
        elif config.routing.strong_share is not None:
            metrics.strong_share_target.set(config.routing.strong_share)
        metrics.precreate(scorer=config.escalation.scorer if config.escalation.enabled else None)
        self.budget = (
            budget
            if budget is not None
            else ThinkingBudget(config.budget, strong_model=config.strong.engine.model)
        )
        self._escalation: tuple[UncertaintyScorer, EscalationPolicy] | None = None
        self.probes = ThinkingProbes(config.budget.probe, config.strong.engine.thinking)

    # ----- set-up --------------------------------------------------------------------
    def load(self) -> None:
        """Load the router and budget predictor (blocking; call before serving)."""
        self.scorer.score(["warm-up"])
        self.budget.load()
        self._escalation = self._build_escalation()

    def _build_escalation(self) -> tuple[UncertaintyScorer, EscalationPolicy] | None:
        cfg = self.config.escalation
        if not cfg.enabled:
            return None
        if cfg.scorer == "selfref" and self.config.small.engine.adapter_path is None:
            raise ConfigError(
                "escalation.scorer is 'selfref' but small.engine.adapter_path is not set: "
                "train confidence tokens with `thinkgate train-selfref` and point it there"
            )
        return create_uncertainty_scorer(cfg.scorer), EscalationPolicy(cfg)

    # ----- decisions -----------------------------------------------------------------
    async def score(self, request: CascadeRequest) -> float:
        started = time.perf_counter()
        p = await self.batcher.score(request.prompt_text())
        elapsed = time.perf_counter() - started
        self.metrics.router_latency.observe(elapsed)
        self.metrics.difficulty.observe(p)
        return p

    async def decide(self, request: CascadeRequest) -> Decision:
        if request.mode != "auto":
            decision = Decision(route=request.mode, reason="forced", tier=request.mode)
        else:
            started = time.perf_counter()
            p = await self.score(request)
            tier = self.policy.tier_for(p)
            decision = Decision(
                route="strong" if tier == "strong" else "small",
                reason="router",
                tier=tier,
                difficulty=p,
                threshold=self.policy.threshold,
            )
            decision.timings["router_s"] = time.perf_counter() - started
        self.metrics.routing_decisions.labels(tier=decision.tier, reason=decision.reason).inc()
        return decision

    def _may_escalate(self, request: CascadeRequest, decision: Decision) -> bool:
        if self._escalation is None:
            return False
        _, policy = self._escalation
        return policy.may_escalate(
            mode=request.mode,
            tier=decision.tier,
            difficulty=decision.difficulty,
            client_escalate=request.escalate,
        )

    async def params_for(
        self, tier: str, request: CascadeRequest, decision: Decision, *, need_logprobs: bool
    ) -> SamplingParams:
        """Sampling settings for ``tier``: thinking mode and budget on the strong tier."""
        tier_cfg = self.config.small if tier == "small" else self.config.strong
        params = request.params
        max_tokens = params.max_tokens if request.max_tokens_given else None
        thinking = (
            tier_cfg.thinking
            and not request.continue_final_message
            and request.enable_thinking is not False
            and request.reasoning_effort != "none"
        )
        budget: int | None = None
        if thinking:
            # the predictor runs an encoder: keep it off the event loop
            budget = await asyncio.to_thread(
                self.budget.for_prompt,
                request.prompt_text(),
                max_thinking_tokens=request.max_thinking_tokens,
                reasoning_effort=request.reasoning_effort,
            )
            if max_tokens is None:
                max_tokens = min(budget + tier_cfg.max_tokens_default, tier_cfg.max_tokens_limit)
            else:
                reserve = min(ANSWER_RESERVE_TOKENS, max_tokens // 2)
                budget = max(0, min(budget, max_tokens - reserve))
        elif max_tokens is None:
            max_tokens = tier_cfg.max_tokens_default
        decision.thinking_budget = budget
        changes: dict[str, Any] = {
            "max_tokens": max_tokens,
            "thinking": thinking,
            "thinking_budget": budget,
        }
        if need_logprobs:
            changes["logprobs"] = True
            changes["top_logprobs"] = max(params.top_logprobs, ESCALATION_TOP_LOGPROBS)
        return dataclasses.replace(params, **changes)

    def engine_request(self, request: CascadeRequest, params: SamplingParams) -> GenerationRequest:
        """What a tier's engine receives: the budget instruction added when thinking."""
        engine_request = request.generation_request(params)
        if params.thinking and params.thinking_budget is not None:
            messages = self.budget.instruct(engine_request.messages, params.thinking_budget)
            engine_request = dataclasses.replace(engine_request, messages=messages)
        return engine_request

    # ----- calls -----------------------------------------------------------------------
    async def _call_tier(
        self, tier: str, request: CascadeRequest, decision: Decision, *, need_logprobs: bool
    ) -> GenerationResult:
        params = await self.params_for(tier, request, decision, need_logprobs=need_logprobs)
        started = time.perf_counter()
        engine_request = self.engine_request(request, params)
        decision.probe_trace = None
        if self._probed(tier, request, engine_request):
            result, trace = await self.probes.generate(self.tiers[tier], engine_request)
            decision.probe_trace = trace
        else:
            result = await self.tiers[tier].generate(engine_request)
        self.observe_result(tier, result, time.perf_counter() - started, decision)
        return result

    def _probed(
        self, tier: str, request: CascadeRequest, engine_request: GenerationRequest
    ) -> bool:
        """Whether the strong tier thinks under answer probes for this request."""
        return tier == "strong" and self.probes.applies(
            engine_request, opted_out=request.thinking_probe is False
        )

    def observe_result(
        self, tier: str, result: GenerationResult, elapsed: float, decision: Decision
    ) -> None:
        m = self.metrics
        m.tier_up.labels(tier=tier).set(1)
        m.tier_latency.labels(tier=tier).observe(elapsed)
        m.tokens.labels(tier=tier, kind="prompt").inc(result.prompt_tokens)
        m.tokens.labels(tier=tier, kind="completion").inc(result.completion_tokens)
        m.tokens.labels(tier=tier, kind="reasoning").inc(result.reasoning_tokens)
        if elapsed > 0 and result.completion_tokens:
            m.tokens_per_second.labels(tier=tier).observe(result.completion_tokens / elapsed)
        if decision.thinking_budget is not None and tier == "strong":
            m.budget_assigned.observe(decision.thinking_budget)
            for choice in result.choices:
                m.budget_used.observe(choice.reasoning_tokens)
                if choice.forced_close:
                    m.forced_closes.inc()
        self._observe_thinking(tier, result, decision)

    def _observe_thinking(self, tier: str, result: GenerationResult, decision: Decision) -> None:
        """How the strong tier's thinking ended, and what the probes did."""
        thought = [c for c in result.choices if c.reasoning is not None or c.reasoning_tokens]
        if tier != "strong" or not thought:
            decision.thinking_stop = None
            return
        m, trace = self.metrics, decision.probe_trace
        if trace is not None:
            decision.thinking_stop = trace.stop
            m.thinking_probes.inc(len(trace.probes))
            m.probe_tokens.inc(trace.probe_tokens)
            m.thinking_tokens_saved.inc(trace.saved_tokens)
        else:
            decision.thinking_stop = "budget" if any(c.forced_close for c in thought) else "natural"
        m.thinking_stops.labels(reason=decision.thinking_stop).inc()

    def _record_saving(self, result: GenerationResult) -> None:
        routing = self.config.routing
        self.metrics.strong_calls_avoided.inc()
        tokens = result.prompt_tokens + result.completion_tokens
        saved = (routing.strong_cost_per_1k_tokens - routing.small_cost_per_1k_tokens) * tokens
        self.metrics.cost_saved.inc(max(0.0, saved / 1000))

    async def _with_fallback(
        self, request: CascadeRequest, decision: Decision, *, need_logprobs: bool
    ) -> GenerationResult:
        try:
            return await self._call_tier(
                decision.tier, request, decision, need_logprobs=need_logprobs
            )
        except TierUnavailableError as exc:
            other = "strong" if decision.tier == "small" else "small"
            if request.mode != "auto" or not self.config.routing.fallback:
                raise
            log.warning("tier %s unavailable (%s); falling back to %s", decision.tier, exc, other)
            self._fall_back(decision, other)
            return await self._call_tier(other, request, decision, need_logprobs=False)

    def _fall_back(self, decision: Decision, other: str) -> None:
        self.metrics.tier_up.labels(tier=decision.tier).set(0)
        self.metrics.fallbacks.labels(from_tier=decision.tier, to_tier=other).inc()
        self.metrics.routing_decisions.labels(tier=other, reason="fallback").inc()
        decision.fallback_from = decision.tier
        decision.tier, decision.reason = other, "fallback"
        decision.route = "small" if other == "small" else "strong"

    async def complete(self, request: CascadeRequest) -> CascadeOutcome:
        decision = await self.decide(request)
        return await self._complete_decided(request, decision)

    async def _complete_decided(
        self, request: CascadeRequest, decision: Decision, *, keep_logprobs: bool = False
    ) -> CascadeOutcome:
        escalation = self._escalation if self._may_escalate(request, decision) else None
        need_logprobs = escalation is not None and escalation[0].needs_logprobs
        started = time.perf_counter()
        result = await self._with_fallback(request, decision, need_logprobs=need_logprobs)
        decision.timings["small_s"] = time.perf_counter() - started
        if escalation is not None and decision.tier == "small" and decision.reason != "fallback":
            scorer, policy = escalation
            result = await self._maybe_escalate(request, decision, result, scorer, policy)
        if decision.tier == "small" and request.mode == "auto":
            self._record_saving(result)
        if need_logprobs and not request.params.logprobs and not keep_logprobs:
            for choice in result.choices:
                choice.logprobs = None
        return CascadeOutcome(decision, result)

    async def _maybe_escalate(
        self,
        request: CascadeRequest,
        decision: Decision,
        result: GenerationResult,
        scorer: UncertaintyScorer,
        policy: EscalationPolicy,
    ) -> GenerationResult:
        started = time.perf_counter()
        small = self.tiers["small"]
        uncertainty = max(
            [
                float(await scorer.uncertainty(request.messages, c, small.next_token_logprobs))
                for c in result.choices
            ]
        )
        decision.uncertainty = uncertainty
        decision.escalation_scorer = scorer.name
        m = self.metrics
        m.escalation_checks.labels(scorer=scorer.name).inc()
        m.uncertainty.labels(scorer=scorer.name).observe(uncertainty)
        if not policy.should_escalate(uncertainty):
            return result
        m.escalations.labels(scorer=scorer.name).inc()
        m.routing_decisions.labels(tier="strong", reason="router").inc()
        decision.route, decision.tier = "escalated", "strong"
        small_elapsed = decision.timings.get("small_s", 0.0)
        try:
            escalated = await self._call_tier("strong", request, decision, need_logprobs=False)
        except TierUnavailableError:
            # The small answer stands; say so rather than failing the request.
            m.fallbacks.labels(from_tier="strong", to_tier="small").inc()
            decision.route, decision.tier, decision.reason = "small", "small", "fallback"
            decision.fallback_from = "strong"
            return result
        m.escalation_latency.observe(time.perf_counter() - started + small_elapsed)
        return escalated

    async def stream(self, request: CascadeRequest) -> tuple[Decision, AsyncIterator[StreamEvent]]:
        """Decide, then stream. When escalation is possible the small answer is generated
        whole first (it may be retracted), then replayed token by token."""
        decision = await self.decide(request)
        if self._may_escalate(request, decision):
            outcome = await self._complete_decided(request, decision, keep_logprobs=True)
            return decision, _replay(outcome.result, with_logprobs=request.params.logprobs)
        return decision, self._stream_tier(request, decision)

    async def _stream_tier(
        self, request: CascadeRequest, decision: Decision
    ) -> AsyncIterator[StreamEvent]:
        try:
            async for event in self._stream_one(request, decision):
                yield event
            return
        except _NothingStreamed as exc:
            other = "strong" if decision.tier == "small" else "small"
            if request.mode != "auto" or not self.config.routing.fallback:
                raise exc.error from None
            log.warning("tier %s unavailable (%s); streaming from %s", decision.tier, exc, other)
            self._fall_back(decision, other)
        async for event in self._stream_one(request, decision):
            yield event

    async def _stream_one(
        self, request: CascadeRequest, decision: Decision
    ) -> AsyncIterator[StreamEvent]:
        """Stream from ``decision.tier``; an unavailable tier before the first event raises
        `_NothingStreamed` so the caller can fall back (nothing was sent yet)."""
        tier = decision.tier
        params = await self.params_for(tier, request, decision, need_logprobs=False)
        started = time.perf_counter()
        first = True
        prompt_tokens = 0
        completions = []
        sent_any = False
        engine_request = self.engine_request(request, params)
        decision.probe_trace = None
        if self._probed(tier, request, engine_request):
            decision.probe_trace = ProbeTrace(cap=self.probes.cap(engine_request.params))
            events = self.probes.stream(self.tiers[tier], engine_request, decision.probe_trace)
        else:
            events = self.tiers[tier].stream(engine_request)
        try:
            async for event in events:
                if first and (event.content or event.reasoning):
                    self.metrics.ttft.labels(tier=tier).observe(time.perf_counter() - started)
                    first = False
                if event.prompt_tokens is not None:
                    prompt_tokens = event.prompt_tokens
                if event.completion is not None:
                    completions.append(event.completion)
                sent_any = True
                yield event
        except TierUnavailableError as exc:
            if sent_any:
                raise
            raise _NothingStreamed(exc) from exc
        result = GenerationResult(self.tiers[tier].model_name, prompt_tokens, completions)
        self.observe_result(tier, result, time.perf_counter() - started, decision)
        if tier == "small" and request.mode == "auto":
            self._record_saving(result)


class _NothingStreamed(Exception):
    def __init__(self, error: TierUnavailableError) -> None:
        super().__init__(str(error))
        self.error = error


async def _replay(result: GenerationResult, *, with_logprobs: bool) -> AsyncIterator[StreamEvent]:
    """A finished result as stream events: the reasoning, then the answer one token per event
    when its tokens are known (the escalation check asked for them), else in one piece."""
    for index, choice in enumerate(result.choices):
        tokens = list(choice.logprobs or ())
        if not with_logprobs:
            choice.logprobs = None
        first: int | None = result.prompt_tokens if index == 0 else None
        if choice.reasoning:
            yield StreamEvent(index=index, reasoning=choice.reasoning, prompt_tokens=first)
            first = None
        pieces: list[tuple[str, tuple[TokenLogprob, ...]]]
        if tokens and "".join(t.token for t in tokens) == choice.text:
            pieces = [(t.token, (t,) if with_logprobs else ()) for t in tokens]
        else:
            pieces = [(choice.text, tuple(tokens) if with_logprobs else ())]
        for n, (text, logprobs) in enumerate(pieces):
            last = n == len(pieces) - 1
            yield StreamEvent(
                index=index,
                content=text,
                logprobs=logprobs,
                finish_reason=choice.finish_reason if last else None,
                completion=choice if last else None,
                prompt_tokens=first,
            )
            first = None
