"""``train-selfref`` end to end: answer, label, build the training rows, fine-tune, save.

The rows are the ids the transformers engine feeds to ``next_token_logprobs(messages,
assistant_prefix=answer, ...)``: the prompt rendered by `router.engines.chat_template`
(thinking off, the config's template override) followed by the answer's own encoding.
Training therefore teaches the confidence token at exactly the position the ``selfref``
scorer reads.

Example::

    stats = train_selfref_from_config(config.small.engine, "train.jsonl", "out/selfref",
                                      SelfRefOptions(epochs=2))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router._exceptions import ConfigError
from router.config import EngineConfig
from router.engines.base import ChatMessage
from router.escalation.selfref import (
    SelfRefOptions,
    SelfRefStats,
    label_examples,
    rebalance,
    save_selfref,
    train_confidence_tokens,
)
from router.escalation.selfref_data import answer_items, is_correct, read_qa_jsonl
from router.sampling import SamplingParams

logger = logging.getLogger("thinkgate.selfref")


def probe_ids(
    tokenizer: Any, config: EngineConfig, messages: Sequence[ChatMessage], answer: str
) -> list[int]:
    """The ids before the confidence token, composed as the engine composes a probe."""
    from router.engines.chat_template import render_prompt

    prompt = render_prompt(
        tokenizer, messages, thinking=False, markers=config.thinking, template=config.chat_template
    )
    return prompt.ids + list(tokenizer.encode(answer, add_special_tokens=False))


def _model_source(config: EngineConfig) -> tuple[str, dict[str, str]]:
    """(from_pretrained path or id, extra kwargs) of a transformers engine's model."""
    from router.engines.embedded import is_embedded, resolve_embedded

    if is_embedded(config.model):
        return str(resolve_embedded(config.model)), {}
    path = Path(config.model).expanduser()
    if config.model.endswith(".gguf") and config.gguf_file is None:
        return str(path.parent), {"gguf_file": path.name}
    source = str(path) if path.exists() else config.model
    return source, ({"gguf_file": config.gguf_file} if config.gguf_file else {})


def load_trainable(config: EngineConfig) -> tuple[Any, Any]:
    """A fresh copy of the engine's model and tokenizer for training (float32 on CPU,
    bfloat16 on CUDA unless the config names a dtype)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, extra = _model_source(config)
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype_name = config.dtype
    if dtype_name == "auto":
        dtype_name = "bfloat16" if device == "cuda" else "float32"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        model: Any = AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype_name), **extra
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"engine.model: cannot load {config.model!r}: {exc}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def train_selfref_from_config(
    config: EngineConfig,
    data: str | Path,
    out: str | Path,
    options: SelfRefOptions,
    *,
    params: SamplingParams,
    limit: int | None = None,
    batch_size: int = 8,
) -> SelfRefStats:
    """Answer ``data`` with the engine of ``config`` (its adapter, if any, left off) sampled
    with ``params`` (as served: `router.escalation.policy.sampling_as_served`), label the
    answers, fine-tune confidence tokens placed right after each whole answer (where the
    cascade reads them) and save the adapter folder to ``out``."""
    import gc

    from router.engines.factory import create_engine

    if config.kind == "openai":
        raise ConfigError("train-selfref needs a local model (engine.kind vllm or transformers)")
    base = config.model_copy(update={"adapter_path": None})
    items = read_qa_jsonl(data, limit=limit)
    engine = create_engine(base)
    engine.load()
    completions = answer_items(
        engine, items, params, batch_size=batch_size, progress=options.progress
    )
    shutdown = getattr(engine, "shutdown", None)
    if shutdown is not None:  # vLLM's engine processes hold memory the training needs
        shutdown()
    del engine
    gc.collect()
    correct = [is_correct(c.text, i.answer) for c, i in zip(completions, items, strict=True)]
    n_right = sum(correct)
    logger.info("%d answers: %d right, %d wrong", len(correct), n_right, len(correct) - n_right)
    if n_right in (0, len(correct)):
        logger.warning(
            "all %d answers are %s: the confidence tokens can only learn one class",
            len(correct),
            "right" if n_right else "wrong",
        )
    model, tokenizer = load_trainable(base)
    rows = [
        probe_ids(tokenizer, base, item.messages, completion.text)
        for item, completion in zip(items, completions, strict=True)
    ]
    examples = rebalance(label_examples(rows, correct), seed=options.seed)
    peft_model, stats = train_confidence_tokens(model, tokenizer, examples, options)
    stats.examples, stats.correct, stats.incorrect = len(correct), n_right, len(correct) - n_right
    save_selfref(peft_model, tokenizer, out, stats)
    return stats
