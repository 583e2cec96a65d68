"""A QA set the tiny Qwen3 model gets half right, for the escalation commands.

A random tiny model answers gibberish, so the set is made from its own greedy answers:
every other item takes the first word of the model's reply as gold (judged right), the
rest a word it never says (judged wrong). Greedy decoding reproduces the same answers
inside the commands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from router.config import EngineConfig
from router.engines.base import Completion
from router.escalation.selfref_data import (
    QAItem,
    answer_items,
    answer_words,
    first_line,
    is_correct,
)
from router.sampling import SamplingParams
from tests.tiny_models import tiny_engine_config

PROMPTS = [
    "What is 2+2?",
    "Hello, how are you?",
    "The capital of France is?",
    "Compute 12 * 7",
    "Why is the sky blue?",
    "Write a short poem about the sea.",
    "Water boils at?",
    "Let me think step by step.",
]
MAX_TOKENS = 8
GREEDY = SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0, logprobs=True, top_logprobs=5)
"""What the escalation commands answer with under ``--temperature 0 --max-tokens 8``."""
GREEDY_FLAGS = ["--temperature", "0", "--max-tokens", str(MAX_TOKENS)]


@dataclass(frozen=True)
class TinyQA:
    engine_config: EngineConfig
    config_file: Path
    data: Path
    items: list[QAItem]
    replies: list[Completion]
    correct: list[bool]


@pytest.fixture(scope="session")
def tiny_qa(tiny_qwen3_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyQA:
    from router.engines.factory import create_engine

    base = tiny_engine_config(tiny_qwen3_dir)
    engine = create_engine(base)
    engine.load()
    asked = [QAItem(prompt=p, answer="x") for p in PROMPTS]
    replies = answer_items(engine, asked, GREEDY, progress=False)
    items = []
    for index, (prompt, reply) in enumerate(zip(PROMPTS, replies, strict=True)):
        words = answer_words(first_line(reply.text))
        gold = words[0] if index % 2 == 0 and words else "zebra"
        items.append(QAItem(prompt=prompt, answer=gold))
    correct = [is_correct(r.text, i.answer) for r, i in zip(replies, items, strict=True)]
    if not 0 < sum(correct) < len(correct):
        raise RuntimeError(f"the tiny QA set needs both classes, got {correct}")
    folder = tmp_path_factory.mktemp("tiny_qa")
    data = folder / "qa.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": i.prompt, "answer": i.answer}) + "\n" for i in items)
    )
    config_file = folder / "thinkgate.yaml"
    config_file.write_text(yaml.safe_dump({"small": {"engine": base.model_dump(mode="json")}}))
    return TinyQA(base, config_file, data, items, replies, correct)
