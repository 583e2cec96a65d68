"""``self_verify`` and ``selfref`` read the right next-token position of a real tiny model.

The expected values are computed here by hand: the ChatML text of the tiny Qwen3 model is
written out literally, run through the model, and the log-softmax of the last position
is read at the token ids the tokenizer gives the words.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from router._exceptions import ConfigError
from router.engines.base import ChatMessage, Completion
from router.escalation import create_uncertainty_scorer, engine_probe
from router.escalation.uncertainty import NO_VARIANTS, YES_VARIANTS

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

QUESTION = "What is 2+2?"
ANSWER = " The answer is 4"
MESSAGES = [ChatMessage("user", QUESTION)]


@pytest.fixture(scope="module")
def engine(tiny_qwen3_dir: Path, tiny_engine_config):  # type: ignore[no-untyped-def]
    from router.engines.factory import create_engine

    engine = create_engine(tiny_engine_config(tiny_qwen3_dir))
    engine.load()
    return engine


@pytest.fixture(scope="module")
def hf(tiny_qwen3_dir: Path):  # type: ignore[no-untyped-def]
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir).eval()
    return model, tokenizer


def _next_logprobs(hf, *texts: str) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Log-probabilities after ``texts``, each tokenised on its own and concatenated."""
    model, tokenizer = hf
    ids = [i for text in texts for i in tokenizer.encode(text, add_special_tokens=False)]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
    return torch.log_softmax(logits.float(), dim=-1)


def _single_token_id(tokenizer, text: str) -> int | None:  # type: ignore[no-untyped-def]
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def _uncertainty(name: str, engine) -> float:  # type: ignore[no-untyped-def]
    scorer = create_uncertainty_scorer(name)
    completion = Completion(text=ANSWER)
    return asyncio.run(scorer.uncertainty(MESSAGES, completion, engine_probe(engine)))


def test_selfref_reads_confidence_tokens_right_after_the_answer(engine, hf) -> None:  # type: ignore[no-untyped-def]
    _, tokenizer = hf
    prompt = f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    # the engine tokenises the answer on its own, after the prompt's ids
    logprobs = _next_logprobs(hf, prompt, ANSWER)
    cn = float(logprobs[tokenizer.convert_tokens_to_ids("<CN>")])
    un = float(logprobs[tokenizer.convert_tokens_to_ids("<UN>")])
    expected = math.exp(un) / (math.exp(cn) + math.exp(un))
    assert _uncertainty("selfref", engine) == pytest.approx(expected, rel=1e-5)


def test_self_verify_sums_single_token_yes_no_variants_after_the_question(engine, hf) -> None:  # type: ignore[no-untyped-def]
    _, tokenizer = hf
    verify = create_uncertainty_scorer("self_verify").question  # type: ignore[attr-defined]
    text = (
        f"<|im_start|>user\n{QUESTION}<|im_end|>\n"
        f"<|im_start|>assistant\n{ANSWER}<|im_end|>\n"
        f"<|im_start|>user\n{verify}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    logprobs = _next_logprobs(hf, text)
    yes_ids = {t: _single_token_id(tokenizer, t) for t in YES_VARIANTS}
    no_ids = {t: _single_token_id(tokenizer, t) for t in NO_VARIANTS}
    yes = sum(math.exp(float(logprobs[i])) for i in yes_ids.values() if i is not None)
    no = sum(math.exp(float(logprobs[i])) for i in no_ids.values() if i is not None)
    # the tiny vocabulary holds some variants whole and splits others: both kinds occur
    assert any(i is None for i in yes_ids.values())
    assert any(i is not None for i in yes_ids.values())
    assert _uncertainty("self_verify", engine) == pytest.approx(no / (yes + no), rel=1e-5)


def test_selfref_without_confidence_tokens_is_a_config_error(tiny_gemma3_dir: Path) -> None:
    from router.engines.factory import create_engine
    from tests.tiny_models import tiny_engine_config

    engine = create_engine(tiny_engine_config(tiny_gemma3_dir))
    engine.load()
    scorer = create_uncertainty_scorer("selfref", confident_token="<NOPE>", uncertain_token="<UN>")
    with pytest.raises(ConfigError, match="train-selfref"):
        asyncio.run(scorer.uncertainty(MESSAGES, Completion(text="4"), engine_probe(engine)))
