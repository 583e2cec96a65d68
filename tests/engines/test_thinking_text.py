"""Separating reasoning from the answer in text, whole and fed in pieces."""

from __future__ import annotations

import pytest

from router.engines.base import ChatMessage
from router.engines.chat_template import FALLBACK_CHAT_TEMPLATE, render_text
from router.engines.hf_decoding import StopMatcher
from router.engines.thinking_text import (
    ThinkingSplitter,
    count_reasoning_tokens,
    find_first,
    find_last,
    split_thinking,
)


@pytest.mark.parametrize(
    ("text", "in_thinking", "expected"),
    [
        ("2+2 is 4.</think>\n\nFour.", True, ("2+2 is 4.", "Four.")),
        ("<think>\nadd them\n</think>\n\n4", False, ("add them", "4")),
        ("  <think>x</think>y", False, ("x", "y")),
        ("just an answer", False, (None, "just an answer")),
        ("an answer with <think> later", False, (None, "an answer with <think> later")),
        ("never closed", True, ("never closed", "")),
        ("</think>\n\nimmediate", True, ("", "immediate")),
        ("", False, (None, "")),
    ],
)
def test_split_thinking(text: str, in_thinking: bool, expected: tuple[str | None, str]) -> None:
    assert split_thinking(text, in_thinking=in_thinking) == expected


@pytest.mark.parametrize("size", [1, 2, 3, 5, 100])
def test_feeding_in_pieces_gives_the_same_split(size: int) -> None:
    text = "<think>\nLet me think: 2 + 2.\n\n So 4. </think>\n\nThe answer is 4.\n"
    splitter = ThinkingSplitter("<think>", "</think>", in_thinking=False)
    reasoning, content = "", ""
    for start in range(0, len(text), size):
        r, c = splitter.feed(text[start : start + size])
        reasoning, content = reasoning + r, content + c
        assert "<" not in r and "<" not in c, "a marker fragment leaked"
    r, c = splitter.flush()
    assert (reasoning + r, content + c) == split_thinking(text, in_thinking=False)
    assert reasoning + r == "Let me think: 2 + 2.\n\n So 4."


def test_multi_character_custom_markers() -> None:
    text = "[think]a[/th" + "ink]b"
    assert split_thinking(text, "[think]", "[/think]", in_thinking=False) == ("a", "b")


def test_stop_matcher_holds_back_possible_stops() -> None:
    matcher = StopMatcher(["\nUser:"])
    assert matcher.feed("Four.\nUs") == "Four."
    assert matcher.feed("er: more") == ""
    assert matcher.stopped
    other = StopMatcher(["END"])
    assert other.feed("E") == ""
    assert other.feed("gg") == "Egg"
    assert other.flush() == ""


def test_subsequence_search() -> None:
    seq = [1, 2, 3, 1, 2, 3]
    assert find_first(seq, [2, 3]) == 1
    assert find_last(seq, [2, 3]) == 4
    assert find_first(seq, [2, 3], 2) == 4
    assert find_last(seq, [2, 3], end=4) == 1
    assert find_first(seq, [4]) == -1


def test_counting_reasoning_tokens_by_ids_and_by_text() -> None:
    vocab = {1: "a", 2: "b", 3: "</think>", 4: "</", 5: "think>", 6: "<think>"}

    def decode(ids: object) -> str:
        return "".join(vocab[i] for i in ids)  # type: ignore[attr-defined]

    kwargs = {"close_ids": [3], "open_ids": [6], "decode": decode, "close_text": "</think>"}
    assert count_reasoning_tokens([1, 2, 3, 1], in_thinking=True, **kwargs) == (2, 3)  # type: ignore[arg-type]
    assert count_reasoning_tokens([6, 1, 3, 1], in_thinking=False, **kwargs) == (1, 3)  # type: ignore[arg-type]
    assert count_reasoning_tokens([1, 2], in_thinking=False, **kwargs) == (0, 0)  # type: ignore[arg-type]
    assert count_reasoning_tokens([1, 2, 1], in_thinking=True, **kwargs) == (3, 3)  # type: ignore[arg-type]
    # spelled with other tokens: found through the text
    assert count_reasoning_tokens([1, 1, 4, 5, 2], in_thinking=True, **kwargs) == (3, 4)  # type: ignore[arg-type]


def test_fallback_template_renders_plain_turns() -> None:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")),
        bos_token="<bos>",
    )
    messages = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello."),
        ChatMessage("user", "2+2?"),
    ]
    text = render_text(tokenizer, messages, thinking=False, template=FALLBACK_CHAT_TEMPLATE)
    assert text == "<bos>Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: 2+2?\nAssistant:"
    thinking = render_text(tokenizer, messages, thinking=True, template=FALLBACK_CHAT_TEMPLATE)
    assert thinking.endswith("Assistant: <think>\n")
