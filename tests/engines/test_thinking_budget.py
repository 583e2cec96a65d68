"""Budget forcing (issue 4): thinking is cut exactly at the budget, then ``</think>``, then
an answer - per row of a batch, in streaming, with single-token and multi-token markers.

The model under test (``never_close_thinking_dir``) emits `` ok`` forever and never
``</think>`` or an end token, so every close seen here was forced.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

from router.config import EngineConfig, ThinkingMarkers
from router.engines.base import ChatMessage, GenerationRequest
from router.engines.thinking import ThinkingBudgetProcessor
from router.engines.transformers_engine import TransformersEngine
from router.sampling import SamplingParams
from tests.tiny_models import NEVER_CLOSE_TOKEN, tiny_engine_config

QUESTION = [ChatMessage("user", "What is 2+2?")]
TEXT_MARKERS = ThinkingMarkers(open="[think]", close="[/think]", close_sequence="[/think]\n\n")


@pytest.fixture(scope="module")
def engine(never_close_thinking_dir: Path) -> Iterator[TransformersEngine]:
    engine = TransformersEngine(tiny_engine_config(never_close_thinking_dir))
    engine.load()
    yield engine


@pytest.fixture(scope="module")
def text_marker_engine(never_close_thinking_dir: Path) -> TransformersEngine:
    """Markers that are plain text, several tokens each (like Gemma 3 270M's)."""
    base = tiny_engine_config(never_close_thinking_dir)
    engine = TransformersEngine(EngineConfig(**{**base.model_dump(), "thinking": TEXT_MARKERS}))
    engine.load()
    return engine


def _thinking(budget: int | None, max_tokens: int = 24, **kw: object) -> GenerationRequest:
    params = SamplingParams(
        max_tokens=max_tokens, temperature=0.0, thinking=True, thinking_budget=budget, **kw
    )
    return GenerationRequest(QUESTION, params)


def _oks(count: int) -> str:
    return (NEVER_CLOSE_TOKEN * count).strip()


@pytest.mark.parametrize("budget", [0, 1, 5, 13])
def test_thinking_is_cut_exactly_at_the_budget(engine: TransformersEngine, budget: int) -> None:
    [result] = engine.generate([_thinking(budget)])
    [choice] = result.choices
    assert choice.reasoning_tokens == budget
    assert choice.reasoning == _oks(budget)
    assert choice.forced_close
    assert choice.thinking_budget == budget
    # budget thinking tokens + "</think>" + "\n" + "\n", the rest is the answer
    close_tokens = len(engine.tokenizer.encode("</think>\n\n", add_special_tokens=False))
    assert choice.text == _oks(24 - budget - close_tokens)
    assert choice.completion_tokens == 24
    assert choice.finish_reason == "length"


def test_without_a_budget_the_model_thinks_until_max_tokens(engine: TransformersEngine) -> None:
    [result] = engine.generate([_thinking(None, max_tokens=10)])
    [choice] = result.choices
    assert choice.reasoning_tokens == 10
    assert choice.text == ""
    assert not choice.forced_close


def test_a_batch_with_different_budgets_cuts_each_row_at_its_own(
    engine: TransformersEngine,
) -> None:
    budgets = [7, 0, None, 3, 11]
    long_question = [ChatMessage("user", "Please explain why the sky is blue, step by step.")]
    requests = [_thinking(b) for b in budgets]
    # different prompt lengths, so rows are left-padded differently
    requests[3] = GenerationRequest(long_question, requests[3].params)
    results = engine.generate(requests)
    for budget, result in zip(budgets, results, strict=True):
        [choice] = result.choices
        assert choice.reasoning_tokens == (24 if budget is None else budget)
        assert choice.forced_close is (budget is not None)
        if budget is not None:
            assert choice.reasoning == _oks(budget)
            assert choice.text.startswith("ok")


def test_every_choice_of_n_is_cut(engine: TransformersEngine) -> None:
    [result] = engine.generate([_thinking(4, n=3, seed=1)])
    assert [c.reasoning_tokens for c in result.choices] == [4, 4, 4]
    assert all(c.text for c in result.choices)


def test_streaming_cuts_at_the_budget_and_separates_the_deltas(
    engine: TransformersEngine,
) -> None:
    events = list(engine.stream(_thinking(6, max_tokens=16)))
    reasoning = "".join(e.reasoning for e in events)
    content = "".join(e.content for e in events)
    final = events[-1].completion
    assert final is not None and final.forced_close
    assert final.reasoning_tokens == 6
    assert reasoning == final.reasoning == _oks(6)
    assert content == final.text and content.startswith("ok")
    first_content = next(i for i, e in enumerate(events) if e.content)
    assert not any(e.reasoning for e in events[first_content:]), "reasoning after the answer"
    assert events[0].prompt_tokens == engine.count_prompt_tokens(QUESTION, thinking=True)
    assert sum(1 for e in events if e.reasoning) == 6, "one reasoning delta per token"


def test_streaming_and_generate_agree(engine: TransformersEngine) -> None:
    request = _thinking(5, max_tokens=14)
    [result] = engine.generate([request])
    final = list(engine.stream(request))[-1].completion
    assert final == result.choices[0]


def test_thinking_off_produces_no_reasoning(engine: TransformersEngine) -> None:
    params = SamplingParams(max_tokens=12, temperature=0.0, thinking=False, thinking_budget=3)
    [result] = engine.generate([GenerationRequest(QUESTION, params)])
    [choice] = result.choices
    assert choice.reasoning is None
    assert choice.reasoning_tokens == 0
    assert not choice.forced_close
    assert "think" not in choice.text
    assert engine.count_prompt_tokens(QUESTION, thinking=False) < engine.count_prompt_tokens(
        QUESTION, thinking=True
    )


@pytest.mark.parametrize("budget", [0, 4, 9])
def test_multi_token_text_markers_are_forced_exactly(
    text_marker_engine: TransformersEngine, budget: int
) -> None:
    tokenizer = text_marker_engine.tokenizer
    assert len(tokenizer.encode("[/think]", add_special_tokens=False)) > 1
    [result] = text_marker_engine.generate([_thinking(budget, max_tokens=30)])
    [choice] = result.choices
    assert choice.reasoning_tokens == budget
    assert choice.reasoning == _oks(budget)
    assert choice.forced_close and choice.text.startswith("ok")
    streamed = list(text_marker_engine.stream(_thinking(budget, max_tokens=30)))
    assert "".join(e.reasoning for e in streamed) == choice.reasoning
    assert "".join(e.content for e in streamed) == choice.text


# -- the processor on its own, inside transformers' generate ------------------------------


@pytest.fixture(scope="module")
def hf(never_close_thinking_dir: Path) -> tuple[object, object]:
    tokenizer = AutoTokenizer.from_pretrained(never_close_thinking_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(never_close_thinking_dir).eval()
    return model, tokenizer


def test_processor_works_in_transformers_generate_with_per_row_budgets(
    hf: tuple[object, object],
) -> None:
    model, tokenizer = hf
    prompts = ["<|im_start|>user\nhi<|im_end|>\n<think>", "a much longer prompt here <think>"]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)  # type: ignore[operator]
    processor = ThinkingBudgetProcessor(
        tokenizer,  # type: ignore[arg-type]
        ThinkingMarkers(),
        budgets=[2, 5],
        prompt_length=batch["input_ids"].shape[1],
    )
    assert isinstance(processor, LogitsProcessor)
    out = model.generate(  # type: ignore[attr-defined]
        **batch,
        max_new_tokens=12,
        do_sample=False,
        logits_processor=LogitsProcessorList([processor]),
    )
    generated = out[:, batch["input_ids"].shape[1] :].tolist()
    ok = tokenizer.convert_tokens_to_ids("Ġok")  # type: ignore[attr-defined]
    close = tokenizer.encode("</think>\n\n", add_special_tokens=False)  # type: ignore[attr-defined]
    for row, budget in zip(generated, [2, 5], strict=True):
        assert row[:budget] == [ok] * budget
        assert row[budget : budget + len(close)] == close
        assert row[budget + len(close) :] == [ok] * (12 - budget - len(close))


def _ids(tokenizer: object, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))  # type: ignore[attr-defined]


