"""Promoted tau and budget model reach a running gateway without a restart."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx

from classifiers.budget_predictor import DEFAULT_BUDGET_DIR
from router.learning.promotion import promote_budget, promote_tau
from router.learning.store import LearningStore
from tests.learning.conftest import KEY_A, learning_config, learning_gateway


def test_tau_and_budget_hot_reload(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    config = learning_config(tiny_qwen3_dir, tiny_gemma3_dir, url)
    folder = Path(shutil.copytree(DEFAULT_BUDGET_DIR, tmp_path / "budget"))
    store = LearningStore(url)
    with learning_gateway(config) as (base_url, gateway):
        client = httpx.Client(base_url=base_url, timeout=60)

        def status() -> dict:  # type: ignore[type-arg]
            return client.get(
                "/v1/learning/status", headers={"Authorization": f"Bearer {KEY_A}"}
            ).json()

        assert status()["tau"] == 1.0 and status()["active"]["budget"] == "disabled"
        tau = promote_tau(store, 0.25, force=True)  # nothing to compare with
        budget = promote_budget(store, folder)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            status()["active"]["tau"] != tau["version"]
            or status()["active"]["budget"] != budget["version"]
        ):
            time.sleep(0.2)
        assert status()["tau"] == 0.25
        assert status()["active"]["budget"] == budget["version"]
        _scorer, policy = gateway.cascade._escalation
        assert policy.tau == 0.25
        assert gateway.cascade.budget.config.enabled
        reply = client.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {KEY_A}"},
            json={"model": "strong", "messages": [{"role": "user", "content": "2+2?"}]},
        )
        assert reply.status_code == 200
        predicted = gateway.cascade.budget.for_prompt("2+2?")
        assert int(reply.headers["x-thinkgate-thinking-budget"]) == predicted
    store.close()
