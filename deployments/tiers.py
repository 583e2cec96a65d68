"""A model tier as a Ray Serve deployment, and `ServeTier`, the cascade's view of its handle.

`TierServer` loads one engine per replica and hands every call straight to it: the
transformers engine batches concurrent calls at each decoding step (continuous batching,
`router.engines.scheduler`; ``max_batch_size`` caps the rows decoded together), so no call
waits for a batch to form. `ServeTier` turns handle failures into
`TierUnavailableError` values (503 + ``Retry-After`` at the edge, or a fallback to the other
tier for ``auto``), retries a call once when its replica died before answering, and never
waits longer than the tier's timeout.

Failure semantics of `ServeTier` (what the gateway sees)::

    no running replica (watch)      -> 503 at once, Retry-After 5 (replicas restarting or
                                       the model cannot load; see deployments.availability)
    replica died / unreachable      -> retried once on another replica (non-stream calls,
                                       and streams before their first event), counted in
                                       thinkgate_tier_retries_total; then 503, Retry-After 1
    deployment failed to deploy     -> 503 at once (no queueing), Retry-After 10
    handle queue full (backpressure)-> 503, Retry-After from Serve (default 1)
    no answer within timeout_s      -> the request is cancelled; 503, Retry-After 5
    a ThinkgateError in the replica -> re-raised as is (e.g. 400 ContextLengthError)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
)
from ray.serve.handle import DeploymentHandle

from deployments.availability import ReplicaWatch
from router._exceptions import ThinkgateError, TierUnavailableError
from router.config import ThinkgateConfig
from router.engines.base import ChatMessage, GenerationRequest, GenerationResult, StreamEvent
from router.metrics import GatewayMetrics
from router.tiers import LocalTier, is_unavailability

log = logging.getLogger("thinkgate.deployments")

READY_TIMEOUT_S = 3.0
"""Longest a readiness probe waits for a tier (probes must answer fast, even under load)."""


class TierServer:
    """One replica of a tier: an engine, loaded in the constructor (readiness waits on it).

    Example (what `deployments.app.build_from_config` does)::

        tier = serve.deployment(TierServer).options(name="SmallTier", num_replicas=2)
        small = tier.bind("small", config.model_dump(mode="json"))
    """

    def __init__(self, tier: str, config: dict[str, Any]) -> None:
        from router.engines.factory import create_engine
        from router.engines.transformers_engine import TransformersEngine

        cfg = ThinkgateConfig.model_validate(config)
        tier_cfg = cfg.small if tier == "small" else cfg.strong
        self.tier = tier
        engine = create_engine(tier_cfg.engine)
        if isinstance(engine, TransformersEngine):
            # Continuous batching: at most this many rows decode together.
            engine.max_batch_rows = tier_cfg.deployment.max_batch_size
        self.local = LocalTier(tier, engine, timeout_s=tier_cfg.deployment.timeout_s)
        self.local.load()
        log.info("tier %s ready: %s", tier, self.local.model_name)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        # Dispatched at once: the engine admits the request into its running batch at the
        # next decoding step (an idle replica starts it immediately), so there is no batch
        # wait here. A request that cannot fit is refused alone (ContextLengthError).
        return await self.local.generate(request)

    def batch_sizes(self) -> list[int]:
        """Requests in the running batch at this replica's recent decoding steps, oldest
        first (empty for engines that do not batch in process)."""
        scheduler = getattr(self.local.engine, "scheduler", None)
        return list(scheduler.batch_history) if scheduler is not None else []

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        async for event in self.local.stream(request):
            yield event

    async def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        return await self.local.next_token_logprobs(messages, assistant_prefix, tokens)

    def model_name(self) -> str:
        return self.local.model_name

    async def engine_stats(self) -> dict[str, float]:
        return await self.local.engine_stats()

    def is_ready(self) -> bool:
        # The engine loads in the constructor, so a replica that answers is loaded; whether
        # the model still works is `check_health`'s job. Not behind the generation lock, so
        # a readiness probe never waits for a long batch.
        return True

    async def check_health(self) -> None:
        """Called by Ray Serve every ``health_check_period_s``; raising (e.g. non-finite
        logits on a probe prompt) makes Serve replace this replica. It runs beside the
        generation lock, not behind it: a long batch must not make a healthy replica look
        dead (Serve's health-check timeout is 30 s)."""
        await asyncio.to_thread(self.local.engine.check_health)


def _unwrap(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    if isinstance(exc, RayTaskError) and isinstance(cause, BaseException):
        return cause
    return exc


_REPLICA_GONE: tuple[type[BaseException], ...] = (RayActorError, ReplicaUnavailableError)
"""The replica died or became unreachable: the call never completed there, so a retry on
another replica cannot duplicate an answer the client saw. (`ActorDiedError` and
`ActorUnavailableError` are `RayActorError`s.)"""

RETRY_AFTER_REPLICA_S = 1.0
RETRY_AFTER_UNDEPLOYED_S = 10.0
RETRY_AFTER_TIMEOUT_S = 5.0
RETRY_AFTER_NO_REPLICA_S = 5.0


class _ReplicaGone(Exception):
    """Internal: the call's replica died; the caller decides whether to retry."""


def _as_tier_error(name: str, exc: BaseException) -> BaseException:
    """The error a failed handle call becomes; `_ReplicaGone` when a retry may help."""
    cause = _unwrap(exc)
    if isinstance(cause, ThinkgateError):
        return cause
    if isinstance(exc, _REPLICA_GONE) or isinstance(cause, _REPLICA_GONE):
        return _ReplicaGone(f"{type(cause).__name__}: {cause}")
    if isinstance(cause, DeploymentUnavailableError):
        return TierUnavailableError(
            name, "the deployment failed to deploy", retry_after_s=RETRY_AFTER_UNDEPLOYED_S
        )
    if isinstance(cause, BackPressureError):
        return TierUnavailableError(
            name, "its request queue is full", retry_after_s=cause.retry_after_s or 1.0
        )
    if not type(cause).__module__.startswith("ray.") and not is_unavailability(cause):
        return cause  # a bug in the replica's code: a 500 at the edge, not a fallback
    return TierUnavailableError(name, f"{type(cause).__name__}: {cause}")


class ServeTier:
    """`TierBackend` over a Serve deployment handle.

    With a `ReplicaWatch`, a call to a tier that has no running replica fails at once
    instead of waiting in the handle's queue; leave ``watch`` out for a tier that may scale
    to zero (its queue is what wakes the autoscaler).

    Example::

        small = ServeTier("small", small_handle, "gemma-3-270m", timeout_s=60, watch=watch)
        result = await small.generate(request)   # or TierUnavailableError
    """

    def __init__(
        self,
        name: str,
        handle: DeploymentHandle,
        model_name: str,
        timeout_s: float,
        *,
        watch: ReplicaWatch | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.name = name
        self.metrics = metrics
        self.handle = handle
        self._model_name = model_name
        self.timeout_s = timeout_s
        self.watch = watch
        self.in_flight = 0

    def busy(self) -> bool:
        """True while this gateway has a generate call in flight on the tier (learning's
        shadow answers are skipped then, never queued)."""
        return self.in_flight > 0

    async def _check_running(self) -> None:
        if self.watch is None:
            return
        if await self.watch.running(self.handle.deployment_name) == 0:
            raise TierUnavailableError(
                self.name,
                "no running replica (starting, restarting, or the model failed to load)",
                retry_after_s=RETRY_AFTER_NO_REPLICA_S,
            )

    @property
    def model_name(self) -> str:
        return self._model_name

    def _retrying(self, why: str) -> None:
        log.warning("tier %s: %s; retrying once", self.name, why)
        if self.metrics is not None:
            self.metrics.tier_retries.labels(tier=self.name).inc()

    def _timed_out(self, timeout_s: float) -> TierUnavailableError:
        return TierUnavailableError(
            self.name, f"timed out after {timeout_s:g}s", retry_after_s=RETRY_AFTER_TIMEOUT_S
        )

    async def _remote(
        self, method: str, *args: Any, retries: int = 1, timeout_s: float | None = None
    ) -> Any:
        """One handle call, retried ``retries`` times when its replica died; all attempts
        together stay within ``timeout_s`` (the tier's timeout by default)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            await self._check_running()
            response = getattr(self.handle, method).remote(*args)
            try:
                return await asyncio.wait_for(response, timeout=deadline - time.monotonic())
            except TimeoutError:
                response.cancel()
                raise self._timed_out(timeout) from None
            except asyncio.CancelledError:  # the client went away: stop the replica's work
                response.cancel()
                raise
            except Exception as exc:
                error = _as_tier_error(self.name, exc)
                if not isinstance(error, _ReplicaGone):
                    raise error from None
                if attempt >= retries or time.monotonic() >= deadline:
                    raise TierUnavailableError(
                        self.name, f"replica died ({error})", retry_after_s=RETRY_AFTER_REPLICA_S
                    ) from None
                attempt += 1
                self._retrying(f"replica died ({error})")

    async def ready(self) -> bool:
        try:
            timeout = min(READY_TIMEOUT_S, self.timeout_s)
            return bool(await self._remote("is_ready", retries=0, timeout_s=timeout))
        except ThinkgateError:
            return False

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.in_flight += 1
        try:
            result: GenerationResult = await self._remote("generate", request)
        finally:
            self.in_flight -= 1
        return result

    async def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        result: dict[str, float] = await self._remote(
            "next_token_logprobs", messages, assistant_prefix, tokens
        )
        return result

    async def engine_stats(self) -> dict[str, float]:
        """One replica's engine state (the one the handle picks); {} when none answers fast."""
        try:
            stats: dict[str, float] = await self._remote(
                "engine_stats", retries=0, timeout_s=min(READY_TIMEOUT_S, self.timeout_s)
            )
        except ThinkgateError:
            return {}
        return stats

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        """Events of one streamed request. A replica that dies before the first event is
        replaced once (nothing was sent yet); after that the stream fails, because a retry
        would repeat text the client already has. A stall longer than the tier's timeout
        between two events cancels the request."""
        attempt = 0
        while True:
            await self._check_running()
            responses = self.handle.options(stream=True).stream.remote(request)
            iterator = responses.__aiter__()
            sent = False
            finished = False
            try:
                while True:
                    try:
                        event = await asyncio.wait_for(iterator.__anext__(), self.timeout_s)
                    except StopAsyncIteration:
                        finished = True
                        return
                    except TimeoutError:
                        raise TierUnavailableError(
                            self.name, "stream stalled", retry_after_s=RETRY_AFTER_TIMEOUT_S
                        ) from None
                    except Exception as exc:
                        error = _as_tier_error(self.name, exc)
                        if not isinstance(error, _ReplicaGone):
                            raise error from None
                        if sent or attempt >= 1:
                            raise TierUnavailableError(
                                self.name,
                                f"replica died mid-stream ({error})",
                                retry_after_s=RETRY_AFTER_REPLICA_S,
                            ) from None
                        break
                    sent = True
                    yield event
            finally:
                if not finished:  # failed, stalled, or the client went away: stop generating
                    responses.cancel()
            attempt += 1
            self._retrying("replica died before streaming")
