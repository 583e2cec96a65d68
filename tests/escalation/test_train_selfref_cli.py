"""``thinkgate train-selfref`` end to end on a tiny real model: answers, labels, training,
an adapter the engine loads, and a ``selfref`` scorer whose output follows the labels
(the QA set is the ``tiny_qa`` fixture of this folder's conftest)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from router.cli import main
from router.config import EngineConfig
from router.engines.base import Completion
from router.escalation import create_uncertainty_scorer, engine_probe
from router.escalation.selfref_data import QAItem
from tests.escalation.conftest import GREEDY_FLAGS, TinyQA

pytest.importorskip("peft")


def _engine(config: EngineConfig):  # type: ignore[no-untyped-def]
    from router.engines.factory import create_engine

    engine = create_engine(config)
    engine.load()
    return engine


def _selfref(engine, items: list[QAItem], answers: list[Completion]) -> list[float]:  # type: ignore[no-untyped-def]
    scorer = create_uncertainty_scorer("selfref")
    probe = engine_probe(engine)

    async def score() -> list[float]:
        return [
            await scorer.uncertainty(i.messages, a, probe)
            for i, a in zip(items, answers, strict=True)
        ]

    return asyncio.run(score())


def test_train_selfref_end_to_end(tiny_qa: TinyQA, tmp_path: Path) -> None:
    engine = _engine(tiny_qa.engine_config)
    before = _selfref(engine, tiny_qa.items, tiny_qa.replies)
    out = tmp_path / "selfref"
    code = main(
        [
            "train-selfref",
            "--engine", "small",
            "--config", str(tiny_qa.config_file),
            "--data", str(tiny_qa.data),
            "--out", str(out),
            "--max-steps", "60",
            "--learning-rate", "5e-3",
            "--lora-r", "4",
            *GREEDY_FLAGS,
            "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    labels = tiny_qa.correct
    meta = json.loads((out / "selfref.json").read_text())
    assert (meta["correct"], meta["incorrect"]) == (sum(labels), len(labels) - sum(labels))
    assert meta["steps"] == 60
    assert meta["last_loss"] < meta["first_loss"]

    tuned = _engine(tiny_qa.engine_config.model_copy(update={"adapter_path": str(out)}))
    after = _selfref(tuned, tiny_qa.items, tiny_qa.replies)
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
         "--max-steps", "3", "--batch-size", "2", *GREEDY_FLAGS, "--no-progress"]
    )  # fmt: skip
    assert code == 0
    assert json.loads((out / "selfref.json").read_text())["steps"] == 3

    engine = _engine(EngineConfig(kind="transformers", adapter_path=str(out), device="cpu"))
    items = [QAItem(prompt=p, answer=a) for p, a in rows]
    answers = [Completion(text=" 4"), Completion(text=" 8"), Completion(text=" Paris")]
    values = _selfref(engine, items, answers)
    assert all(0.0 < u < 1.0 for u in values)
