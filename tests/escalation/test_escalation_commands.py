"""``calibrate-escalation`` and ``eval-escalation`` through the CLI on the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from router.cli import main
from tests.escalation.conftest import GREEDY_FLAGS, TinyQA


def test_eval_escalation_reports_every_scorer(tiny_qa: TinyQA, tmp_path: Path) -> None:
    out, plot = tmp_path / "esc.json", tmp_path / "esc.png"
    code = main(
        ["eval-escalation", "--config", str(tiny_qa.config_file), "--dataset", str(tiny_qa.data),
         "--json", str(out), "--plot", str(plot), *GREEDY_FLAGS,
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["n"] == len(tiny_qa.items)
    assert report["accuracy"] == pytest.approx(sum(tiny_qa.correct) / len(tiny_qa.correct))
    # the tiny tokenizer holds <CN>/<UN>, so even selfref runs (untrained)
    assert set(report["scorers"]) == {
        "mean_logprob", "min_logprob", "margin", "entropy", "self_verify", "selfref"
    }  # fmt: skip
    for result in report["scorers"].values():
        assert 0.0 <= result["auroc"] <= 1.0
        assert result["curve"][0] == [0.0, report["accuracy"]]
        assert result["curve"][-1] == [1.0, 1.0]
    assert plot.stat().st_size > 0


def test_eval_escalation_rejects_an_unknown_scorer(
    tiny_qa: TinyQA, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "esc.json"
    code = main(
        ["eval-escalation", "--config", str(tiny_qa.config_file), "--dataset", str(tiny_qa.data),
         "--json", str(out), "--limit", "2", *GREEDY_FLAGS, "--no-progress",
         "--scorers", "margin", "nope"]
    )  # fmt: skip
    assert code == 2
    assert "unknown escalation scorer 'nope'" in capsys.readouterr().err
    assert not out.exists()


def test_eval_escalation_skips_a_scorer_the_model_cannot_run(
    tiny_qa: TinyQA, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """selfref needs the <CN>/<UN> tokens; a copy of the tiny model whose tokenizer calls
    them something else cannot run it: the report skips it, with the reason, and still
    evaluates the scorers that can run."""
    model = tmp_path / "no-confidence-tokens"
    shutil.copytree(Path(tiny_qa.engine_config.model), model)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        text = (model / name).read_text(encoding="utf-8")
        (model / name).write_text(text.replace("<CN>", "<C0>").replace("<UN>", "<U0>"))
    engine = tiny_qa.engine_config.model_copy(update={"model": str(model)})
    config = tmp_path / "thinkgate.yaml"
    config.write_text(yaml.safe_dump({"small": {"engine": engine.model_dump(mode="json")}}))
    out = tmp_path / "esc.json"
    code = main(
        ["eval-escalation", "--config", str(config), "--dataset", str(tiny_qa.data),
         "--json", str(out), "--limit", "4", *GREEDY_FLAGS, "--no-progress",
         "--scorers", "margin", "selfref"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["scorers"]) == {"margin"}
    assert "<CN>" in report["skipped"]["selfref"]
    assert "selfref        skipped:" in capsys.readouterr().out


def test_calibrate_escalation_hits_the_rate(
    tiny_qa: TinyQA, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tau.json"
    code = main(
        ["calibrate-escalation", "--config", str(tiny_qa.config_file), "--dataset",
         str(tiny_qa.data), "--rate", "0.25", "--scorer", "mean_logprob", "--json", str(out),
         *GREEDY_FLAGS, "--no-progress"]
    )  # fmt: skip
    assert code == 0
    details = json.loads(out.read_text())
    assert details["escalation_rate"] == pytest.approx(0.25)
    assert details["n"] == len(tiny_qa.items)
    assert f"tau: {details['tau']:.4f}" in capsys.readouterr().out


def test_calibrate_escalation_rejects_a_bad_rate(tiny_qa: TinyQA) -> None:
    code = main(
        ["calibrate-escalation", "--dataset", str(tiny_qa.data), "--rate", "1.5"]
    )  # fmt: skip
    assert code == 2
