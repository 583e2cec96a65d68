"""Hot reload: every gateway replica polls the active versions and swaps them in.

`VersionPoller` reads the ``active`` table every ``learning.poll_interval_s`` in its own
thread. When a version differs from what this gateway serves, the artifact is read from
the database (a tar of the folder; a tau is just a number), unpacked under the cache
directory, loaded (in the thread, off the event loop) and then swapped into the cascade
with plain attribute assignments: requests already scoring finish with the old object,
the next ones use the new one, so no request fails during the switch. A version that
cannot be loaded is counted (``thinkgate_learning_reloads_total{outcome="failed"}``),
logged once, and the old one stays in force.

Example::

    poller = VersionPoller(loop)
    poller.poll_once()       # True when something was swapped
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from router.learning.artifacts import MIN_COMPARE, MIN_GAP, unpack_artifact
from router.learning.store import redact

if TYPE_CHECKING:
    from router.learning.loop import LearningLoop

log = logging.getLogger("thinkgate.learning")


class VersionPoller:
    def __init__(self, loop: LearningLoop) -> None:
        self.loop = loop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="thinkgate-version-poller", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        interval = self.loop.settings.poll_interval_s
        failing = False
        next_estimate = 0.0
        while not self._stop.is_set():
            try:
                self.poll_once()
                if time.monotonic() >= next_estimate:
                    self.estimate()
                    next_estimate = time.monotonic() + self.loop.settings.estimate_interval_s
                failing = False
            except Exception as exc:  # database down: keep serving what we have
                if not failing:
                    log.warning(
                        "active versions: reading %s failed (%s: %s); retrying",
                        redact(self.loop.store.url),
                        type(exc).__name__,
                        exc,
                    )
                failing = True
                self.loop.store.reset()
            self._stop.wait(interval)

    def estimate(self) -> None:
        """Labelled-record count and the live APGR of the router in force (stored feature
        vectors only: nothing is featurized here)."""
        from router.learning.log_data import apgr_of, router_rows

        metrics = self.loop.metrics
        metrics.labelled_records.set(self.loop.store.count_labelled())
        load = getattr(self.loop.cascade.scorer, "load", None)
        if load is None:
            return
        router = load()
        rows = router_rows(self.loop.store, router.featurizer_id)
        held = rows.subset(rows.holdout)
        if len(held) >= MIN_COMPARE and float(np.mean(held.strong - held.weak)) >= MIN_GAP:
            metrics.live_apgr.set(apgr_of(router.score_features(held.features), held)["apgr"])

    def poll_once(self) -> bool:
        """Swap in every active version this gateway does not serve yet."""
        with self._lock:
            active = self.loop.store.active_versions()
            changed = False
            for kind in ("router", "budget", "tau"):
                version = active.get(kind)
                if version is None or version == getattr(self.loop.versions, kind):
                    continue
                if version in self._failed:
                    continue
                try:
                    self._swap(kind, version)
                except Exception as exc:
                    self._failed.add(version)
                    self.loop.metrics.reloads.labels(kind=kind, outcome="failed").inc()
                    log.error("could not load promoted %s %s: %s", kind, version, exc)
                    continue
                self.loop.metrics.reloads.labels(kind=kind, outcome="ok").inc()
                log.warning("now serving %s %s", kind, version)
                changed = True
            return changed

    def _swap(self, kind: str, version: str) -> None:
        artifact = self.loop.store.artifact(version)
        if artifact is None:
            raise LookupError(f"artifact {version} is not in the database")
        cascade = self.loop.cascade
        config = self.loop.config
        versions = self.loop.versions
        if kind == "tau":
            value = float(artifact["value"])
            self._set_tau(value)
            self.loop.set_versions(dataclasses.replace(versions, tau=version, tau_value=value))
            return
        folder = unpack_artifact(version, artifact["payload"])
        if kind == "router":
            from router.difficulty_scoring import LearnedScorer, RoutingPolicy

            scorer = LearnedScorer(str(folder))
            scorer.load()
            routing = config.routing.model_copy(update={"scorer": "learned"})
            policy = RoutingPolicy.from_config(routing, scorer)
            scorer.score(["warm-up"])
            cascade.scorer = scorer
            cascade.batcher.scorer = scorer
            cascade.policy = policy
            policy.bind_metrics(cascade.metrics)  # a fresh share window: reset
            self.loop.set_versions(dataclasses.replace(self.loop.versions, router=version))
        elif kind == "budget":
            from router.budget import ThinkingBudget

            budget = ThinkingBudget(
                config.budget.model_copy(update={"enabled": True, "predictor_path": str(folder)})
            )
            budget.load()
            cascade.budget = budget
            self.loop.set_versions(dataclasses.replace(self.loop.versions, budget=version))

    def _set_tau(self, tau: float) -> None:
        cascade = self.loop.cascade
        current: Any = cascade._escalation
        if current is None:
            return
        from router.escalation.policy import EscalationPolicy

        scorer, _ = current
        config = self.loop.config.escalation.model_copy(update={"tau": tau})
        cascade._escalation = (scorer, EscalationPolicy(config))
