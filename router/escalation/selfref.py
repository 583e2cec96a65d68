"""Self-REF confidence tokens (Chuang et al., "Learning to Route LLMs with Confidence
Tokens"): teach the small model to follow each of its answers with ``<CN>`` (confident) or
``<UN>`` (unsure), so that the escalation scorer ``selfref`` can read
P(``<UN>``) / (P(``<CN>``) + P(``<UN>``)) right after an answer, without emitting anything.

Steps (``thinkgate train-selfref`` runs them all):

1. the small model answers the training questions as it answers clients (sampling as
   served, `router.escalation.policy.sampling_as_served`);
2. each answer is labelled with `router.escalation.selfref_data.is_correct`;
3. the text the model saw — the rendered prompt followed by its own answer, exactly what
   the engine renders for ``next_token_logprobs(messages, assistant_prefix=answer)`` — is
   paired with the label's token; the smaller class is upsampled to the larger one;
4. ``<CN>``/``<UN>`` are added to the tokenizer as special tokens when missing (embeddings
   resized); LoRA adapters on every linear layer plus trainable rows for the two tokens
   (``trainable_token_indices`` on the input embeddings and, when not tied to them, on the
   LM head) are trained with cross-entropy on the confidence token only — the answers
   themselves are not trained on, so the model keeps answering as before;
5. the adapter, the tokenizer and ``selfref.json`` (labels, counts, losses) are saved in one
   folder; set it as the small engine's ``adapter_path``.

Example::

    examples = rebalance(label_examples(id_rows, labels), seed=0)
    stats = train_confidence_tokens(model, tokenizer, examples, SelfRefOptions(max_steps=50))
    save_selfref(model, tokenizer, "out/selfref", stats)
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router._exceptions import ConfigError
from router.escalation.uncertainty import CONFIDENT_TOKEN, UNCERTAIN_TOKEN

if TYPE_CHECKING:
    import torch

SELFREF_METADATA = "selfref.json"


@dataclass(frozen=True)
class SelfRefOptions:
    """Fine-tuning settings. ``max_steps`` (when set) overrides ``epochs``."""

    epochs: float = 2.0
    max_steps: int | None = None
    batch_size: int = 4
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: str = "all-linear"
    max_length: int = 512
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ConfigError(f"epochs must be > 0, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.lora_r < 1:
            raise ConfigError(f"lora_r must be >= 1, got {self.lora_r}")
        if self.lora_alpha < 1:
            raise ConfigError(f"lora_alpha must be >= 1, got {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.max_length < 2:
            raise ConfigError(f"max_length must be >= 2, got {self.max_length}")


@dataclass(frozen=True)
class SelfRefExample:
    """The token ids before the confidence token — the rendered prompt followed by the
    model's answer, as the engine feeds them to ``next_token_logprobs`` — and whether the
    answer was correct (``<CN>``) or not (``<UN>``)."""

    ids: tuple[int, ...]
    confident: bool


@dataclass
class SelfRefStats:
    """What training saw and did; saved as ``selfref.json`` next to the adapter."""

    examples: int = 0
    correct: int = 0
    incorrect: int = 0
    balanced_examples: int = 0
    steps: int = 0
    first_loss: float | None = None
    last_loss: float | None = None
    confident_token: str = CONFIDENT_TOKEN
    uncertain_token: str = UNCERTAIN_TOKEN
    token_ids: dict[str, int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def label_examples(
    id_rows: Sequence[Sequence[int]], correct: Sequence[bool]
) -> list[SelfRefExample]:
    """Pair each id row (prompt + answer) with its correctness label."""
    if len(id_rows) != len(correct):
        raise ValueError(f"{len(id_rows)} id rows but {len(correct)} labels")
    return [
        SelfRefExample(ids=tuple(r), confident=c) for r, c in zip(id_rows, correct, strict=True)
    ]


def rebalance(examples: Sequence[SelfRefExample], *, seed: int = 0) -> list[SelfRefExample]:
    """Upsample the smaller class (random repeats) to the size of the larger, shuffled.

    With a single class there is nothing to balance against: the examples come back
    shuffled, unchanged in number (the caller warns)."""
    rng = random.Random(seed)
    good = [e for e in examples if e.confident]
    bad = [e for e in examples if not e.confident]
    small, large = (good, bad) if len(good) < len(bad) else (bad, good)
    extra = [rng.choice(small) for _ in range(len(large) - len(small))] if small else []
    out = [*large, *small, *extra]
    rng.shuffle(out)
    return out


def add_confidence_tokens(
    model: Any, tokenizer: Any, tokens: Sequence[str] = (CONFIDENT_TOKEN, UNCERTAIN_TOKEN)
) -> dict[str, int]:
    """Make each of ``tokens`` one special token, resizing the embeddings when the
    vocabulary grew (new rows start at the mean embedding); returns their ids."""
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in tokens}
    for token, token_id in ids.items():
        if tokenizer.encode(token, add_special_tokens=False) != [token_id]:
            raise ConfigError(f"the tokenizer does not keep {token!r} as one token")
    return ids


def _module_name(model: Any, module: Any) -> str:
    for name, candidate in model.named_modules():
        if candidate is module:
            return str(name)
    raise ValueError("module not found in the model")


def attach_lora(model: Any, token_ids: Sequence[int], options: SelfRefOptions) -> Any:
    """Wrap ``model`` in a LoRA adapter whose confidence-token rows are trainable.

    The rows are made trainable with ``trainable_token_indices``: only those rows are
    stored in the adapter (not the whole embedding matrix, as ``modules_to_save`` would).
    When the LM head is not tied to the input embeddings, its rows are trained too —
    otherwise both new tokens would keep identical output rows and equal logits."""
    from peft import LoraConfig, get_peft_model

    embeddings = model.get_input_embeddings()
    head = model.get_output_embeddings()
    indices: dict[str, list[int]] = {
        _module_name(model, embeddings).rsplit(".", 1)[-1]: list(token_ids)
    }
    if head is not None and head.weight is not embeddings.weight:
        indices[_module_name(model, head).rsplit(".", 1)[-1]] = list(token_ids)
    config = LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=options.target_modules,
        trainable_token_indices=indices,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _batch(
    pad: int, id_rows: Sequence[Sequence[int]], max_length: int, device: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded ids, attention mask and position ids: the last column is always the
    position whose next token is the confidence token (long rows keep their end)."""
    import torch

    rows = [list(r)[-max_length:] for r in id_rows]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def _steps(options: SelfRefOptions, examples: int) -> int:
    if options.max_steps is not None:
        return options.max_steps
    per_epoch = -(-examples // options.batch_size)
    return max(1, round(options.epochs * per_epoch))


def train_confidence_tokens(
    model: Any,
    tokenizer: Any,
    examples: Sequence[SelfRefExample],
    options: SelfRefOptions,
    *,
    confident_token: str = CONFIDENT_TOKEN,
    uncertain_token: str = UNCERTAIN_TOKEN,
) -> tuple[Any, SelfRefStats]:
    """Add the tokens, attach LoRA, train on ``examples`` (already rebalanced); returns the
    peft model (in eval mode) and the statistics."""
    import torch
    from tqdm.auto import tqdm

    if not examples:
        raise ConfigError("no training examples for the confidence tokens")
    token_ids = add_confidence_tokens(model, tokenizer, (confident_token, uncertain_token))
    torch.manual_seed(options.seed)
    peft_model = attach_lora(model, list(token_ids.values()), options)
    peft_model.train()
    device = next(peft_model.parameters()).device
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=options.learning_rate, weight_decay=options.weight_decay
    )
    steps = _steps(options, len(examples))
    stats = SelfRefStats(
        balanced_examples=len(examples),
        confident_token=confident_token,
        uncertain_token=uncertain_token,
        token_ids=token_ids,
        options=asdict(options),
    )
    rng = random.Random(options.seed)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    order: list[SelfRefExample] = []
    with tqdm(
        total=steps, desc="training <CN>/<UN>", unit="step", disable=not options.progress
    ) as bar:
        for _ in range(steps):
            if len(order) < options.batch_size:
                refill = list(examples)
                rng.shuffle(refill)
                order.extend(refill)
            batch, order = order[: options.batch_size], order[options.batch_size :]
            ids, mask, positions = _batch(pad, [e.ids for e in batch], options.max_length, device)
            targets = torch.tensor(
                [token_ids[confident_token if e.confident else uncertain_token] for e in batch],
                device=device,
            )
            out = peft_model(
                input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
            )
            loss = torch.nn.functional.cross_entropy(out.logits[:, -1, :].float(), targets)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            stats.first_loss = value if stats.first_loss is None else stats.first_loss
            stats.last_loss = value
            stats.steps += 1
            bar.set_postfix(loss=f"{value:.4f}")
            bar.update(1)
    peft_model.eval()
    return peft_model, stats


def save_selfref(peft_model: Any, tokenizer: Any, out: str | Path, stats: SelfRefStats) -> Path:
    """Write the adapter, the tokenizer (with the confidence tokens) and ``selfref.json``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / SELFREF_METADATA).write_text(json.dumps(asdict(stats), indent=2) + "\n")
    return folder
