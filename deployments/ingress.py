"""The gateway as the Serve ingress: the cascade over two `ServeTier` handles.

The difficulty router and the budget predictor run inside the ingress (CPU, a few ms per
prompt): no extra network hop per request, and they scale with the ingress replicas.

Readiness (``GET /ready``): at start, both tiers must answer (models loaded). Once the
service has been fully ready, a tier that goes down does not take the gateway out of service
while routing fallback is on and the other tier answers: ``auto`` requests fall back, with
``x-thinkgate-fallback``, and forced requests to the down tier get 503 + ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.availability import ReplicaWatch
from deployments.tiers import ServeTier
from router.cascade import Cascade
from router.config import DeploymentConfig, ThinkgateConfig
from router.gateway.app import create_app, create_learning
from router.gateway.serving import ChatService
from router.metrics import GatewayMetrics


def min_replicas(d: DeploymentConfig) -> int:
    return d.autoscaling.min_replicas if d.autoscaling is not None else d.num_replicas


@serve.ingress()
class Gateway:
    def __init__(
        self, small: DeploymentHandle, strong: DeploymentHandle, config: dict[str, Any]
    ) -> None:
        self.config = ThinkgateConfig.model_validate(config)
        self.metrics = GatewayMetrics()
        # Tiers that may scale to zero are not watched: their queue wakes the autoscaler.
        self.watch = ReplicaWatch(serve.get_replica_context().app_name)
        self.small = ServeTier(
            "small",
            small,
            self.config.small.engine.display_name,
            self.config.small.deployment.timeout_s,
            watch=self.watch if min_replicas(self.config.small.deployment) > 0 else None,
            metrics=self.metrics,
        )
        self.strong = ServeTier(
            "strong",
            strong,
            self.config.strong.engine.display_name,
            self.config.strong.deployment.timeout_s,
            watch=self.watch if min_replicas(self.config.strong.deployment) > 0 else None,
            metrics=self.metrics,
        )
        self.cascade = Cascade(
            self.config, small=self.small, strong=self.strong, metrics=self.metrics
        )
        self.cascade.load()
        self.learning = create_learning(self.config, self.cascade, self.metrics)
        if self.learning is not None:
            self.learning.start()
        self.service = ChatService(self.config, self.cascade, self.metrics, self.learning)
        self._was_ready = False

    async def ready(self) -> bool:
        small, strong = await asyncio.gather(self.small.ready(), self.strong.ready())
        self.metrics.tier_up.labels(tier="small").set(int(small))
        self.metrics.tier_up.labels(tier="strong").set(int(strong))
        if small and strong:
            self._was_ready = True
            return True
        return self._was_ready and self.config.routing.fallback and (small or strong)

    def __del__(self) -> None:
        # Serve calls __del__ on graceful shutdown: write the queued decision records.
        learning = getattr(self, "learning", None)
        if learning is not None:
            learning.close()

    def __serve_build_asgi_app__(self) -> Any:
        # Ray's proxy already answers with the request's x-request-id (the client's or
        # its own, also in the headers the ingress sees): adopt it, do not add a second.
        return create_app(
            self.config, self.service, self.metrics, self.ready, echo_request_id=False
        )
