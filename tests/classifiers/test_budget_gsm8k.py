"""Issue 4, acceptance 1: the shipped predictor on GSM8K rows it never trained on.

Slow (encodes ~1,500 prompts) and needs ``../shared/data`` (or ``$THINKGATE_DATA_DIR``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from classifiers.budget_data import file_sha256, holdout_mask, read_budget_rows
from classifiers.budget_eval import evaluate_budgets
from classifiers.budget_predictor import ComplexityPredictor
from classifiers.budget_tokens import TokenCounter

_DATA_DIR = Path(
    os.environ.get("THINKGATE_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data")
)
_GSM8K = _DATA_DIR / "gsm8k" / "train.jsonl"


@pytest.mark.slow
@pytest.mark.skipif(not _GSM8K.is_file(), reason=f"GSM8K not found at {_GSM8K}")
def test_shipped_predictor_beats_a_fixed_budget_on_held_out_gsm8k() -> None:
    predictor = ComplexityPredictor.load()
    metadata = predictor.metadata
    if metadata["data"][0]["sha256"] != file_sha256(_GSM8K):
        pytest.skip("the shared GSM8K file is not the one the shipped predictor was trained on")
    rows = read_budget_rows(_GSM8K)
    held = holdout_mask(
        [row.prompt for row in rows], metadata["holdout"]["fraction"], metadata["holdout"]["seed"]
    )
    test_rows = [row for row, out in zip(rows, held, strict=True) if out]
    assert len(test_rows) == metadata["holdout"]["rows"]
    needed = TokenCounter.load(predictor.tokenizer).count([row.target for row in test_rows])
    predicted = predictor.predict([row.prompt for row in test_rows])
    result = evaluate_budgets(predicted[:, -1], needed, coverage=0.9)
    assert result.spearman >= 0.55
    assert result.token_ratio <= 0.92
