"""Escalation is calibrated and evaluated on exactly what the cascade scores when serving.

The same prompts go (a) through the real gateway, which answers with the small tier and
puts the small answer's uncertainty in ``x-thinkgate-uncertainty``, and (b) through the
path ``calibrate-escalation`` / ``eval-escalation`` use (`answer_items` with
`sampling_as_served`, then `score_answers`: what `answer_and_score` runs). With the client's
sampling settings (greedy, and sampled with a seed), both must answer the same text (the
whole completion, the same length and sampling, not a greedy first line of at most 32
tokens) and give it the same uncertainty. (The tiny random model's uncertainties are all
close to 1, so the text is the sharper half of the check.) Items are answered one at a
time, as the gateway answers these sequential requests: a sampled row's float noise in a
left-padded batch can flip a late token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router.config import ThinkgateConfig
from router.engines.factory import create_engine
from router.escalation.policy import sampling_as_served
from router.escalation.selfref_data import QAItem, answer_items
from router.escalation.selfref_eval import score_answers
from router.escalation.uncertainty import create_uncertainty_scorer, engine_probe
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


def _served(base_url: str, temperature: float, seed: int | None) -> tuple[list[str], list[float]]:
    texts, values = [], []
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
        texts.append(response.json()["choices"][0]["message"]["content"])
    return texts, values


@pytest.mark.parametrize(("temperature", "seed"), [(0.0, None), (0.9, 100)])
def test_the_commands_score_what_the_cascade_serves(
    base_url: str, config: ThinkgateConfig, temperature: float, seed: int | None
) -> None:
    texts, served = _served(base_url, temperature, seed)
    engine = create_engine(config.small.engine)
    engine.load()
    items = [QAItem(prompt=p, answer="x") for p in PROMPTS]
    params = sampling_as_served(config.small, temperature=temperature, seed=seed)
    completions = answer_items(engine, items, params, batch_size=1, progress=False)
    assert [c.text for c in completions] == texts
    scores, skipped = asyncio.run(
        score_answers(
            [create_uncertainty_scorer(SCORER)],
            [item.messages for item in items],
            completions,
            engine_probe(engine),
            progress=False,
        )
    )
    assert skipped == {}
    assert scores[SCORER] == pytest.approx(served, abs=6e-5)  # the header has four decimals
