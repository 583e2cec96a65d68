"""Continuous batching (issue 15): requests join the running batch at the next decoding step
and leave it when done; a closed stream frees its rows at the next step; a request that
joins mid-way answers exactly as it does alone (greedy and seeded), on Qwen3 (full
attention) and Gemma3 (sliding-window layers) caches.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from router.engines.base import ChatMessage, GenerationRequest
from router.engines.transformers_engine import TransformersEngine
from router.sampling import SamplingParams
from tests.tiny_models import tiny_engine_config


def _engine(path: Path) -> TransformersEngine:
    engine = TransformersEngine(tiny_engine_config(path))
    engine.load()
    return engine


@pytest.fixture(scope="module")
def never_close(never_close_thinking_dir: Path) -> TransformersEngine:
    return _engine(never_close_thinking_dir)


def _request(text: str, max_tokens: int, **kw: object) -> GenerationRequest:
    settings: dict[str, object] = {"temperature": 0.0, **kw}
    params = SamplingParams(max_tokens=max_tokens, **settings)  # type: ignore[arg-type]
    return GenerationRequest([ChatMessage("user", text)], params)


def _wait_idle(engine: TransformersEngine, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while engine.scheduler.running_rows and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.scheduler.running_rows == 0


def test_a_short_request_arriving_during_a_long_one_finishes_first(
    never_close: TransformersEngine,
) -> None:
    """The model never ends on its own: the long request runs all 400 tokens; the short one
    arrives after the long one has started and must not wait for it."""
    long_done = threading.Event()
    seen: list[int] = []

    def run_long() -> None:
        for event in never_close.stream(_request("a long question", 400)):
            seen.append(event.index)
        long_done.set()

    worker = threading.Thread(target=run_long)
    worker.start()
    while len(seen) < 5:
        time.sleep(0.005)
    [short] = never_close.generate([_request("short", 4)])
    shared = list(never_close.scheduler.batch_history)[-8:]
    assert short.choices[0].completion_tokens == 4
    assert not long_done.is_set(), "the short request waited for the long one"
    tokens_when_short_done = len(seen)
    worker.join()
    assert tokens_when_short_done < 400
    assert 2 in shared, shared  # they really shared decoding steps


def test_a_closed_stream_frees_its_rows_at_the_next_step(never_close: TransformersEngine) -> None:
    _wait_idle(never_close)
    stream = never_close.stream(_request("a long question", 400))
    for _ in range(3):
        next(stream)
    steps_at_close = len(never_close.scheduler.batch_history)
    stream.close()  # what LocalTier does when the client goes away
    _wait_idle(never_close)
    after = len(never_close.scheduler.batch_history) - steps_at_close
    assert after <= 1, f"{after} decoding steps ran after the stream was closed"


@pytest.mark.parametrize("arch", ["qwen3", "gemma3"])
def test_a_request_joining_mid_way_answers_as_it_does_alone(
    arch: str, tiny_qwen3_dir: Path, tiny_gemma3_dir: Path
) -> None:
    engine = _engine(tiny_qwen3_dir if arch == "qwen3" else tiny_gemma3_dir)
    joiners = [
        _request("What is 2+2?", 12),
        _request(
            "Tell me about the capital of France in detail please", 20, temperature=0.9, seed=5
        ),
        _request("hi", 16, temperature=1.0, top_k=20, top_p=0.8, seed=11, n=2),
        _request("Yes or no?", 10, logprobs=True, top_logprobs=2),
    ]
    alone = [engine.generate([r])[0] for r in joiners]
    long = _request("Count: 1 2 3 4 5 6 7 8 9 0 and keep counting for a while", 60)
    stream = engine.stream(long)
    next(stream)
    next(stream)
    results: list[object] = [None] * len(joiners)

    def submit(i: int) -> None:
        time.sleep(0.01 * i)  # arrive at different steps
        results[i] = engine.generate([joiners[i]])[0]

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(joiners))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    list(stream)
    assert max(engine.scheduler.batch_history) >= 2
    for got, want in zip(results, alone, strict=True):
        assert got is not None
        assert [c.text for c in got.choices] == [c.text for c in want.choices]  # type: ignore[attr-defined]
        assert [c.completion_tokens for c in got.choices] == [  # type: ignore[attr-defined]
            c.completion_tokens for c in want.choices
        ]


def test_a_generate_whose_caller_left_frees_its_rows_at_the_next_step(
    never_close: TransformersEngine,
) -> None:
    """Through `LocalTier` (what a Serve replica runs): the awaiting task is cancelled, as
    when the client disconnects, and the engine stops decoding that request."""
    import asyncio

    from router.tiers import LocalTier

    _wait_idle(never_close)
    tier = LocalTier("small", never_close)
    tier.load()

    async def leave_early() -> int:
        task = asyncio.ensure_future(tier.generate(_request("a long question", 400)))
        while len(never_close.scheduler.batch_history) < steps_before + 3:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return len(never_close.scheduler.batch_history)

    steps_before = len(never_close.scheduler.batch_history)
    steps_at_cancel = asyncio.run(leave_early())
    _wait_idle(never_close)
    after = len(never_close.scheduler.batch_history) - steps_at_cancel
    assert after <= 2, f"{after} decoding steps ran after the caller left"


def test_a_request_that_ends_at_prefill_takes_no_decoding_step(
    never_close: TransformersEngine,
) -> None:
    """A one-token answer is finished by its prefill. The scheduler used to keep a reference
    to the batch it had just emptied and ran one more step on it, feeding the finished row a
    second token: its completion (2 tokens, 2 log-probabilities) replaced the first one while
    the caller was reading it - the ``max_tokens=1`` answer with two logprob entries seen in
    loaded CI runs."""
    _wait_idle(never_close)
    assert never_close.scheduler.wait_idle(60)
    steps_before = len(never_close.scheduler.batch_history)
    [result] = never_close.generate([_request("one token", 1, logprobs=True, top_logprobs=2)])
    assert never_close.scheduler.wait_idle(60)
    [choice] = result.choices
    assert choice.completion_tokens == 1
    assert len(choice.logprobs or []) == 1
    assert len(never_close.scheduler.batch_history) == steps_before, "a step ran after prefill"


def test_one_token_answers_under_concurrency_have_one_logprob_each(
    never_close: TransformersEngine,
) -> None:
    """The CI failure itself: ``max_tokens=1`` requests with log-probabilities sent from many
    threads at once, beside longer requests joining and leaving the batch. Each answer has
    one token and one logprob entry, and the same as alone (greedy). Before 4c25a17 a batch
    emptied by prefill-finished rows took one more step and gave such an answer two."""
    import concurrent.futures

    _wait_idle(never_close)
    one = _request("one token", 1, logprobs=True, top_logprobs=2)
    [alone] = never_close.generate([one]).pop().choices
    assert len(alone.logprobs or []) == 1

    def ask(i: int) -> object:
        if i % 4 == 3:  # longer requests keep the batch changing around the 1-token ones
            return never_close.generate([_request("a longer question", 3 + i % 5)])[0]
        return never_close.generate([one])[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        for _ in range(5):
            results = list(pool.map(ask, range(32)))
            for i, result in enumerate(results):
                if i % 4 == 3:
                    continue
                [choice] = result.choices  # type: ignore[attr-defined]
                assert choice.completion_tokens == 1
                assert [(lp.token, lp.logprob) for lp in choice.logprobs or []] == [
                    (lp.token, lp.logprob) for lp in alone.logprobs or []
                ]
    _wait_idle(never_close)
