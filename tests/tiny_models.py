"""Tiny random-initialised models of real architectures, built offline for the tests.

Every model is a genuine Hugging Face architecture (Qwen3, Gemma3) with a few layers and a
hidden size of 64, written with ``save_pretrained`` and read back by the engine through
``from_pretrained`` - exactly the path a production model takes. The tokenizer is a small
byte-level BPE trained here on a fixed corpus (no network), wrapped in
``PreTrainedTokenizerFast``, with ``<think>`` / ``</think>`` (and a few other markers) as
special tokens and a chat template.

Builds are deterministic and cached under a folder keyed by `TINY_MODELS_VERSION`; bump it
when anything here changes.

Example::

    path = build_tiny_model(tmp_path / "qwen3", "qwen3")
    config = tiny_engine_config(path, max_new_context=256)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from router.config import EngineConfig

TINY_MODELS_VERSION = "tiny-v1"

Architecture = Literal["qwen3", "gemma3"]

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
TURN_START, TURN_END = "<start_of_turn>", "<end_of_turn>"
CONFIDENT, UNSURE = "<CN>", "<UN>"
"""Self-REF confidence tokens, available as single tokens for escalation tests."""
SPECIAL_TOKENS = [
    PAD,
    BOS,
    EOS,
    THINK_OPEN,
    THINK_CLOSE,
    IM_START,
    IM_END,
    TURN_START,
    TURN_END,
    CONFIDENT,
    UNSURE,
]
NEVER_CLOSE_TOKEN = " ok"
"""The token a `never_close_thinking` model always emits (a single token of the vocab)."""
CONTEXT_LENGTH = 512
VOCAB_SIZE = 600

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking %}{{ '<think>\n' }}{% endif %}"
    "{% endif %}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

_CORPUS = """
The quick brown fox jumps over the lazy dog. What is 2+2? The answer is 4.
Yes. No. yes no Yes No true false. Hello, how are you? I am fine, thank you.
Let me think step by step. First, add the numbers. Then check the result.
The capital of France is Paris. Water boils at 100 degrees. 1 2 3 4 5 6 7 8 9 0.
User: Assistant: system user assistant model. Question: Answer: So the answer is
Please explain why the sky is blue. Because light scatters. ok ok ok okay.
Write a short poem about the sea. The sea is wide and deep and blue.
Compute 12 * 7 = 84. 15 + 27 = 42. 100 - 58 = 42. 9 / 3 = 3. x y z a b c.
"""


def _train_tokenizer() -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=SPECIAL_TOKENS[3:],
        clean_up_tokenization_spaces=False,
    )
    return fast


def _model_config(arch: Architecture, vocab_size: int, ids: dict[str, int]) -> object:
    common = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": CONTEXT_LENGTH,
        "tie_word_embeddings": False,
        "pad_token_id": ids[PAD],
        "bos_token_id": ids[BOS],
    }
    if arch == "qwen3":
        from transformers import Qwen3Config

        return Qwen3Config(**common, eos_token_id=[ids[IM_END], ids[EOS]])
    if arch == "gemma3":
        from transformers import Gemma3TextConfig

        return Gemma3TextConfig(
            **common,
            eos_token_id=[ids[EOS], ids[TURN_END]],
            sliding_window=32,
            layer_types=["sliding_attention", "full_attention"],
        )
    raise ValueError(f"unknown tiny architecture {arch!r}")


def _make_never_close(model: object, tokenizer: object) -> None:
    """Make one token dominate every step and ``</think>``/EOS never win.

    Hidden dimension 0 is held at a large constant: every embedding row gets it, and no
    layer writes to it (its rows in the attention/MLP output projections are zero), so
    after the final norm it is a large positive number at every position. The lm_head's
    column 0 then adds a large bonus to `NEVER_CLOSE_TOKEN` and a large penalty to
    ``</think>`` and the end-of-sequence tokens.
    """
    import torch

    ids = tokenizer.convert_tokens_to_ids  # type: ignore[attr-defined]
    [fixed] = tokenizer.encode(NEVER_CLOSE_TOKEN, add_special_tokens=False)  # type: ignore[attr-defined]
    with torch.no_grad():
        model.get_input_embeddings().weight[:, 0] = 1.0  # type: ignore[attr-defined]
        for name, param in model.named_parameters():  # type: ignore[attr-defined]
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                param[0, :] = 0.0
        head = model.get_output_embeddings().weight  # type: ignore[attr-defined]
        head[:, 0] = 0.0
        head[fixed, 0] = 50.0
        for token in (THINK_CLOSE, EOS, IM_END, TURN_END):
            head[ids(token), 0] = -50.0


def build_tiny_model(
    path: str | Path,
    arch: Architecture = "qwen3",
    *,
    chat_template: bool = True,
    never_close_thinking: bool = False,
    seed: int = 0,
) -> Path:
    """Write a tiny model + tokenizer to ``path`` (atomically) and return it.

    ``chat_template=False`` leaves the tokenizer without a template (the engine then uses
    its fallback). ``never_close_thinking=True`` makes a model that emits
    `NEVER_CLOSE_TOKEN` forever and never ``</think>`` or an end token: the fixture for
    budget forcing.
    """
    import torch
    from transformers import AutoModelForCausalLM

    target = Path(path)
    if (target / "config.json").exists():
        return target
    tokenizer = _train_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}  # type: ignore[attr-defined]
    if chat_template:
        template = CHATML_TEMPLATE if arch == "qwen3" else GEMMA_TEMPLATE
        tokenizer.chat_template = template  # type: ignore[attr-defined]
    config = _model_config(arch, len(tokenizer), ids)  # type: ignore[arg-type]
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    if never_close_thinking:
        _make_never_close(model, tokenizer)
    model.generation_config.eos_token_id = config.eos_token_id  # type: ignore[attr-defined]
    model.generation_config.pad_token_id = ids[PAD]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)  # type: ignore[attr-defined]
        (tmp / "thinkgate_tiny.json").write_text(
            json.dumps({"version": TINY_MODELS_VERSION, "arch": arch})
        )
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def tiny_models_root() -> Path:
    """The shared cache folder of tiny models (``$THINKGATE_TINY_MODELS`` overrides)."""
    base = os.environ.get("THINKGATE_TINY_MODELS")
    root = Path(base) if base else Path(tempfile.gettempdir()) / "thinkgate-tiny-models"
    return root / TINY_MODELS_VERSION


def cached_tiny_model(
    name: str,
    arch: Architecture = "qwen3",
    *,
    chat_template: bool = True,
    never_close_thinking: bool = False,
) -> Path:
    """Build (once, shared across test sessions and xdist workers) and return a tiny model."""
    return build_tiny_model(
        tiny_models_root() / name,
        arch,
        chat_template=chat_template,
        never_close_thinking=never_close_thinking,
    )


def tiny_engine_config(
    path: str | Path,
    *,
    served_name: str | None = None,
    context_length: int | None = None,
    chat_template: str | None = None,
) -> EngineConfig:
    """An `EngineConfig` for a tiny model: CPU, float32, default ``<think>`` markers."""
    return EngineConfig(
        kind="transformers",
        model=str(path),
        served_name=served_name or Path(path).name,
        device="cpu",
        dtype="float32",
        context_length=context_length,
        chat_template=chat_template,
    )
