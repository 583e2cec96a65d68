"""Prometheus metrics of thinkgate (prefix ``thinkgate_``), on a registry per gateway.

Labels are low-cardinality and never user-supplied: ``route`` (small|strong|escalated),
``tier`` (small|strong), ``status`` (HTTP status class or code), ``scorer`` (escalation
scorer name), ``error_type`` (OpenAI error type), ``reason``.

Example::

    metrics = GatewayMetrics()
    metrics.requests.labels(route="small", status="200").inc()
    body = metrics.exposition()
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_ROUTER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25)
_TOKEN_BUCKETS = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
_SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))


class GatewayMetrics:
    """All metrics the gateway exports. One instance per app; its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "thinkgate_requests_total",
            "Requests answered, by route taken and HTTP status.",
            ["route", "status"],
            registry=r,
        )
        self.in_flight = Gauge(
            "thinkgate_requests_in_flight", "Requests being processed now.", registry=r
        )
        self.errors = Counter(
            "thinkgate_errors_total",
            "Errors returned, by OpenAI error type.",
            ["error_type"],
            registry=r,
        )
        self.routing_decisions = Counter(
            "thinkgate_routing_decisions_total",
            "Tier chosen for each request, by the reason (router, forced, fallback).",
            ["tier", "reason"],
            registry=r,
        )
        self.difficulty = Histogram(
            "thinkgate_difficulty_score",
            "Router difficulty score p_strong of auto requests.",
            buckets=_SCORE_BUCKETS,
            registry=r,
        )
        self.router_latency = Histogram(
            "thinkgate_router_latency_seconds",
            "Time to score a prompt with the difficulty router.",
            buckets=_ROUTER_BUCKETS,
            registry=r,
        )
        self.escalations = Counter(
            "thinkgate_escalations_total",
            "Small-model answers escalated to the strong tier, by scorer.",
            ["scorer"],
            registry=r,
        )
        self.escalation_checks = Counter(
            "thinkgate_escalation_checks_total",
            "Small-model answers checked for escalation, by scorer.",
            ["scorer"],
            registry=r,
        )
        self.uncertainty = Histogram(
            "thinkgate_uncertainty",
            "Uncertainty of small-model answers, by scorer.",
            ["scorer"],
            buckets=_SCORE_BUCKETS,
            registry=r,
        )
        self.escalation_latency = Histogram(
            "thinkgate_escalation_extra_seconds",
            "Latency added by escalation (the small attempt that was discarded).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.strong_calls_avoided = Counter(
            "thinkgate_strong_calls_avoided_total",
            "Auto requests answered by the small tier without a strong call.",
            registry=r,
        )
        self.cost_saved = Counter(
            "thinkgate_estimated_cost_saved_total",
            "Estimated cost saved (configured price per token x tokens not sent to strong).",
            registry=r,
        )
        self.tier_latency = Histogram(
            "thinkgate_tier_latency_seconds",
            "Latency of a tier call (whole generation).",
            ["tier"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "thinkgate_time_to_first_token_seconds",
            "Time to first streamed token, by tier.",
            ["tier"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "thinkgate_tokens_total",
            "Tokens processed, by tier and kind (prompt, completion, reasoning).",
            ["tier", "kind"],
            registry=r,
        )
        self.tokens_per_second = Histogram(
            "thinkgate_tier_tokens_per_second",
            "Completion tokens per second of a tier call.",
            ["tier"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
            registry=r,
        )
        self.budget_assigned = Histogram(
            "thinkgate_thinking_budget_assigned_tokens",
            "Thinking budget assigned to strong-tier requests.",
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.budget_used = Histogram(
            "thinkgate_thinking_tokens_used",
            "Thinking tokens actually spent by strong-tier requests.",
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.forced_closes = Counter(
            "thinkgate_budget_forced_closes_total",
            "Strong-tier answers whose thinking was cut at the budget.",
            registry=r,
        )
        self.thinking_probes = Counter(
            "thinkgate_thinking_probes_total",
            "Answer probes run while the strong tier thought (budget.probe).",
            registry=r,
        )
        self.probe_tokens = Counter(
            "thinkgate_thinking_probe_tokens_total",
            "Tokens the answer probes decoded (never sent to clients).",
            registry=r,
        )
        self.thinking_stops = Counter(
            "thinkgate_thinking_stops_total",
            "Strong-tier thinking sections by how they ended: natural, budget or probe.",
            ["reason"],
            registry=r,
        )
        self.thinking_tokens_saved = Counter(
            "thinkgate_thinking_tokens_saved_total",
            "Thinking tokens left under the budget (the cap) when the probes stopped early.",
            registry=r,
        )
        self.fallbacks = Counter(
            "thinkgate_fallbacks_total",
            "Requests answered by the other tier because one was unavailable.",
            ["from_tier", "to_tier"],
            registry=r,
        )
        self.tier_retries = Counter(
            "thinkgate_tier_retries_total",
            "Tier calls sent again because the Ray Serve replica serving them died.",
            ["tier"],
            registry=r,
        )
        self.tier_up = Gauge(
            "thinkgate_tier_up",
            "1 when the tier answered its last call or health check, else 0.",
            ["tier"],
            registry=r,
        )

        self.engine_kv_cache_usage = Gauge(
            "thinkgate_engine_kv_cache_usage",
            "Share of the tier engine's KV cache in use (vLLM; one replica, read at scrape).",
            ["tier"],
            registry=r,
        )
        self.engine_requests = Gauge(
            "thinkgate_engine_requests",
            "Requests in the tier engine's scheduler by state (running, waiting) (vLLM).",
            ["tier", "state"],
            registry=r,
        )
        self.engine_prefix_cache_hit_ratio = Gauge(
            "thinkgate_engine_prefix_cache_hit_ratio",
            "Prompt tokens served from the tier engine's prefix cache, as a share of the "
            "prompt tokens looked up since the engine started (vLLM).",
            ["tier"],
            registry=r,
        )

        self.queued = Gauge(
            "thinkgate_requests_queued",
            "Requests waiting for a gateway concurrency slot.",
            registry=r,
        )
        self.rejected = Counter(
            "thinkgate_requests_rejected_total",
            "Requests refused before reaching a tier, by reason (auth, rate_limit, overload).",
            ["reason"],
            registry=r,
        )
        self.threshold = Gauge(
            "thinkgate_routing_threshold",
            "Router threshold in force: p_strong at or above it goes to the strong tier "
            "(live: with routing.strong_share it follows recent auto scores).",
            registry=r,
        )
        self.strong_share_realised = Gauge(
            "thinkgate_strong_share_realised",
            "Share of the last routing.share_window router decisions (auto) that went strong.",
            registry=r,
        )
        self.strong_share_target = Gauge(
            "thinkgate_strong_share_target",
            "Configured target share of strong calls (absent when a threshold is set).",
            registry=r,
        )

    def precreate(self, *, scorer: str | None) -> None:
        """Create the known label sets at 0, so dashboards show 0 rather than no data."""
        for from_tier, to_tier in (("small", "strong"), ("strong", "small")):
            self.fallbacks.labels(from_tier=from_tier, to_tier=to_tier)
        for tier in ("small", "strong"):
            self.tier_retries.labels(tier=tier)
            for reason in ("router", "forced", "fallback"):
                self.routing_decisions.labels(tier=tier, reason=reason)
        for reason in ("auth", "rate_limit", "overload"):
            self.rejected.labels(reason=reason)
        for stop in ("natural", "budget", "probe"):
            self.thinking_stops.labels(reason=stop)
        if scorer is not None:
            self.escalations.labels(scorer=scorer)
            self.escalation_checks.labels(scorer=scorer)

    def set_engine_stats(self, tier: str, stats: Mapping[str, float]) -> None:
        """Mirror one tier's engine state (`router.tiers.TierBackend.engine_stats`)."""
        if not stats:
            return
        self.engine_kv_cache_usage.labels(tier=tier).set(stats.get("kv_cache_usage", 0.0))
        for state in ("running", "waiting"):
            value = stats.get(f"requests_{state}", 0.0)
            self.engine_requests.labels(tier=tier, state=state).set(value)
        queries = stats.get("prefix_cache_queries", 0.0)
        hits = stats.get("prefix_cache_hits", 0.0)
        self.engine_prefix_cache_hit_ratio.labels(tier=tier).set(hits / queries if queries else 0.0)

    def exposition(self) -> bytes:
        """The text exposition format of this registry."""
        return generate_latest(self.registry)