def test_processor_state_comes_from_the_tokens_not_from_calls(hf: tuple[object, object]) -> None:
    _, tokenizer = hf
    processor = ThinkingBudgetProcessor(tokenizer, ThinkingMarkers(), budgets=[3])  # type: ignore[arg-type]
    close = _ids(tokenizer, "</think>\n\n")
    row = _ids(tokenizer, "<think> ok ok ok")
    for _ in range(3):  # asking again changes nothing
        assert processor.forced_token(row, 3) == close[0]
    assert processor.forced_token(row + close[:1], 3) == close[1]
    assert processor.forced_token(row + close, 3) is None
    assert processor.forced_token(_ids(tokenizer, "<think> ok ok"), 3) is None
    scores = torch.zeros(1, len(tokenizer))  # type: ignore[arg-type]
    forced = processor(torch.tensor([row]), scores.clone())
    assert int(forced.argmax()) == close[0] and torch.isinf(forced).sum() == len(tokenizer) - 1  # type: ignore[arg-type]


def test_processor_leaves_a_naturally_closed_section_alone(hf: tuple[object, object]) -> None:
    _, tokenizer = hf
    processor = ThinkingBudgetProcessor(tokenizer, ThinkingMarkers(), budgets=[2])  # type: ignore[arg-type]
    assert processor.forced_token(_ids(tokenizer, "<think> ok</think> ok ok ok"), 2) is None
    assert processor.forced_token(_ids(tokenizer, "no thinking here ok ok ok"), 2) is None
    # a section opened after a closed one is never forced (and cannot be opened: banned)
    row = _ids(tokenizer, "<think> ok</think> ok <think> ok ok")
    assert processor.forced_token(row, 2) is None
    assert processor.banned_token(row) == _ids(tokenizer, "<think>")[0]
    assert processor.banned_token(_ids(tokenizer, "<think> ok ok")) is None


