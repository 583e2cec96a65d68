"""The transformers engine over tiny real models: sampling controls, logprobs, templates,
context length, scoring, health, adapters, loading errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from router._exceptions import ConfigError, ContextLengthError, InvalidRequestError
from router.config import EngineConfig
from router.engines.base import ChatMessage, Engine, GenerationRequest
from router.engines.chat_template import FALLBACK_CHAT_TEMPLATE
from router.engines.factory import create_engine
from router.engines.transformers_engine import TransformersEngine
from router.sampling import SamplingParams
from tests.tiny_models import tiny_engine_config

QUESTION = [ChatMessage("user", "What is 2+2?")]


@pytest.fixture(scope="module")
def qwen3(tiny_qwen3_dir: Path) -> TransformersEngine:
    engine = TransformersEngine(tiny_engine_config(tiny_qwen3_dir))
    engine.load()
    return engine


@pytest.fixture(scope="module")
def gemma3(tiny_gemma3_dir: Path) -> TransformersEngine:
    engine = TransformersEngine(tiny_engine_config(tiny_gemma3_dir))
    engine.load()
    return engine


def _one(engine: TransformersEngine, messages: list[ChatMessage] = QUESTION, **kw: object) -> str:
    params = SamplingParams(**{"max_tokens": 12, "temperature": 0.0, **kw})  # type: ignore[arg-type]
    [result] = engine.generate([GenerationRequest(messages, params)])
    return result.choices[0].text


def test_factory_builds_a_transformers_engine_that_meets_the_protocol(
    tiny_qwen3_dir: Path,
) -> None:
    engine = create_engine(tiny_engine_config(tiny_qwen3_dir, served_name="tiny"))
    assert isinstance(engine, TransformersEngine) and isinstance(engine, Engine)
    assert engine.model_name == "tiny"


@pytest.mark.parametrize("name", ["qwen3", "gemma3"])
def test_both_architectures_generate_and_report_usage(
    request: pytest.FixtureRequest, name: str
) -> None:
    engine: TransformersEngine = request.getfixturevalue(name)
    engine.check_health()
    [result] = engine.generate([GenerationRequest(QUESTION, SamplingParams(max_tokens=8))])
    assert result.model == name
    assert result.prompt_tokens == engine.count_prompt_tokens(QUESTION, thinking=False)
    [choice] = result.choices
    assert 1 <= choice.completion_tokens <= 8
    assert choice.reasoning is None and choice.reasoning_tokens == 0
    assert engine.context_length == 512


def test_greedy_is_deterministic_and_independent_of_the_batch(qwen3: TransformersEngine) -> None:
    alone = _one(qwen3)
    assert alone == _one(qwen3)
    longer = [ChatMessage("user", "Write a short poem about the sea, please, in a few lines.")]
    greedy = SamplingParams(max_tokens=12, temperature=0.0)
    results = qwen3.generate(
        [GenerationRequest(longer, greedy), GenerationRequest(QUESTION, greedy)]
    )
    assert results[1].choices[0].text == alone


def test_a_seed_reproduces_samples_whatever_else_is_in_the_batch(
    qwen3: TransformersEngine,
) -> None:
    seeded = SamplingParams(max_tokens=12, temperature=1.0, seed=7)
    first = _one(qwen3, temperature=1.0, seed=7)
    assert first == _one(qwen3, temperature=1.0, seed=7)
    other = GenerationRequest([ChatMessage("user", "Hello there")], SamplingParams(seed=1))
    batched = qwen3.generate([other, GenerationRequest(QUESTION, seeded)])
    assert batched[1].choices[0].text == first
    samples = {_one(qwen3, temperature=1.0, seed=s) for s in range(4)}
    assert len(samples) > 1


def test_n_returns_that_many_choices(qwen3: TransformersEngine) -> None:
    params = SamplingParams(max_tokens=6, temperature=1.0, n=3, seed=3)
    [result] = qwen3.generate([GenerationRequest(QUESTION, params)])
    assert len(result.choices) == 3
    assert len({c.text for c in result.choices}) > 1
    assert result.completion_tokens == sum(c.completion_tokens for c in result.choices)


def test_top_k_one_and_a_tiny_top_p_equal_greedy(qwen3: TransformersEngine) -> None:
    greedy = _one(qwen3)
    assert _one(qwen3, temperature=1.5, top_k=1, seed=5) == greedy
    assert _one(qwen3, temperature=1.5, top_p=1e-6, seed=5) == greedy


def test_stop_sequences_cut_the_answer(qwen3: TransformersEngine) -> None:
    full = _one(qwen3, max_tokens=16)
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert stop.strip(), f"pick a visible stop from {full!r}"
    params = SamplingParams(max_tokens=16, temperature=0.0, stop=(stop,))
    [result] = qwen3.generate([GenerationRequest(QUESTION, params)])
    [choice] = result.choices
    assert choice.finish_reason == "stop"
    assert choice.text == full[: full.index(stop)]
    assert stop not in choice.text


def test_max_tokens_ends_with_length(qwen3: TransformersEngine) -> None:
    params = SamplingParams(max_tokens=3, temperature=0.0)
    [result] = qwen3.generate([GenerationRequest(QUESTION, params)])
    choice = result.choices[0]
    assert choice.completion_tokens <= 3
    if choice.completion_tokens == 3:
        assert choice.finish_reason == "length"


def test_logprobs_cover_the_answer_tokens(qwen3: TransformersEngine) -> None:
    params = SamplingParams(max_tokens=8, temperature=0.0, logprobs=True, top_logprobs=3)
    [result] = qwen3.generate([GenerationRequest(QUESTION, params)])
    choice = result.choices[0]
    assert choice.logprobs is not None and len(choice.logprobs) >= 1
    assert "".join(t.token for t in choice.logprobs).strip() == choice.text.strip()
    for token in choice.logprobs:
        assert token.logprob <= 0.0
        assert len(token.top) == 3
        assert [t.logprob for t in token.top] == sorted(
            (t.logprob for t in token.top), reverse=True
        )
        assert token.top[0].logprob == pytest.approx(token.logprob)  # greedy picks the top
    no_logprobs = qwen3.generate([GenerationRequest(QUESTION, SamplingParams(max_tokens=4))])
    assert no_logprobs[0].choices[0].logprobs is None


def test_streaming_matches_generate(qwen3: TransformersEngine) -> None:
    params = SamplingParams(max_tokens=10, temperature=0.0, logprobs=True)
    [result] = qwen3.generate([GenerationRequest(QUESTION, params)])
    events = list(qwen3.stream(GenerationRequest(QUESTION, params)))
    assert events[0].prompt_tokens == result.prompt_tokens
    assert "".join(e.content for e in events) == result.choices[0].text
    assert [t for e in events for t in e.logprobs] == result.choices[0].logprobs
    assert events[-1].completion == result.choices[0]
    assert events[-1].finish_reason == result.choices[0].finish_reason
    assert all(e.completion is None for e in events[:-1])


def test_streaming_n_choices_each_end_once(qwen3: TransformersEngine) -> None:
    params = SamplingParams(max_tokens=5, temperature=1.0, n=2, seed=11)
    events = list(qwen3.stream(GenerationRequest(QUESTION, params)))
    ends = [e.index for e in events if e.completion is not None]
    assert sorted(ends) == [0, 1]
    [result] = qwen3.generate([GenerationRequest(QUESTION, params)])
    for index, choice in enumerate(result.choices):
        assert "".join(e.content for e in events if e.index == index) == choice.text


def test_the_model_template_renders_thinking(qwen3: TransformersEngine) -> None:
    tokenizer = qwen3.tokenizer
    ids = tokenizer.encode(
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n",
        add_special_tokens=False,
    )
    assert qwen3.count_prompt_tokens(QUESTION, thinking=True) == len(ids)


def test_base_models_get_the_fallback_template_and_its_stop(tiny_base_dir: Path) -> None:
    engine = TransformersEngine(tiny_engine_config(tiny_base_dir))
    engine.load()
    assert engine.tokenizer.chat_template is None
    text = "<bos>User: What is 2+2?\nAssistant:"
    expected = engine.tokenizer.encode(text, add_special_tokens=False)
    assert engine.count_prompt_tokens(QUESTION, thinking=False) == len(expected)
    for choice in engine.generate(
        [GenerationRequest(QUESTION, SamplingParams(max_tokens=24, seed=s)) for s in range(3)]
    ):
        assert "\nUser:" not in choice.choices[0].text


def test_a_config_template_overrides_the_tokenizer_one(tiny_qwen3_dir: Path) -> None:
    engine = TransformersEngine(
        tiny_engine_config(tiny_qwen3_dir, chat_template=FALLBACK_CHAT_TEMPLATE)
    )
    engine.load()
    expected = engine.tokenizer.encode("User: What is 2+2?\nAssistant:", add_special_tokens=False)
    # the tiny tokenizer adds no BOS of its own; the fallback adds its bos_token
    assert engine.count_prompt_tokens(QUESTION, thinking=False) == len(expected) + 1


def test_a_template_that_always_opens_thinking_puts_the_prompt_in_thinking_mode(
    tiny_qwen3_dir: Path,
) -> None:
    always = "{% for m in messages %}{{ m['content'] }}{% endfor %}\n<think>\n"
    engine = TransformersEngine(tiny_engine_config(tiny_qwen3_dir, chat_template=always))
    engine.load()
    params = SamplingParams(max_tokens=6, temperature=0.0, thinking=False)
    [result] = engine.generate([GenerationRequest(QUESTION, params)])
    assert result.choices[0].reasoning is not None


def test_context_length_is_enforced(tiny_qwen3_dir: Path) -> None:
    engine = TransformersEngine(tiny_engine_config(tiny_qwen3_dir, context_length=40))
    engine.load()
    assert engine.context_length == 40
    prompt = engine.count_prompt_tokens(QUESTION, thinking=False)
    fits = SamplingParams(max_tokens=40 - prompt, temperature=0.0)
    assert engine.generate([GenerationRequest(QUESTION, fits)])[0].choices
    too_long = SamplingParams(max_tokens=41 - prompt)
    with pytest.raises(ContextLengthError) as caught:
        engine.generate([GenerationRequest(QUESTION, too_long)])
    assert caught.value.param == "max_tokens"
    with pytest.raises(ContextLengthError):
        list(engine.stream(GenerationRequest([ChatMessage("user", "ok " * 60)], fits)))


def test_a_request_that_does_not_fit_fails_alone_in_its_batch(tiny_qwen3_dir: Path) -> None:
    engine = TransformersEngine(tiny_engine_config(tiny_qwen3_dir, context_length=40))
    engine.load()
    fits = SamplingParams(max_tokens=4, temperature=0.0)
    long = GenerationRequest([ChatMessage("user", "ok " * 60)], fits)
    short = GenerationRequest(QUESTION, fits)
    outcomes = engine.generate_each([short, long, short])
    assert isinstance(outcomes[1], ContextLengthError)
    [alone] = engine.generate([short])
    for outcome in (outcomes[0], outcomes[2]):
        assert not isinstance(outcome, ContextLengthError)
        assert outcome.choices[0].text == alone.choices[0].text
    with pytest.raises(ContextLengthError):  # generate raises the first error
        engine.generate([short, long])


def test_empty_messages_are_rejected(qwen3: TransformersEngine) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        qwen3.count_prompt_tokens([], thinking=False)
    assert caught.value.param == "messages"


def test_next_token_logprobs_match_the_model(qwen3: TransformersEngine) -> None:
    tokens = ["<CN>", "<UN>", " Yes"]
    got = qwen3.next_token_logprobs(QUESTION, " The answer is", tokens)
    assert set(got) == set(tokens) and all(v <= 0.0 for v in got.values())
    tokenizer = qwen3.tokenizer
    text = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n The answer is"
    ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
    with torch.inference_mode():
        logits = qwen3._model(input_ids=ids).logits[0, -1]
    expected = torch.log_softmax(logits.float(), dim=-1)
    for token in tokens:
        [token_id] = tokenizer.encode(token, add_special_tokens=False)
        assert got[token] == pytest.approx(float(expected[token_id]), abs=1e-4)


def test_next_token_logprobs_refuse_multi_token_strings(qwen3: TransformersEngine) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        qwen3.next_token_logprobs(QUESTION, "", ["definitely not one token"])
    assert caught.value.param == "tokens"


def test_check_health_catches_a_broken_model(tiny_qwen3_dir: Path) -> None:
    engine = TransformersEngine(tiny_engine_config(tiny_qwen3_dir))
    engine.load()
    engine.check_health()
    with torch.no_grad():
        engine._model.get_output_embeddings().weight.fill_(float("nan"))
    with pytest.raises(RuntimeError, match="non-finite"):
        engine.check_health()


def test_using_an_engine_before_load_says_so(tiny_qwen3_dir: Path) -> None:
    engine = TransformersEngine(tiny_engine_config(tiny_qwen3_dir))
    with pytest.raises(RuntimeError, match="not loaded"):
        engine.generate([GenerationRequest(QUESTION, SamplingParams())])


def test_a_missing_model_is_a_config_error(tmp_path: Path) -> None:
    engine = TransformersEngine(
        EngineConfig(model=str(tmp_path / "nothing-here"), device="cpu", kind="transformers")
    )
    with pytest.raises(ConfigError, match=r"engine\.model"):
        engine.load()
    gguf = TransformersEngine(
        EngineConfig(model=str(tmp_path / "missing.gguf"), device="cpu", kind="transformers")
    )
    with pytest.raises(ConfigError, match="GGUF"):
        gguf.load()


def test_a_peft_adapter_is_applied(tiny_qwen3_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(0)
    adapted = get_peft_model(base, lora)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 2.0)
    adapted.save_pretrained(tmp_path / "adapter")
    plain = TransformersEngine(tiny_engine_config(tiny_qwen3_dir))
    plain.load()
    with_adapter = TransformersEngine(
        EngineConfig(
            **{
                **tiny_engine_config(tiny_qwen3_dir).model_dump(),
                "adapter_path": str(tmp_path / "adapter"),
            }
        )
    )
    with_adapter.load()
    with_adapter.check_health()
    a = plain.next_token_logprobs(QUESTION, "", ["<CN>"])["<CN>"]
    b = with_adapter.next_token_logprobs(QUESTION, "", ["<CN>"])["<CN>"]
    assert a != pytest.approx(b, abs=1e-4)
