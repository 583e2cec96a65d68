"""``serve run deployments/serve_config.yaml`` serves the gateway API, as ``make serve`` does.

The Serve config file is used as shipped except for two values a test must change: the
HTTP port (a free one) and ``args.config`` (tiny models instead of the embedded Gemma, so
the test needs no model download or conversion). Ray Serve's own CLI starts a fresh local
Ray (``--address local``), imports ``deployments.app:build_app`` and deploys it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.serve.conftest import serve_tiny_config
from tests.servers import free_port, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.serve]

ROOT = Path(__file__).resolve().parents[2]


def serve_cli() -> str:
    beside_python = Path(sys.executable).with_name("serve")
    found = str(beside_python) if beside_python.exists() else shutil.which("serve")
    if found is None:
        pytest.skip("Ray Serve's `serve` CLI is not installed")
    return found


def test_serve_run_with_the_shipped_config_serves_the_api(
    tmp_path: Path, tiny_qwen3_dir: Path, tiny_gemma3_dir: Path
) -> None:
    config = serve_tiny_config(tiny_qwen3_dir, tiny_gemma3_dir)
    config_file = tmp_path / "thinkgate.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    serve_config = yaml.safe_load((ROOT / "deployments" / "serve_config.yaml").read_text())
    port = free_port()
    serve_config["http_options"]["port"] = port
    serve_config["applications"][0]["args"]["config"] = str(config_file)
    serve_file = tmp_path / "serve_config.yaml"
    serve_file.write_text(yaml.safe_dump(serve_config))
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(
        [serve_cli(), "run", str(serve_file), "--address", "local"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so the finally below can end it
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(base_url, timeout_s=420)
        except TimeoutError:
            pytest.fail((tmp_path / "serve.log").read_text()[-4000:])
        assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
        models = {m["id"] for m in httpx.get(f"{base_url}/v1/models").json()["data"]}
        assert {"auto", "small", "strong", "tiny-small", "tiny-strong"} <= models
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        r = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200 and r.headers["x-thinkgate-route"] == "small"
        bad = httpx.post(f"{base_url}/v1/chat/completions", json={**body, "top_p": 2}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "top_p"
        assert "thinkgate_requests_total" in httpx.get(f"{base_url}/metrics").text
    finally:
        process.send_signal(signal.SIGINT)  # `serve run` shuts Serve and its Ray down
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()
