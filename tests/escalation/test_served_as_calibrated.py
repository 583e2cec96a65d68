"""Escalation is calibrated and evaluated on exactly what the cascade scores when serving.

The same prompts go (a) through the real gateway, which answers with the small tier and
puts the small answer's uncertainty in ``x-thinkgate-uncertainty``, and (b) through the
path ``calibrate-escalation`` / ``eval-escalation`` use (`answer_and_score` with
`sampling_as_served`). With the client's sampling settings (greedy, and sampled with a
seed), both must give the same uncertainty for every prompt: the whole completion, the same
length and sampling, not a greedy first line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router.config import ThinkgateConfig
from router.engines.factory import create_engine
from router.escalation.policy import sampling_as_served
from router.escalation.selfref_data import QAItem
from router.escalation.selfref_eval import answer_and_score
from router.escalation.uncertainty import create_uncertainty_scorer
from tests.configs import tiny_config
from tests.escalation.conftest import PROMPTS
from tests.servers import running_gateway

SCORER = "mean_logprob"


@pytest.fixture(scope="module")
def config(tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> ThinkgateConfig:
    # tau 1: never escalates, but every small answer is scored (the header carries it)
    return tiny_config(tiny_qwen3_dir, tiny_gemma3_dir, escalation={"scorer": SCORER, "tau": 1.0})


@pytest.fixture(scope="module")
def base_url(config: ThinkgateConfig) -> Iterator[str]:
    with running_gateway(config) as url:
        yield url


def _served(base_url: str, temperature: float, seed: int | None) -> list[float]:
    values = []
    for index, prompt in enumerate(PROMPTS):
        body: dict[str, object] = {
            "model": "auto",
            "messages": [{"role": "user", "content": prompt}],
            "temperature": temperature,
        }
        if seed is not None:
            body["seed"] = seed + index
        response = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=120)
        assert response.status_code == 200, response.text
        assert response.headers["x-thinkgate-route"] == "small"
        values.append(float(response.headers["x-thinkgate-uncertainty"]))
    return values


@pytest.mark.parametrize(("temperature", "seed"), [(0.0, None), (0.9, 100)])
def test_the_commands_score_what_the_cascade_serves(
    base_url: str, config: ThinkgateConfig, temperature: float, seed: int | None
) -> None:
    served = _served(base_url, temperature, seed)
    engine = create_engine(config.small.engine)
    engine.load()
    items = [QAItem(prompt=p, answer="x") for p in PROMPTS]
    params = sampling_as_served(config.small, temperature=temperature, seed=seed)
    _, scores, skipped = answer_and_score(
        engine, items, [create_uncertainty_scorer(SCORER)], params, progress=False
    )
    assert skipped == {}
    # the header has four decimals
    assert scores[SCORER] == pytest.approx(served, abs=6e-5)
    assert len(set(served)) > 1  # the prompts are told apart: the comparison means something
