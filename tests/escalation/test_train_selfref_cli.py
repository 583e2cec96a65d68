"""``thinkgate train-selfref`` end to end on a tiny real model: answers, labels, training,
an adapter the engine loads, and a ``selfref`` scorer whose output follows the labels.

A random tiny model answers gibberish, so the dataset is made from its own greedy answers:
half the items take the first word of the model's reply as gold (judged right), half a
word it never says (judged wrong). Greedy decoding reproduces the same answers inside
the command.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from classifiers.selfref_data import QAItem, answer_items, answer_words, is_correct
from router.cli import main
from router.config import EngineConfig
from router.engines.base import Completion
from router.escalation import create_scorer, engine_probe

pytest.importorskip("peft")

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


def _engine(config: EngineConfig):  # type: ignore[no-untyped-def]
    from router.engines.factory import create_engine

    engine = create_engine(config)
    engine.load()
    return engine


def _selfref(engine, items: list[QAItem], answers: list[Completion]) -> list[float]:  # type: ignore[no-untyped-def]
    scorer = create_scorer("selfref")
    probe = engine_probe(engine)

    async def score() -> list[float]:
        return [
            await scorer.uncertainty(i.messages, a, probe)
            for i, a in zip(items, answers, strict=True)
        ]

    return asyncio.run(score())


def test_train_selfref_end_to_end(tiny_qwen3_dir: Path, tiny_engine_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = tiny_engine_config(tiny_qwen3_dir)
    engine = _engine(base)
    probes = [QAItem(prompt=p, answer="x") for p in PROMPTS]
    replies = answer_items(engine, probes, max_tokens=8, progress=False)
    items = []
    for index, (prompt, reply) in enumerate(zip(PROMPTS, replies, strict=True)):
        words = answer_words(reply.text.splitlines()[0] if reply.text.strip() else "")
        gold = words[0] if index % 2 == 0 and words else "zebra"
        items.append(QAItem(prompt=prompt, answer=gold))
    labels = [is_correct(r.text, i.answer) for r, i in zip(replies, items, strict=True)]
    assert 0 < sum(labels) < len(labels), "the dataset needs both classes"
    before = _selfref(engine, items, replies)

    data = tmp_path / "train.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": i.prompt, "answer": i.answer}) + "\n" for i in items)
    )
    config_file = tmp_path / "thinkgate.yaml"
    config_file.write_text(yaml.safe_dump({"small": {"engine": base.model_dump(mode="json")}}))
    out = tmp_path / "selfref"
    code = main(
        [
            "train-selfref",
            "--engine", "small",
            "--config", str(config_file),
            "--data", str(data),
            "--out", str(out),
            "--max-steps", "60",
            "--learning-rate", "5e-3",
            "--lora-r", "4",
            "--max-tokens", "8",
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    meta = json.loads((out / "selfref.json").read_text())
    assert (meta["correct"], meta["incorrect"]) == (sum(labels), len(labels) - sum(labels))
    assert meta["steps"] == 60
    assert meta["last_loss"] < meta["first_loss"]

    tuned = _engine(base.model_copy(update={"adapter_path": str(out)}))
    after = _selfref(tuned, items, replies)
    assert after != pytest.approx(before, abs=1e-3)
    right = [u for u, ok in zip(after, labels, strict=True) if ok]
    wrong = [u for u, ok in zip(after, labels, strict=True) if not ok]
    assert max(right) < 0.5 < min(wrong)


def test_train_selfref_reports_a_bad_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "q"}\n')
    code = main(["train-selfref", "--data", str(data), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "'answer' must be" in capsys.readouterr().err


@pytest.mark.slow
def test_train_selfref_few_steps_on_the_embedded_gemma(tmp_path: Path) -> None:
    """The default small model (Gemma 3 270M, tied embeddings, new tokens added to a
    262k vocabulary) trains a few steps, and the engine loads the adapter for ``selfref``."""
    data = tmp_path / "train.jsonl"
    rows = [("What is 2+2?", "4"), ("What is 3+5?", "8"), ("Capital of France?", "Paris")]
    data.write_text("".join(json.dumps({"prompt": p, "answer": a}) + "\n" for p, a in rows))
    out = tmp_path / "selfref"
    code = main(
        ["train-selfref", "--engine", "small", "--data", str(data), "--out", str(out),
         "--max-steps", "3", "--batch-size", "2", "--max-tokens", "8", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    assert json.loads((out / "selfref.json").read_text())["steps"] == 3

    engine = _engine(EngineConfig(adapter_path=str(out), device="cpu"))
    items = [QAItem(prompt=p, answer=a) for p, a in rows]
    answers = [Completion(text=" 4"), Completion(text=" 8"), Completion(text=" Paris")]
    values = _selfref(engine, items, answers)
    assert all(0.0 < u < 1.0 for u in values)
