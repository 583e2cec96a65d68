"""`build_app(args)`: the Ray Serve application, also named by ``import_path`` in YAML.

Example (YAML, the ``serve run`` / KubeRay ``serveConfigV2`` form)::

    applications:
      - name: thinkgate
        import_path: deployments.app:build_app
        args: {config: /etc/thinkgate/config.yaml}

``args.config`` is a YAML file path (or None for the embedded default); ``args.overrides`` an
optional mapping merged on top. ``THINKGATE__*`` environment variables apply as usual.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

from router.config import DeploymentConfig, ThinkgateConfig, load_config


class AppArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: str | None = Field(None, description="Path of the thinkgate YAML config.")
    ingress_replicas: int = Field(1, ge=1, description="Gateway (ingress) replicas.")


def deployment_options(d: DeploymentConfig, name: str) -> dict[str, Any]:
    """Ray Serve options of one tier, from its pydantic config."""
    actor: dict[str, Any] = {"num_cpus": d.num_cpus, "num_gpus": d.num_gpus}
    if d.accelerator_type:
        actor["accelerator_type"] = d.accelerator_type
    options: dict[str, Any] = {
        "name": name,
        "ray_actor_options": actor,
        "max_ongoing_requests": d.max_ongoing_requests,
        "health_check_period_s": d.health_check_period_s,
        "graceful_shutdown_timeout_s": 30,
    }
    if d.autoscaling is not None:
        a = d.autoscaling
        options["autoscaling_config"] = {
            "min_replicas": a.min_replicas,
            "max_replicas": a.max_replicas,
            "target_ongoing_requests": a.target_ongoing_requests,
            "upscale_delay_s": a.upscale_delay_s,
            "downscale_delay_s": a.downscale_delay_s,
        }
    else:
        options["num_replicas"] = d.num_replicas
    return options


INGRESS_HEADROOM = 64
"""Ongoing requests an ingress replica takes beyond the gateway's chat capacity: probes
(/health, /ready, /metrics, /v1/models) and requests being refused (401, 429, 503)."""


def ingress_max_ongoing_requests(config: ThinkgateConfig) -> int:
    """The ingress's Ray Serve ``max_ongoing_requests``: above what thinkgate's own
    concurrency gate holds (``security.max_concurrent_requests`` running plus
    ``max_queued_requests`` waiting), so the gate, not Ray, decides overload and every
    refusal is thinkgate's 503 with ``Retry-After`` in the OpenAI error shape. With Ray's
    ``max_queued_requests`` left unlimited, Ray's proxy never answers a 503 of its own."""
    security = config.security
    return security.max_concurrent_requests + security.max_queued_requests + INGRESS_HEADROOM


def build_from_config(config: ThinkgateConfig, ingress_replicas: int = 1) -> Application:
    from deployments.ingress import Gateway
    from deployments.tiers import TierServer

    data = config.model_dump(mode="json")
    tier = serve.deployment(TierServer)
    small = tier.options(**deployment_options(config.small.deployment, "SmallTier")).bind(
        "small", data
    )
    strong = tier.options(**deployment_options(config.strong.deployment, "StrongTier")).bind(
        "strong", data
    )
    gateway = serve.deployment(Gateway).options(
        name="Gateway",
        num_replicas=ingress_replicas,
        ray_actor_options={"num_cpus": 0},  # I/O-bound; the router is light (see README)
        max_ongoing_requests=ingress_max_ongoing_requests(config),
        max_queued_requests=-1,  # never Ray's own 503 (see ingress_max_ongoing_requests)
    )
    return gateway.bind(small, strong, data)


def build_app(args: dict[str, Any]) -> Application:
    parsed = AppArgs.model_validate(args or {})
    return build_from_config(load_config(parsed.config), parsed.ingress_replicas)
