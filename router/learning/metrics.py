"""Prometheus metrics of the learning loop, on the gateway's registry.

Example::

    learning = LearningMetrics(gateway_metrics.registry)
    learning.records_dropped.labels(reason="queue_full").inc()
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

DROP_REASONS = ("queue_full", "database_error", "bad_record")


class LearningMetrics:
    """Decision log, labels, shadow/judge calls and active versions."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.records_written = Counter(
            "thinkgate_learning_records_written_total",
            "Decision records committed to the learning database.",
            registry=r,
        )
        self.records_dropped = Counter(
            "thinkgate_learning_records_dropped_total",
            "Decision records lost, by reason (queue_full, database_error, bad_record).",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "thinkgate_learning_queue_depth",
            "Decision records waiting to be written.",
            registry=r,
        )
        self.labels_written = Counter(
            "thinkgate_learning_labels_written_total",
            "Labels written, by source (judge, feedback).",
            ["source"],
            registry=r,
        )
        self.shadow_calls = Counter(
            "thinkgate_learning_shadow_calls_total",
            "Shadow answers, by the tier asked and outcome (answered, skipped_busy, "
            "skipped_rate, expired, failed).",
            ["tier", "outcome"],
            registry=r,
        )
        self.judge_calls = Counter(
            "thinkgate_learning_judge_calls_total",
            "Judge calls, by outcome (answered, skipped_busy, failed).",
            ["outcome"],
            registry=r,
        )
        self.learning_tokens = Counter(
            "thinkgate_learning_tokens_total",
            "Tokens spent on learning, by purpose (shadow: prompt + completion; judge: "
            "prompt characters / 4) and tier.",
            ["purpose", "tier"],
            registry=r,
        )
        self.active_version = Gauge(
            "thinkgate_learning_active_version_info",
            "1 for the version of each kind (router, budget, tau) this gateway serves with.",
            ["kind", "version"],
            registry=r,
        )
        self.reloads = Counter(
            "thinkgate_learning_reloads_total",
            "Hot reloads of a promoted version, by kind and outcome (ok, failed).",
            ["kind", "outcome"],
            registry=r,
        )
        self.labelled_records = Gauge(
            "thinkgate_learning_labelled_records",
            "Requests with a label (judge or feedback) in the learning database.",
            registry=r,
        )
        self.live_apgr = Gauge(
            "thinkgate_learning_live_apgr",
            "APGR of the router in force on the held-out judge-labelled records (NaN until "
            "there are enough, with a quality gap).",
            registry=r,
        )
        self.live_apgr.set(float("nan"))
        for reason in DROP_REASONS:
            self.records_dropped.labels(reason=reason)
        for source in ("judge", "feedback"):
            self.labels_written.labels(source=source)
        for tier in ("small", "strong"):
            for outcome in ("answered", "skipped_busy", "skipped_rate", "expired", "failed"):
                self.shadow_calls.labels(tier=tier, outcome=outcome)
        for outcome in ("answered", "skipped_busy", "failed"):
            self.judge_calls.labels(outcome=outcome)
        for tier in ("small", "strong"):
            for purpose in ("shadow", "judge"):
                self.learning_tokens.labels(purpose=purpose, tier=tier)
        for kind in ("router", "budget", "tau"):
            for outcome in ("ok", "failed"):
                self.reloads.labels(kind=kind, outcome=outcome)

    def set_active(self, kind: str, version: str, previous: str | None) -> None:
        if previous is not None and previous != version:
            self.active_version.remove(kind, previous)
        self.active_version.labels(kind=kind, version=version).set(1)
