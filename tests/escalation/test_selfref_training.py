"""Self-REF training core on a tiny real model: tokens, trainable rows, learning, saving."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from router._exceptions import ConfigError
from router.escalation.selfref import (
    SelfRefExample,
    SelfRefOptions,
    add_confidence_tokens,
    rebalance,
    save_selfref,
    train_confidence_tokens,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RIGHT = [f"Question: What is {a} + {a}? Answer: {2 * a}" for a in range(1, 5)]
WRONG = [f"Question: Write a short poem about the sea {a}. Answer: ok" for a in range(1, 5)]


def _examples(tokenizer: object) -> list[SelfRefExample]:
    def ids(text: str) -> tuple[int, ...]:
        return tuple(tokenizer.encode(text, add_special_tokens=False))  # type: ignore[attr-defined]

    return [SelfRefExample(ids(t), True) for t in RIGHT] + [
        SelfRefExample(ids(t), False) for t in WRONG
    ]


def _share_unsure(model: object, tokenizer: object, text: str, ids: dict[str, int]) -> float:
    encoded = tokenizer.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([encoded])).logits[0, -1]  # type: ignore[operator]
    cn, un = float(logits[ids["<CN>"]]), float(logits[ids["<UN>"]])
    return 1.0 / (1.0 + math.exp(cn - un))


def test_rebalance_upsamples_the_smaller_class() -> None:
    examples = [SelfRefExample((1,), True)] + [SelfRefExample((i,), False) for i in range(5)]
    balanced = rebalance(examples, seed=1)
    assert sum(e.confident for e in balanced) == 5
    assert sum(not e.confident for e in balanced) == 5
    one_class = [SelfRefExample((1,), False), SelfRefExample((2,), False)]
    assert sorted(e.ids for e in rebalance(one_class)) == [(1,), (2,)]


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="lora_r must be >= 1, got 0"):
        SelfRefOptions(lora_r=0)


def test_new_tokens_are_added_once_and_kept_whole(tiny_qwen3_dir: Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir)
    before = len(tokenizer)
    ids = add_confidence_tokens(model, tokenizer, ("<CONF_A>", "<CONF_B>"))
    assert len(tokenizer) == before + 2
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert tokenizer.encode("x<CONF_A>", add_special_tokens=False)[-1] == ids["<CONF_A>"]
    assert add_confidence_tokens(model, tokenizer, ("<CONF_A>", "<CONF_B>")) == ids
    assert len(tokenizer) == before + 2


def test_training_separates_right_from_wrong_and_saves_adapter(
    tiny_qwen3_dir: Path, tmp_path: Path
) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir)
    options = SelfRefOptions(max_steps=40, batch_size=4, learning_rate=5e-3, progress=False)
    peft_model, stats = train_confidence_tokens(model, tokenizer, _examples(tokenizer), options)
    assert stats.steps == 40
    assert stats.last_loss is not None and stats.first_loss is not None
    assert stats.last_loss < stats.first_loss
    ids = stats.token_ids
    # the untied LM head's rows for the two tokens are trained, not only the embeddings
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lm_head" in n and "trainable_tokens" in n for n in trainable)
    assert all(_share_unsure(peft_model, tokenizer, t, ids) < 0.5 for t in RIGHT)
    assert all(_share_unsure(peft_model, tokenizer, t, ids) > 0.5 for t in WRONG)

    folder = save_selfref(peft_model, tokenizer, tmp_path / "adapter", stats)
    assert (folder / "adapter_config.json").exists()
    assert (folder / "selfref.json").exists()
    assert (folder / "tokenizer_config.json").exists()

    from peft import PeftModel

    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir)
    reloaded = PeftModel.from_pretrained(base, folder)
    loaded_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    for text in RIGHT + WRONG:
        assert _share_unsure(reloaded, loaded_tokenizer, text, ids) == pytest.approx(
            _share_unsure(peft_model, tokenizer, text, ids), abs=1e-5
        )
