"""Thinking probes through the real engine path: tiny models, the in-process cascade and gateway.

The never-closing model thinks " ok ok ..." forever and answers " ok" to every probe with
probability ~1, so its probes always agree: thinking stops at the first probe (agree=1) or
the second (agree=2). The random tiny Qwen3 gives whatever greedy answers its weights give:
the rule must stop exactly where the last answers first agree, and never before.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from classifiers.answer_normalisation import Answer
from router._exceptions import ConfigError
from router.cascade import CascadeRequest
from router.config import ProbeConfig, ThinkingMarkers
from router.engines.base import (
    ChatMessage,
    Completion,
    GenerationRequest,
    Outcome,
    TokenLogprob,
    TopLogprob,
)
from router.gateway.app import LocalGateway, build_local
from router.sampling import SamplingParams
from router.thinking_probes import ThinkingProbes
from tests.configs import tiny_config
from tests.servers import metric_samples, running_gateway

ASK = [ChatMessage("user", "What is 2+2? Think it through.")]
INTERVAL = 16


def _config(small: Path, strong: Path, **probe: Any) -> Any:
    return tiny_config(
        small,
        strong,
        budget={"enabled": False, "max_tokens": 80, "probe": {"interval": INTERVAL, **probe}},
    )


class _CountingEngine:
    """The real engine, with every request it receives kept (to see chunks and probes)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.requests: list[GenerationRequest] = []
        self.started = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def generate_each(
        self, requests: Any, *, cancelled: threading.Event | None = None
    ) -> list[Outcome]:
        self.requests.extend(requests)
        self.started.set()
        return list(self._engine.generate_each(requests, cancelled=cancelled))


@pytest.fixture
def gateway(request: pytest.FixtureRequest, tiny_qwen3_dir: Path) -> Iterator[LocalGateway]:
    strong_dir, probe = request.param
    built = build_local(_config(tiny_qwen3_dir, request.getfixturevalue(strong_dir), **probe))
    built.strong.engine = _CountingEngine(built.strong.engine)
    asyncio.run(built.start())
    yield built
    built.close()


def _ask(gateway: LocalGateway, **extra: Any) -> Any:
    params = SamplingParams(max_tokens=200, temperature=0.0)
    request = CascadeRequest(ASK, params, mode="strong", **extra)
    return asyncio.run(gateway.cascade.complete(request))


def _probes(gateway: LocalGateway) -> list[GenerationRequest]:
    engine = gateway.strong.engine
    cue = gateway.config.budget.probe.answer_cue
    return [
        r
        for r in engine.requests  # type: ignore[attr-defined]
        if r.continue_final_message and r.messages[-1].content.endswith(cue)
    ]


@pytest.mark.parametrize("gateway", [("never_close_thinking_dir", {"agree": 2})], indirect=True)
def test_agreeing_probes_end_thinking_at_the_interval(gateway: LocalGateway) -> None:
    outcome = _ask(gateway)
    decision, [choice] = outcome.decision, outcome.result.choices
    assert decision.thinking_stop == "probe"
    trace = decision.probe_trace
    assert trace is not None and [p.at_tokens for p in trace.probes] == [INTERVAL, 2 * INTERVAL]
    assert trace.probes[0].answer == trace.probes[1].answer is not None
    assert choice.reasoning_tokens == 2 * INTERVAL and not choice.forced_close
    # each probe saw the thinking so far, closed and cued; none of its text reached the answer
    probes = _probes(gateway)
    assert len(probes) == 2
    assert probes[1].messages[-1].content.count(" ok") >= INTERVAL - 1
    assert probes[1].params.temperature == 0.0 and probes[1].params.logprobs
    assert choice.reasoning is not None and "Final answer" not in choice.reasoning
    assert "Final answer" not in choice.text
    # usage: thinking + answer up to max_tokens (the endless model), the probes' 16 not in it
    assert choice.completion_tokens == 200 and choice.finish_reason == "length"


@pytest.mark.parametrize(
    "gateway", [("never_close_thinking_dir", {"answer_kind": "number"})], indirect=True
)
def test_probes_without_an_answer_leave_the_budget_as_the_cap(gateway: LocalGateway) -> None:
    outcome = _ask(gateway)
    decision, [choice] = outcome.decision, outcome.result.choices
    assert decision.thinking_stop == "budget" and choice.forced_close
    assert choice.reasoning_tokens == decision.thinking_budget == 80
    assert decision.probe_trace is not None
    assert [p.at_tokens for p in decision.probe_trace.probes] == [16, 32, 48, 64]
    assert all(p.answer is None for p in decision.probe_trace.probes)


@pytest.mark.parametrize(
    "gateway",
    [("tiny_qwen3_dir", {"agree": 2, "min_confidence": 0.0, "max_tokens": 1})],
    indirect=True,
)
def test_the_rule_stops_exactly_where_answers_first_agree(gateway: LocalGateway) -> None:
    disagreed = 0
    for seed in range(6):
        params = SamplingParams(max_tokens=200, temperature=1.0, seed=seed)
        request = CascadeRequest(ASK, params, mode="strong")
        trace = asyncio.run(gateway.cascade.complete(request)).decision.probe_trace
        assert trace is not None
        answers = [p.answer for p in trace.probes]
        agreed = [i for i in range(1, len(answers)) if answers[i] == answers[i - 1]]
        disagreed += len(answers) - 1 - len(agreed)
        if trace.stop == "probe":
            assert agreed == [len(answers) - 1]  # the disagreeing probes before did not stop
        else:
            assert not agreed
    assert disagreed > 0  # the random model's answers did disagree somewhere


