"""API keys from ``THINKGATE_API_KEYS`` reach the Ray Serve ingress (what ``make serve`` runs).

The variable is set before Ray starts, as a shell would for ``THINKGATE_API_KEYS=k1 make
serve``: Ray's workers inherit the environment, and the ingress reads the keys when it
builds its app.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.conftest import CHAT
from tests.serve.conftest import serve_tiny_config, start_app

pytestmark = pytest.mark.serve


@pytest.fixture(scope="module")
def base_url(tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> Iterator[str]:
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THINKGATE_API_KEYS", "k1")
        ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
        try:
            yield start_app(serve_tiny_config(tiny_qwen3_dir, tiny_gemma3_dir))
        finally:
            from ray import serve

            serve.shutdown()
            ray.shutdown()


def test_env_keys_guard_the_serve_app(base_url: str) -> None:
    url = f"{base_url}/v1/chat/completions"
    missing = httpx.post(url, json=CHAT, timeout=120)
    wrong = httpx.post(url, json=CHAT, headers={"Authorization": "Bearer k2"}, timeout=120)
    right = httpx.post(url, json=CHAT, headers={"Authorization": "Bearer k1"}, timeout=120)
    assert missing.status_code == 401 and wrong.status_code == 401, (missing.text, wrong.text)
    assert missing.json()["error"]["type"] == "authentication_error"
    assert right.status_code == 200, right.text
    assert httpx.get(f"{base_url}/ready", timeout=30).status_code == 200
