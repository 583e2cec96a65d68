"""A model tier as a Ray Serve deployment, and `ServeTier`, the cascade's view of its handle.

`TierServer` loads one engine per replica and batches concurrent ``generate`` calls with
``@serve.batch`` (size and wait from the tier's config). `ServeTier` turns handle failures into
`TierUnavailableError` values, retries a non-streaming call once when a replica died
mid-request, and never waits longer than the tier's timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ray import serve
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.handle import DeploymentHandle

from router._exceptions import ThinkgateError, TierUnavailableError
from router.config import ThinkgateConfig
from router.engines.base import ChatMessage, GenerationRequest, GenerationResult, StreamEvent
from router.tiers import LocalTier

log = logging.getLogger("thinkgate.deployments")


class TierServer:
    """One replica of a tier: an engine, loaded in the constructor (readiness waits on it)."""

    def __init__(self, tier: str, config: dict[str, Any]) -> None:
        from router.engines.factory import create_engine

        cfg = ThinkgateConfig.model_validate(config)
        tier_cfg = cfg.small if tier == "small" else cfg.strong
        self.tier = tier
        self.local = LocalTier(
            tier, create_engine(tier_cfg.engine), timeout_s=tier_cfg.deployment.timeout_s
        )
        self.local.load()
        self._batched.set_max_batch_size(tier_cfg.deployment.max_batch_size)
        self._batched.set_batch_wait_timeout_s(tier_cfg.deployment.batch_wait_timeout_s)
        log.info("tier %s ready: %s", tier, self.local.model_name)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        result: GenerationResult = await self._batched(request)
        return result

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def _batched(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return await self.local.generate_batch(requests)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        async for event in self.local.stream(request):
            yield event

    async def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        return await self.local.next_token_logprobs(messages, assistant_prefix, tokens)

    def model_name(self) -> str:
        return self.local.model_name

    async def is_ready(self) -> bool:
        return await self.local.ready()

    async def check_health(self) -> None:
        """Called by Ray Serve every ``health_check_period_s``; raising restarts the replica."""
        await asyncio.to_thread(self.local.engine.check_health)


def _unwrap(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    if isinstance(exc, RayTaskError) and isinstance(cause, BaseException):
        return cause
    return exc


_REPLICA_GONE: tuple[type[BaseException], ...] = (RayActorError,)


class ServeTier:
    """`TierBackend` over a Serve deployment handle."""

    def __init__(self, name: str, handle: DeploymentHandle, model_name: str, timeout_s: float):
        self.name = name
        self.handle = handle
        self._model_name = model_name
        self.timeout_s = timeout_s

    @property
    def model_name(self) -> str:
        return self._model_name

    async def _remote(self, method: str, *args: Any, retries: int = 1) -> Any:
        attempt = 0
        while True:
            try:
                response = getattr(self.handle, method).remote(*args)
                return await asyncio.wait_for(response, timeout=self.timeout_s)
            except TimeoutError:
                raise TierUnavailableError(
                    self.name, f"timed out after {self.timeout_s:g}s"
                ) from None
            except _REPLICA_GONE as exc:
                if attempt < retries:
                    attempt += 1
                    log.warning("tier %s replica died (%s); retrying once", self.name, exc)
                    continue
                raise TierUnavailableError(self.name, "replica died") from None
            except Exception as exc:
                cause = _unwrap(exc)
                if isinstance(cause, ThinkgateError):
                    raise cause from None
                raise TierUnavailableError(self.name, f"{type(cause).__name__}: {cause}") from None

    async def ready(self) -> bool:
        try:
            return bool(await self._remote("is_ready", retries=0))
        except ThinkgateError:
            return False

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        result: GenerationResult = await self._remote("generate", request)
        return result

    async def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        result: dict[str, float] = await self._remote(
            "next_token_logprobs", messages, assistant_prefix, tokens
        )
        return result

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        responses = self.handle.options(stream=True).stream.remote(request)
        iterator = responses.__aiter__()
        while True:
            try:
                event = await asyncio.wait_for(iterator.__anext__(), timeout=self.timeout_s)
            except StopAsyncIteration:
                return
            except TimeoutError:
                responses.cancel()
                raise TierUnavailableError(self.name, "stream stalled") from None
            except _REPLICA_GONE:
                raise TierUnavailableError(self.name, "replica died") from None
            except Exception as exc:
                cause = _unwrap(exc)
                if isinstance(cause, ThinkgateError):
                    raise cause from None
                raise TierUnavailableError(self.name, f"{type(cause).__name__}: {cause}") from None
            yield event