def test_processor_does_not_count_prompt_tokens_after_the_marker(
    hf: tuple[object, object],
) -> None:
    _, tokenizer = hf
    prompt = _ids(tokenizer, "<think>\n")
    processor = ThinkingBudgetProcessor(
        tokenizer,  # type: ignore[arg-type]
        ThinkingMarkers(),
        budgets=[1],
        prompt_length=len(prompt),
    )
    assert processor.forced_token(prompt, 1) is None
    assert processor.forced_token(prompt + _ids(tokenizer, " ok"), 1) is not None


def test_processor_completes_a_close_marker_the_model_began_at_the_budget(
    hf: tuple[object, object],
) -> None:
    _, tokenizer = hf
    markers = TEXT_MARKERS
    processor = ThinkingBudgetProcessor(tokenizer, markers, budgets=[3])  # type: ignore[arg-type]
    close = _ids(tokenizer, markers.close_sequence)
    row = _ids(tokenizer, "[think]") + _ids(tokenizer, " ok ok") + close[:1]
    assert processor.forced_token(row, 3) == close[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budgets": [-1]}, "budgets must be >= 0"),
        ({"budgets": []}, "one budget per batch row"),
        ({"budgets": [1], "prompt_length": -2}, "prompt_length"),
        (
            {"budgets": [1], "markers": ThinkingMarkers(close_sequence="\n</think>")},
            "must start with the close marker",
        ),
    ],
)
def test_processor_checks_its_arguments(
    hf: tuple[object, object], kwargs: dict[str, object], message: str
) -> None:
    _, tokenizer = hf
    arguments: dict[str, object] = {"markers": ThinkingMarkers(), **kwargs}
    with pytest.raises(ValueError, match=message):
        ThinkingBudgetProcessor(tokenizer, **arguments)  # type: ignore[arg-type]


