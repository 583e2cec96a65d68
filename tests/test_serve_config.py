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
