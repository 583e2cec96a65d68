"""Engine-side ``continue_final_message``: the prompt ends inside the last assistant message.

Rendering is checked on the three template kinds the tiny models cover (ChatML, Gemma
turns, the fallback for base models); generation on the tiny Qwen3 through the
`TransformersEngine`, against its own `next_token_logprobs`, which renders the same
prompt (generation prompt plus the assistant prefix).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router._exceptions import InvalidRequestError
from router.config import ThinkingMarkers
from router.engines.base import ChatMessage, GenerationRequest
from router.engines.chat_template import choose_template, render_prompt, render_text
from router.engines.transformers_engine import TransformersEngine
from router.sampling import SamplingParams
from tests.tiny_models import tiny_engine_config

PREFIX = "<think>\nok</think>\n\n"
MESSAGES = [ChatMessage("user", "Hi"), ChatMessage("assistant", PREFIX)]


def tokenizer_of(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


@pytest.mark.parametrize(
    ("fixture", "head"),
    [
        ("tiny_qwen3_dir", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
        ("tiny_gemma3_dir", "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"),
        ("tiny_base_dir", "<bos>User: Hi\nAssistant: "),
    ],
)
def test_rendered_prompt_ends_inside_the_assistant_message(
    request: pytest.FixtureRequest, fixture: str, head: str
) -> None:
    tokenizer = tokenizer_of(request.getfixturevalue(fixture))
    template, _ = choose_template(tokenizer, None)
    for thinking in (False, True):
        text = render_text(
            tokenizer, MESSAGES, thinking=thinking, template=template, continue_final=True
        )
        assert text == head + PREFIX  # verbatim, trailing newlines kept, nothing after
    prompt = render_prompt(
        tokenizer,
        MESSAGES,
        thinking=True,
        markers=ThinkingMarkers(),
        template=None,
        continue_final=True,
    )
    assert not prompt.thinking
    assert tokenizer.decode(prompt.ids) == head + PREFIX


def test_continuing_needs_a_final_assistant_message(tiny_qwen3_dir: Path) -> None:
    tokenizer = tokenizer_of(tiny_qwen3_dir)
    template, _ = choose_template(tokenizer, None)
    with pytest.raises(InvalidRequestError) as caught:
        render_text(tokenizer, MESSAGES[:1], thinking=False, template=template, continue_final=True)
    assert caught.value.param == "continue_final_message"


def test_engine_returns_only_the_continuation(tiny_qwen3_dir: Path) -> None:
    engine = TransformersEngine(tiny_engine_config(tiny_qwen3_dir))
    engine.load()
    prefix = "The answer is"
    messages = [ChatMessage("user", "What is 2+2?"), ChatMessage("assistant", prefix)]
    params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=1)
    [result] = engine.generate([GenerationRequest(messages, params, continue_final_message=True)])
    [choice] = result.choices
    [first] = choice.logprobs or []
    expected = engine.next_token_logprobs(messages[:1], prefix, [first.token])
    assert first.logprob == pytest.approx(expected[first.token], abs=1e-4)
    assert prefix not in choice.text and choice.reasoning is None
    rendered = engine.tokenizer.decode(
        engine.tokenizer.encode("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    )
    assert result.prompt_tokens == len(engine.tokenizer.encode(rendered + prefix))
