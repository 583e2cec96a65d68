"""deployments/serve_config.yaml stays in step with the pydantic config and build_app."""

from pathlib import Path

import yaml

from deployments.app import AppArgs

ROOT = Path(__file__).resolve().parents[1]


def test_serve_config_names_build_app_with_valid_args() -> None:
    data = yaml.safe_load((ROOT / "deployments" / "serve_config.yaml").read_text())
    [app] = data["applications"]
    assert app["import_path"] == "deployments.app:build_app"
    AppArgs.model_validate(app["args"])
    assert data["http_options"] == {"host": "127.0.0.1", "port": 8000}


def test_the_ingress_takes_more_than_the_gateway_gate_holds() -> None:
    """Ray must never be the one to refuse or park a chat request: the ingress replica
    takes every request thinkgate's concurrency gate may hold (running + queued) plus the
    probes, so overload is thinkgate's 503 in the OpenAI shape (run for real on Ray Serve in
    tests/serve/test_ray_serve_app.py)."""
    from deployments.app import build_from_config
    from router.config import config_from_mapping

    for security in ({}, {"max_concurrent_requests": 500, "max_queued_requests": 1000}):
        config = config_from_mapping({"security": security}, source="test")
        gate = config.security.max_concurrent_requests + config.security.max_queued_requests
        gateway = build_from_config(config)._bound_deployment
        assert gateway.max_ongoing_requests > gate
        assert gateway.max_queued_requests == -1  # no 503 of Ray's own
