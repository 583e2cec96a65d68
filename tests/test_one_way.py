"""One way to do each thing: one record reader, scikit-learn's AUROC, names that say what
they score, and ``openai`` only where the tests need it."""

from __future__ import annotations

import ast
import random
import sys
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from classifiers.records import RecordsError, read_records
from router.escalation.selfref_eval import auroc

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    path
    for package in ("router", "classifiers", "deployments")
    for path in (ROOT / package).rglob("*.py")
)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_the_records_module_parses_csv() -> None:
    readers = [p.relative_to(ROOT).as_posix() for p in SOURCES if "csv" in _imported_modules(p)]
    assert readers == ["classifiers/records.py"]


def test_reader_reads_jsonl_csv_and_tsv_and_has_one_error(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"p": "x"}\n\n{"p": "y", "n": 2}\n', encoding="utf-8")
    (tmp_path / "b.csv").write_text('p,q\n"a, b","c\nd"\n', encoding="utf-8")
    (tmp_path / "c.tsv").write_text("p\tq\nx\ty\n", encoding="utf-8")
    assert read_records(tmp_path / "a.jsonl") == [{"p": "x"}, {"p": "y", "n": 2}]
    assert read_records(tmp_path / "b.csv") == [{"p": "a, b", "q": "c\nd"}]
    assert read_records(tmp_path / "c.tsv") == [{"p": "x", "q": "y"}]
    (tmp_path / "bad.jsonl").write_text('{"p": 1}\n[1]\n', encoding="utf-8")
    with pytest.raises(RecordsError, match=r"bad\.jsonl: line 2 is not a JSON object"):
        read_records(tmp_path / "bad.jsonl")
    with pytest.raises(RecordsError, match="no such file"):
        read_records(tmp_path / "missing.csv")


def test_auroc_is_scikit_learns() -> None:
    rng = random.Random(0)
    for _ in range(20):
        scores = [rng.choice([0.1, 0.2, 0.5, rng.random()]) for _ in range(30)]
        correct = [rng.random() < 0.6 for _ in range(30)]
        wrong = [not ok for ok in correct]
        assert auroc(scores, correct) == pytest.approx(roc_auc_score(wrong, scores))
    assert "sklearn.metrics" in _imported_modules(ROOT / "router/escalation/selfref_eval.py")


def test_no_module_or_factory_is_just_called_scorers() -> None:
    modules = [p.relative_to(ROOT).as_posix() for p in SOURCES if p.stem == "scorers"]
    factories = [
        f"{p.relative_to(ROOT)}:{node.lineno}"
        for p in SOURCES
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name == "create_scorer"
    ]
    assert modules == [] and factories == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_openai_is_a_dev_dependency_only() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [d.split(">")[0].split("=")[0].split("[")[0].strip() for d in project["dependencies"]]
    dev = [d.split(">")[0].split("=")[0].strip() for d in project["optional-dependencies"]["dev"]]
    assert "openai" not in names and "openai" in dev
    assert not [p for p in SOURCES if "openai" in _imported_modules(p)]
