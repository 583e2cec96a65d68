"""The learning loop of one gateway: decision log, shadow answers, hot reload.

`LearningLoop` is built beside the cascade (`router.gateway.app.build_local`, the Serve
ingress) and handed to `ChatService`, which calls `record` for every answered request.
Recording is a dict build and a non-blocking queue put; the database, the features, the
shadow answers and the judge all run later, off the request path.

Example::

    loop = LearningLoop(config, cascade, metrics)
    loop.start()
    record = loop.record(creq, decision, key_id=..., answer_model=..., prompt_tokens=...,
                         completions=..., latency_s=..., stream=False)
    await loop.after_answer(record)        # shadow + judge, when sampled
    loop.close()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from router.cascade import Cascade, CascadeRequest, Decision
from router.config import ThinkgateConfig
from router.engines.base import Completion
from router.learning.artifacts import folder_version, tau_version
from router.learning.metrics import LearningMetrics
from router.learning.records import ActiveVersions, DecisionRecord
from router.learning.store import LearningStore, database_url
from router.learning.writer import DecisionLogWriter
from router.metrics import GatewayMetrics

log = logging.getLogger("thinkgate.learning")


def configured_versions(config: ThinkgateConfig) -> ActiveVersions:
    """Versions of what the config names (before any promotion takes over)."""
    if config.routing.scorer == "length_baseline":
        router = "length_baseline"
    else:
        from classifiers.difficulty import DEFAULT_ROUTER_PATH

        router = folder_version("router", config.routing.router_path or DEFAULT_ROUTER_PATH)
    if not config.budget.enabled:
        budget = "disabled"
    else:
        from classifiers.budget_predictor import DEFAULT_BUDGET_DIR

        budget = folder_version("budget", config.budget.predictor_path or DEFAULT_BUDGET_DIR)
    tau = config.escalation.tau
    return ActiveVersions(router=router, budget=budget, tau=tau_version(tau), tau_value=tau)


class LearningLoop:
    """Decision log + shadow labels + hot reload for one gateway process."""

    def __init__(
        self,
        config: ThinkgateConfig,
        cascade: Cascade,
        metrics: GatewayMetrics,
        *,
        store: LearningStore | None = None,
    ) -> None:
        self.config = config
        self.settings = config.learning
        self.cascade = cascade
        self.store = store if store is not None else LearningStore(database_url(self.settings))
        self.metrics = LearningMetrics(metrics.registry)
        self.versions = configured_versions(config)
        for kind in ("router", "budget", "tau"):
            self.metrics.set_active(kind, getattr(self.versions, kind), None)
        s = self.settings
        self.writer = DecisionLogWriter(
            self.store,
            self.prepare,
            self.metrics,
            queue_size=s.queue_size,
            batch_size=s.batch_size,
            flush_interval_s=s.flush_interval_s,
            retry_interval_s=s.retry_interval_s,
        )
        self.shadow: Any = None
        self.poller: Any = None

    # ----- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread, the version poller and the shadow sampler (no I/O)."""
        from router.learning.reload import VersionPoller
        from router.learning.shadow import ShadowSampler

        self.writer.start()
        self.shadow = ShadowSampler(self)
        self.poller = VersionPoller(self)
        self.poller.start()

    def close(self) -> None:
        """Write what is queued and stop the threads."""
        if self.poller is not None:
            self.poller.stop()
        self.writer.close()

    # ----- the request path ------------------------------------------------------------
    def record(
        self,
        request: CascadeRequest,
        decision: Decision,
        *,
        key_id: str,
        answer_model: str,
        prompt_tokens: int,
        completions: Sequence[Completion],
        latency_s: float,
        stream: bool,
    ) -> DecisionRecord:
        record = DecisionRecord.build(
            request,
            decision,
            key_id=key_id,
            created_at=time.time(),
            answer_model=answer_model,
            prompt_tokens=prompt_tokens,
            completions=completions,
            latency_s=latency_s,
            stream=stream,
            versions=self.versions,
        )
        if self.settings.enabled:
            self.writer.submit(record)
        return record

    async def after_answer(self, record: DecisionRecord) -> None:
        """Runs once the client has its answer: a shadow answer + judge, when sampled."""
        if self.shadow is not None:
            await self.shadow.maybe_shadow(record)

    # ----- the writer thread -----------------------------------------------------------
    def prepare(self, batch: Sequence[DecisionRecord]) -> list[Mapping[str, Any]]:
        """Rows for ``batch``: the router's features (and, for strong answers with a
        thinking budget, the budget predictor's) computed here, in the writer thread."""
        prompts = [r.prompt for r in batch]
        router_rows, fid = self._router_features(prompts)
        budget_index = [
            i
            for i, r in enumerate(batch)
            if r.decision.tier == "strong" and r.decision.thinking_budget
        ]
        budget_rows = self._budget_features([prompts[i] for i in budget_index])
        budget_of = dict(zip(budget_index, budget_rows, strict=True)) if budget_rows else {}
        return [
            r.to_row(
                store_text=self.settings.store_text,
                router_features=None if router_rows is None else router_rows[i],
                featurizer_id=fid,
                budget_features=budget_of.get(i),
            )
            for i, r in enumerate(batch)
        ]

    def _router_features(self, prompts: list[str]) -> tuple[Any, str | None]:
        scorer = self.cascade.scorer
        load = getattr(scorer, "load", None)
        if load is None:
            return None, None
        router = load()
        return router.features(prompts), str(router.featurizer_id)

    def _budget_features(self, prompts: list[str]) -> list[Any]:
        if not prompts or not self.config.budget.enabled:
            return []
        predictor = self.cascade.budget._load()
        return list(predictor.features(prompts))

    # ----- versions --------------------------------------------------------------------
    def set_versions(self, versions: ActiveVersions) -> None:
        old, self.versions = self.versions, versions
        for kind in ("router", "budget", "tau"):
            self.metrics.set_active(kind, getattr(versions, kind), getattr(old, kind))

    def status(self) -> dict[str, Any]:
        v = self.versions
        return {
            "active": {"router": v.router, "budget": v.budget, "tau": v.tau},
            "tau": v.tau_value,
            "threshold": self.cascade.policy.threshold,
            "store_text": self.settings.store_text,
            "shadow_rate": self.settings.shadow_rate,
        }