def test_processor_rejects_a_batch_of_the_wrong_size(hf: tuple[object, object]) -> None:
    _, tokenizer = hf
    processor = ThinkingBudgetProcessor(tokenizer, ThinkingMarkers(), budgets=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1 rows for 2 budgets"):
        processor(torch.tensor([[1, 2]]), torch.zeros(1, 10))  # type: ignore[arg-type]


def test_a_closed_thinking_section_cannot_be_reopened(tiny_gemma3_dir: Path) -> None:
    """Sampling must not open a second `<think>` after the first closed: that section would
    escape the budget (seen as reasoning_tokens > budget with random tiny models)."""
    from router.engines.base import ChatMessage, GenerationRequest
    from router.engines.transformers_engine import TransformersEngine
    from router.sampling import SamplingParams
    from tests.tiny_models import tiny_engine_config

    engine = TransformersEngine(tiny_engine_config(tiny_gemma3_dir))
    engine.load()
    params = SamplingParams(max_tokens=200, thinking=True, thinking_budget=4, n=16, seed=3)
    [result] = engine.generate([GenerationRequest([ChatMessage("user", "hi")], params)])
    assert all(c.reasoning_tokens <= 4 for c in result.choices)
    assert all("<think>" not in c.text for c in result.choices)


# -- multi-token text markers, one token per character (issue 14 item 6) -------------------


class CharTokenizer:
    """One token per character (its code point), plus token 1 spelling ``"</"``: the close
    marker can come out as other tokens than its encoding."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, token_ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join("</" if t == 1 else chr(t) for t in token_ids)


CHARS = CharTokenizer()
PROMPT = CHARS.encode("<turn>user\nhi<turn>model\n<think>\n")


def _forced_run(processor: ThinkingBudgetProcessor, model_text: str, steps: int) -> str:
    """Generate ``steps`` tokens: the model says ``model_text`` (cycled), the processor
    forces or bans; returns the generated text."""
    row = list(PROMPT)
    for step in range(steps):
        scores = torch.zeros(1, 256)
        scores[0, ord(model_text[step % len(model_text)])] = 10.0
        scores = processor(torch.tensor([row]), scores)
        row.append(int(scores.argmax()))
    return CHARS.decode(row[len(PROMPT) :])


def test_a_reopened_text_marker_gets_no_fresh_budget_and_no_forced_close() -> None:
    """Budget 5 with a character-level ``<think>``: the section is cut after 5 characters;
    an answer that then writes ``<think>`` is not forced again (the old rule anchored on
    the last open marker and injected ``</think>`` into the answer)."""
    processor = ThinkingBudgetProcessor(
        CHARS, ThinkingMarkers(), budgets=[5], prompt_length=len(PROMPT)
    )
    answer_text = "abcde" + "</think>\n\nsee <think> later, more text here"
    forced = len("abcde</think>\n\n")
    row = list(PROMPT) + CHARS.encode(answer_text)
    for end in range(len(PROMPT) + forced, len(row) + 1):
        assert processor.forced_token(row[:end], 5) is None, CHARS.decode(row[:end])
    text = _forced_run(processor, "xy<think>zzzzzzzzzzzzzzzzzz", 40)
    assert text.startswith("xy<th" + "</think>\n\n")
    assert text.count("</think>") == 1, text
    # the answer may not open a section again: the open marker's last character is banned
    assert "<think>" not in text[len("xy<th</think>\n\n") :], text


def test_a_close_marker_spelled_with_other_tokens_is_seen_as_text() -> None:
    processor = ThinkingBudgetProcessor(
        CHARS, ThinkingMarkers(), budgets=[10], prompt_length=len(PROMPT)
    )
    # "ab" then "</think>" spelled [1, t, h, i, n, k, >]: closed before the budget
    row = list(PROMPT) + CHARS.encode("ab") + [1] + CHARS.encode("think>\n\nanswer text")
    for end in range(len(PROMPT), len(row) + 1):
        assert processor.forced_token(row[:end], 10) is None, CHARS.decode(row[:end])
    assert processor.banned_token(row + CHARS.encode("<think")) == ord(">")


def test_an_open_marker_in_an_earlier_turn_is_not_the_anchor() -> None:
    history = CHARS.encode("<think>old</think>answer<turn>user\nagain<turn>model\n<think>\n")
    processor = ThinkingBudgetProcessor(
        CHARS, ThinkingMarkers(), budgets=[3], prompt_length=len(history)
    )
    assert processor.forced_token(history + CHARS.encode("ab"), 3) is None
    assert processor.forced_token(history + CHARS.encode("abc"), 3) == ord("<")
    # thinking off in this turn: an open marker generated first is the anchor
    plain = CHARS.encode("<think>old</think>answer<turn>model\n")
    off = ThinkingBudgetProcessor(CHARS, ThinkingMarkers(), budgets=[2], prompt_length=len(plain))
    assert off.forced_token(plain + CHARS.encode("<think>ab"), 2) == ord("<")
    assert off.forced_token(plain + CHARS.encode("hello"), 2) is None
