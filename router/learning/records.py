"""One decision record: what the gateway decided for a request, and how it went.

`DecisionRecord` is built on the request path (cheap: no I/O, no features); the writer
thread turns records into rows (`to_row`), adding the router's feature vector and the
budget predictor's features there, off the event loop. Text goes into a row only when
``store_text`` is on.

Example::

    record = DecisionRecord.from_outcome(creq, decision, result, key_id="key-1a2b", ...)
    row = record.to_row(store_text=False, router_features=vec, featurizer_id="feat-...")
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from router.cascade import CascadeRequest, Decision
from router.engines.base import Completion


@dataclass(frozen=True)
class ActiveVersions:
    """Versions a gateway serves with; each is a promoted version id or a local name."""

    router: str
    budget: str
    tau: str
    tau_value: float


@dataclass
class DecisionRecord:
    request_id: str
    created_at: float
    key_id: str
    mode: str
    stream: bool
    decision: Decision
    answer_model: str
    prompt_tokens: int
    completions: Sequence[Completion]
    latency_s: float
    prompt: str
    versions: ActiveVersions
    request: CascadeRequest | None = field(default=None, repr=False)
    """The request itself (for shadow answers; never stored)."""

    @classmethod
    def build(
        cls,
        request: CascadeRequest,
        decision: Decision,
        *,
        key_id: str,
        created_at: float,
        answer_model: str,
        prompt_tokens: int,
        completions: Sequence[Completion],
        latency_s: float,
        stream: bool,
        versions: ActiveVersions,
    ) -> DecisionRecord:
        return cls(
            request_id=request.request_id,
            created_at=created_at,
            key_id=key_id,
            mode=request.mode,
            stream=stream,
            decision=decision,
            answer_model=answer_model,
            prompt_tokens=prompt_tokens,
            completions=completions,
            latency_s=latency_s,
            prompt=request.prompt_text(),
            versions=versions,
            request=request,
        )

    @property
    def answer(self) -> str:
        return self.completions[0].text if self.completions else ""

    def to_row(
        self,
        *,
        store_text: bool,
        router_features: np.ndarray | None = None,
        featurizer_id: str | None = None,
        budget_features: np.ndarray | None = None,
    ) -> dict[str, Any]:
        d = self.decision
        first = self.completions[0] if self.completions else None
        strong_ran = d.tier == "strong"
        return {
            "request_id": self.request_id,
            "created_at": self.created_at,
            "key_id": self.key_id,
            "mode": self.mode,
            "stream": self.stream,
            "route": d.route,
            "reason": d.reason,
            "tier": d.tier,
            "fallback_from": d.fallback_from,
            "difficulty": d.difficulty,
            "threshold": d.threshold,
            "router_version": self.versions.router,
            "featurizer_id": featurizer_id if router_features is not None else None,
            "router_features": pack(router_features),
            "uncertainty": d.uncertainty,
            "escalation_scorer": d.escalation_scorer,
            "tau": self.versions.tau_value if d.escalation_scorer else None,
            "tau_version": self.versions.tau if d.escalation_scorer else None,
            "thinking_budget": d.thinking_budget if strong_ran else None,
            "budget_version": self.versions.budget if strong_ran and d.thinking_budget else None,
            "budget_features": pack(budget_features),
            "reasoning_tokens": sum(c.reasoning_tokens for c in self.completions),
            "forced_close": any(c.forced_close for c in self.completions),
            "finish_reason": first.finish_reason if first else None,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": sum(c.completion_tokens for c in self.completions),
            "latency_s": self.latency_s,
            "router_s": d.timings.get("router_s"),
            "answer_model": self.answer_model,
            "prompt_text": self.prompt if store_text else None,
            "answer_text": self.answer if store_text else None,
            "thinking_stop": d.thinking_stop if strong_ran else None,
            "probes": d.probes if strong_ran else None,
            "probe_trace": _probe_trace(d, store_text=store_text) if strong_ran else None,
        }


def _probe_trace(decision: Decision, *, store_text: bool) -> str | None:
    """The probes as JSON; answers only with ``store_text`` (else only whether each agreed
    with the probe before it)."""
    trace = decision.probe_trace
    if trace is None:
        return None
    probes = []
    previous: str | None = None
    for probe in trace.probes:
        item: dict[str, Any] = {
            "at_tokens": probe.at_tokens,
            "confidence": probe.confidence,
            "mass": probe.mass,
            "tokens": probe.tokens,
            "answered": probe.answer is not None,
            "agrees": probe.answer is not None and probe.answer == previous,
        }
        if store_text:
            item["answer"] = probe.answer
        probes.append(item)
        previous = probe.answer
    return json.dumps(
        {
            "stop": trace.stop,
            "cap": trace.cap,
            "thinking_tokens": trace.thinking_tokens,
            "probes": probes,
        }
    )


def pack(vector: np.ndarray | None) -> bytes | None:
    """A feature vector as little-endian float32 bytes (None stays None)."""
    if vector is None:
        return None
    return np.asarray(vector, dtype="<f4").ravel().tobytes()


def unpack(data: bytes | None) -> np.ndarray | None:
    if data is None:
        return None
    return np.frombuffer(data, dtype="<f4").astype(np.float64)