@pytest.mark.parametrize("gateway", [("never_close_thinking_dir", {})], indirect=True)
def test_a_request_opts_out_and_thinking_off_is_not_probed(gateway: LocalGateway) -> None:
    outcome = _ask(gateway, thinking_probe=False)
    assert outcome.decision.probe_trace is None and outcome.decision.thinking_stop == "budget"
    outcome = _ask(gateway, enable_thinking=False)
    assert outcome.decision.probe_trace is None and outcome.decision.thinking_stop is None
    assert not _probes(gateway)


@pytest.mark.parametrize("gateway", [("never_close_thinking_dir", {})], indirect=True)
def test_a_client_who_leaves_cancels_the_probes(gateway: LocalGateway) -> None:
    engine = gateway.strong.engine

    async def leave() -> None:
        params = SamplingParams(max_tokens=200, temperature=0.0)
        task = asyncio.ensure_future(
            gateway.cascade.complete(CascadeRequest(ASK, params, mode="strong"))
        )
        await asyncio.to_thread(engine.started.wait, 30)  # type: ignore[attr-defined]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)

    asyncio.run(leave())
    assert len(engine.requests) == 1  # type: ignore[attr-defined]
    assert not _probes(gateway) and gateway.strong._in_flight == 0


def test_a_letter_probe_reads_confidence_and_mass_from_the_top_logprobs() -> None:
    probes = ThinkingProbes(ProbeConfig(letters="ABCD"), ThinkingMarkers())
    top = [TopLogprob(" B", math.log(0.6)), TopLogprob(" C", math.log(0.2))]
    top += [TopLogprob(" the", math.log(0.2))]
    letter = TokenLogprob(" B", 7, math.log(0.6), top)
    probe = probes.read_probe(Completion(text="B", logprobs=[letter]))
    assert probe.answer == Answer("letter", "B")
    assert probe.confidence == pytest.approx(0.75) and probe.mass == pytest.approx(0.8)
    # a number: the probability of the tokens up to the complete answer, not what follows
    tokens = [TokenLogprob(" 4", 1, math.log(0.9)), TokenLogprob("2", 2, math.log(0.5))]
    tokens += [TokenLogprob(" because", 3, math.log(0.1))]
    numbers = ThinkingProbes(ProbeConfig(answer_kind="number"), ThinkingMarkers())
    probe = numbers.read_probe(Completion(text="42 because", logprobs=tokens))
    assert probe.answer == Answer("number", "42") and probe.mass is None
    assert probe.confidence == pytest.approx(0.9 * 0.5)


def test_probe_settings_are_checked(tiny_qwen3_dir: Path) -> None:
    with pytest.raises(ConfigError, match="answer_pattern is not a valid regex"):
        _config(tiny_qwen3_dir, tiny_qwen3_dir, answer_pattern="(unclosed")
    with pytest.raises(ConfigError, match="interval"):
        _config(tiny_qwen3_dir, tiny_qwen3_dir, interval=4)
    config = _config(tiny_qwen3_dir, tiny_qwen3_dir)
    assert (config.budget.probe.agree, config.budget.probe.min_confidence) == (1, 0.99)


def test_the_gateway_says_why_thinking_stopped(
    tiny_qwen3_dir: Path, never_close_thinking_dir: Path
) -> None:
    with running_gateway(_config(tiny_qwen3_dir, never_close_thinking_dir)) as url:
        body = {
            "model": "strong",
            "messages": [{"role": "user", "content": ASK[0].content}],
            "max_tokens": 200,
            "temperature": 0,
        }
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
        assert response.status_code == 200, response.text
        assert response.headers["x-thinkgate-thinking-stop"] == "probe"
        assert response.headers["x-thinkgate-probes"] == "1"
        routing = response.json()["routing"]
        assert routing["thinking_stop"] == "probe" and routing["probes"] == 1
        assert response.json()["usage"]["completion_tokens_details"]["reasoning_tokens"] == 16
        assert sum(metric_samples(url, "thinkgate_thinking_stops_total", reason="probe")) == 1
        assert sum(metric_samples(url, "thinkgate_thinking_probes_total")) == 1
        assert sum(metric_samples(url, "thinkgate_thinking_tokens_saved_total")) == 80 - 16

        opted_out = httpx.post(
            f"{url}/v1/chat/completions", json={**body, "thinking_probe": False}, timeout=120
        )
        assert opted_out.headers["x-thinkgate-thinking-stop"] == "budget"
        assert "x-thinkgate-probes" not in opted_out.headers

        with httpx.stream(
            "POST", f"{url}/v1/chat/completions", json={**body, "stream": True}, timeout=120
        ) as stream:
            lines = [line for line in stream.iter_lines() if line.startswith("data: {")]
        deltas = [json.loads(line[6:])["choices"] for line in lines]
        reasoning = "".join(c[0]["delta"].get("reasoning_content") or "" for c in deltas if c)
        assert reasoning.count("ok") == INTERVAL and "Final answer" not in reasoning
        assert sum(metric_samples(url, "thinkgate_thinking_stops_total", reason="probe")) == 2
