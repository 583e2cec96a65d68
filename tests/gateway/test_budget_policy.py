"""Budget units (the predictor's tokenizer vs the strong tier's) and the prompt instruction,
with a predictor trained here and the tiny real models behind the in-process gateway."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from openai import OpenAI

from classifiers.budget_predictor import ComplexityPredictor
from classifiers.budget_tokens import MINILM_TOKENIZER, TokenCounter
from router.budget import UNITS_PASSAGE, ThinkingBudget
from router.config import BudgetConfig
from tests.configs import tiny_config
from tests.servers import running_gateway

_ASK = [{"role": "user", "content": "Ann buys 3 apples, then 4 more. How many apples now?"}]


@pytest.fixture(scope="module")
def minilm_predictor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prompts = [f"Ann buys {3 + i} apples, then {i % 5} more. How many now?" for i in range(30)]
    lengths = [100 + 30 * (i % 5) for i in range(30)]
    predictor, _ = ComplexityPredictor.fit(
        prompts, lengths, tokenizer=MINILM_TOKENIZER, folds=3, alphas=(1.0,)
    )
    return predictor.save(tmp_path_factory.mktemp("budget") / "minilm")


def test_same_tokenizer_needs_no_conversion(
    minilm_predictor: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = BudgetConfig(predictor_path=str(minilm_predictor), max_tokens=100_000)
    budgets = ThinkingBudget(config, strong_model=MINILM_TOKENIZER)
    with caplog.at_level(logging.WARNING, logger="thinkgate.budget"):
        budgets.load()
    assert budgets.units == 1.0
    assert not caplog.records


def test_a_local_strong_model_is_converted_by_a_measured_ratio(
    minilm_predictor: Path, tiny_gemma3_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = BudgetConfig(predictor_path=str(minilm_predictor), max_tokens=100_000)
    plain = ThinkingBudget(config)
    plain.load()
    budgets = ThinkingBudget(config, strong_model=str(tiny_gemma3_dir))
    with caplog.at_level(logging.WARNING, logger="thinkgate.budget"):
        budgets.load()
    ours = TokenCounter.load(MINILM_TOKENIZER).count([UNITS_PASSAGE])[0]
    theirs = TokenCounter.load(str(tiny_gemma3_dir)).count([UNITS_PASSAGE])[0]
    assert ours != theirs
    assert budgets.units == pytest.approx(theirs / ours)
    assert "measured ratio" in caplog.text and MINILM_TOKENIZER in caplog.text
    prompt = _ASK[0]["content"]
    expected = round(plain.predicted_tokens(prompt) * config.slack * budgets.units)
    assert budgets.for_prompt(prompt) == expected


def test_an_unknown_strong_model_is_warned_about(
    minilm_predictor: Path, caplog: pytest.LogCaptureFixture
) -> None:
    budgets = ThinkingBudget(
        BudgetConfig(predictor_path=str(minilm_predictor)), strong_model="Qwen/Qwen3-8B"
    )
    with caplog.at_level(logging.WARNING, logger="thinkgate.budget"):
        budgets.load()
    assert budgets.units == 1.0
    assert "Qwen/Qwen3-8B" in caplog.text and "unconverted" in caplog.text


def _prompt_tokens(config_dirs: tuple[Path, Path], **budget: object) -> int:
    config = tiny_config(*config_dirs, budget={"enabled": False, "max_tokens": 24, **budget})
    with running_gateway(config) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model="strong",
            messages=_ASK,  # type: ignore[arg-type]
            max_tokens=40,
            temperature=0.0,
        )
    assert reply.usage is not None
    return reply.usage.prompt_tokens


def test_prompt_instruction_reaches_the_strong_engine(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path
) -> None:
    dirs = (tiny_qwen3_dir, tiny_gemma3_dir)
    instruction = "Think for at most {budget} tokens, then answer."
    without = _prompt_tokens(dirs)
    with_instruction = _prompt_tokens(dirs, prompt_instruction=instruction)
    added = TokenCounter.load(str(tiny_gemma3_dir)).count(
        ["\n\nThink for at most 24 tokens, then answer."]
    )[0]
    # the engine tokenised the instruction with the budget in it (BPE may merge one token
    # across the boundary with the question)
    assert abs((with_instruction - without) - added) <= 1
    assert with_instruction - without > 5
