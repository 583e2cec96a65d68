"""A real local Ray Serve application over tiny models, shared by the Serve tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router.config import ThinkgateConfig
from tests.configs import tiny_config
from tests.servers import free_port, wait_ready

TINY_DEPLOYMENT = {"num_cpus": 0.5, "max_batch_size": 8, "batch_wait_timeout_s": 0.01}


def serve_tiny_config(small_dir: Path, strong_dir: Path, **sections: object) -> ThinkgateConfig:
    base: dict[str, object] = {
        "small": {"deployment": dict(TINY_DEPLOYMENT)},
        "strong": {"deployment": dict(TINY_DEPLOYMENT)},
    }
    for key, value in sections.items():
        base[key] = value
    return tiny_config(small_dir, strong_dir, **base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()


def start_app(config: ThinkgateConfig) -> str:
    """serve.run the thinkgate app on a free port; returns the base URL once /ready is 200."""
    from ray import serve

    from deployments.app import build_from_config

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_from_config(config), name="thinkgate", route_prefix="/")
    base_url = f"http://127.0.0.1:{port}"
    wait_ready(base_url, timeout_s=300)
    return base_url
