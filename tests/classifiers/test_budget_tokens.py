"""Token counting in the units of thinking budgets, offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.budget_tokens import MINILM_TOKENIZER, SERVING_TOKENIZER, TokenCounter


def test_prefix_positions_count_tokens_before_an_offset() -> None:
    counter = TokenCounter.load(MINILM_TOKENIZER)
    text = "Two plus two is four. Check: four."
    totals, before = counter.count_prefixes([text, text, ""], [0, len("Two plus two is four"), 0])
    assert totals.tolist() == [counter.count([text])[0]] * 2 + [0]
    assert before.tolist() == [0, 5, 0]
    with pytest.raises(ValueError, match="one offset per text"):
        counter.count_prefixes([text], [])


def test_unknown_tokenizer_names_the_choices() -> None:
    with pytest.raises(FileNotFoundError, match="embedded:gemma3-270m"):
        TokenCounter.load("no/such/tokenizer")


@pytest.mark.slow
def test_the_serving_tokenizer_loads_from_the_gguf_package_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THINKGATE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    counter = TokenCounter.load(SERVING_TOKENIZER)
    assert (tmp_path / "tokenizers" / "gemma3-270m" / "tokenizer.json").is_file()
    assert counter.name == SERVING_TOKENIZER
    assert counter.count(["12345"])[0] == 5  # Gemma splits digits
    assert counter.count(["Okay, so 3*60=180."])[0] == 13
    again = TokenCounter.load(SERVING_TOKENIZER)  # from the cache now
    assert again.count(["Okay, so 3*60=180."])[0] == 13
