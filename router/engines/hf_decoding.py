"""Decoding rows of the transformers engine: per-row state, and the static batch loop.

`_Row` holds one row's state - its tokens, incremental text (`IncrementalDetokenizer`),
reasoning/content split (`ThinkingSplitter`), stop sequences (`StopMatcher`), logprobs -
and turns each new token into a `RowDelta`. The engine serves through the continuous
batching scheduler (`router.engines.scheduler`), which drives these rows. `decode_rows` is
the static loop it replaced (one left-padded batch decoded until its longest row ends, rows
sampled one by one); it stays as the baseline of ``bench/mixed_load.py``
(`TransformersEngine.decode_static`). Budget forcing is `ThinkingBudgetProcessor`, applied
to the raw logits; log-probabilities are those of the raw model distribution (before
temperature/top-k/top-p).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from router.config import ThinkingMarkers
from router.engines.base import Completion, FinishReason, TokenLogprob, TopLogprob
from router.engines.thinking import ThinkingBudgetProcessor
from router.engines.thinking_text import ThinkingSplitter, count_reasoning_tokens
from router.sampling import SamplingParams


@dataclass(frozen=True)
class RowSpec:
    """One sequence to generate (one choice of one request)."""

    prompt_ids: list[int]
    params: SamplingParams
    seed: int | None
    in_thinking: bool
    stop: tuple[str, ...]


@dataclass
class RowDelta:
    row: int
    content: str = ""
    reasoning: str = ""
    logprobs: list[TokenLogprob] = field(default_factory=list)
    completion: Completion | None = None
    """Set once, on the step where the row finishes."""


class IncrementalDetokenizer:
    """Token ids in, new text out; holds back incomplete UTF-8 (the vLLM/TGI offsets)."""

    def __init__(self, tokenizer: Any, skip_ids: frozenset[int]) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_ids
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: Sequence[int]) -> str:
        text: str = self._tokenizer.decode(
            list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        return text

    def add(self, token: int) -> str:
        if token in self._skip:
            return ""
        self.ids.append(token)
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        self._prefix = self._read = len(self.ids)
        return after[len(before) :] if len(after) > len(before) else ""


class StopMatcher:
    """Cut text at the first stop sequence; hold back what may begin one."""

    def __init__(self, stop: Sequence[str]) -> None:
        self._stop = tuple(stop)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped or not self._stop:
            return "" if self.stopped else text
        buffer = self._held + text
        cut = min((i for i in (buffer.find(s) for s in self._stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return buffer[:cut]
        keep = 0
        for s in self._stop:
            for n in range(min(len(s) - 1, len(buffer)), 0, -1):
                if s.startswith(buffer[-n:]):
                    keep = max(keep, n)
                    break
        self._held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held


class _Row:
    """Decoding state of one row."""

    def __init__(self, spec: RowSpec, tokenizer: Any, skip: frozenset[int], m: ThinkingMarkers):
        self.spec = spec
        self.generated: list[int] = []
        self.finished = False
        self.finish_reason: FinishReason = "length"
        self.forced_close = False
        self.detok = IncrementalDetokenizer(tokenizer, skip)
        self.splitter = ThinkingSplitter(m.open, m.close, in_thinking=spec.in_thinking)
        self.stops = StopMatcher(spec.stop)
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.logprobs: list[TokenLogprob] = []

    def absorb(self, text: str, logprob: TokenLogprob | None, delta: RowDelta) -> None:
        was_thinking = self.splitter.thinking
        reasoning, content = self.splitter.feed(text)
        self._emit(reasoning, content, delta)
        if logprob is not None and not was_thinking and self.splitter.answer_started:
            self.logprobs.append(logprob)
            delta.logprobs.append(logprob)

    def _emit(self, reasoning: str, content: str, delta: RowDelta) -> None:
        if reasoning:
            self.reasoning.append(reasoning)
            delta.reasoning += reasoning
        content = self.stops.feed(content)
        if content:
            self.content.append(content)
            delta.content += content
        if self.stops.stopped:
            self.finished, self.finish_reason = True, "stop"

    def finish(self, delta: RowDelta, *, close_ids: list[int], open_ids: list[int]) -> None:
        self.finished = True
        if not self.stops.stopped:
            self._emit(*self.splitter.feed(self.detok.flush()), delta)
            self._emit(*self.splitter.flush(), delta)
            tail = self.stops.flush()
            if tail:
                self.content.append(tail)
                delta.content += tail
        reasoning_tokens, _ = count_reasoning_tokens(
            self.detok.ids,
            close_ids=close_ids,
            open_ids=open_ids,
            in_thinking=self.spec.in_thinking,
            decode=self.detok._decode,
            close_text=self.splitter.close_text,
        )
        want = self.spec.params.logprobs or self.spec.params.top_logprobs > 0
        delta.completion = Completion(
            text="".join(self.content),
            reasoning="".join(self.reasoning) if self.splitter.saw_thinking else None,
            finish_reason=self.finish_reason,
            completion_tokens=len(self.generated),
            reasoning_tokens=reasoning_tokens if self.splitter.saw_thinking else 0,
            logprobs=list(self.logprobs) if want else None,
            thinking_budget=self.spec.params.thinking_budget,
            forced_close=self.forced_close,
        )


def _sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    if params.greedy or torch.isfinite(logits).sum() == 1:
        return int(torch.argmax(logits).item())
    x = logits / params.temperature
    if params.top_k > 0 and params.top_k < x.shape[-1]:
        kth = torch.topk(x, params.top_k).values[-1]
        x = x.masked_fill(x < kth, float("-inf"))
    if params.top_p < 1.0:
        ordered, order = torch.sort(x, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        drop = torch.cumsum(probs, dim=-1) - probs > params.top_p
        x = x.clone()
        x[order[drop]] = float("-inf")
    probs = torch.softmax(x, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator).item())


def _token_logprob(tokenizer: Any, token: int, raw: torch.Tensor, top: int) -> TokenLogprob:
    def text(t: int) -> str:
        piece: str = tokenizer.decode([t], skip_special_tokens=False)
        return piece

    alternatives: list[TopLogprob] = []
    if top > 0:
        values, indices = torch.topk(raw, top)
        alternatives = [
            TopLogprob(text(int(i)), float(v))
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]
    return TokenLogprob(text(token), token, float(raw[token].item()), tuple(alternatives))


def cache_kwarg_of(model: Any) -> str:
    """The forward argument that takes the KV cache: ``cache`` (transformers >= 5.2x) or
    ``past_key_values`` (older)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    parameters = inspect.signature(type(base).forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def cache_of(output: Any) -> Any:
    """The KV cache of a forward output, under either name."""
    for name in ("cache", "past_key_values"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    return None


def decode_rows(
    model: Any,
    tokenizer: Any,
    specs: Sequence[RowSpec],
    *,
    markers: ThinkingMarkers,
    eos_ids: frozenset[int],
    skip_ids: frozenset[int],
    banned_when_not_thinking: tuple[int, ...],
    cache_kwarg: str = "past_key_values",
) -> Iterator[list[RowDelta]]:
    """Decode all rows together; yield each step's deltas (finished rows get a completion)."""
    device = model.device
    pad = tokenizer.pad_token_id
    width = max(len(s.prompt_ids) for s in specs)
    rows = [_Row(s, tokenizer, skip_ids, markers) for s in specs]
    ids = torch.full((len(specs), width), pad, dtype=torch.long, device=device)
    mask = torch.zeros((len(specs), width), dtype=torch.long, device=device)
    for i, s in enumerate(specs):
        ids[i, width - len(s.prompt_ids) :] = torch.tensor(s.prompt_ids, device=device)
        mask[i, width - len(s.prompt_ids) :] = 1
    budgets = [s.params.thinking_budget if s.in_thinking else None for s in specs]
    processor = ThinkingBudgetProcessor(tokenizer, markers, budgets, prompt_length=width)
    generators = []
    for s in specs:
        g = torch.Generator(device=device)
        g.manual_seed(s.seed) if s.seed is not None else g.seed()
        generators.append(g)
    # Padded like ``ids``: the processor sees what transformers' generate would show it.
    sequences = [[pad] * (width - len(s.prompt_ids)) + list(s.prompt_ids) for s in specs]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    step_ids, cache = ids, None
    with torch.inference_mode():
        while True:
            out = model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **{cache_kwarg: cache},
                logits_to_keep=1,
            )
            cache = cache_of(out)
            logits = out.logits[:, -1, :].float()
            raw = torch.log_softmax(logits, dim=-1)
            deltas: list[RowDelta] = []
            chosen: list[int] = []
            for i, row in enumerate(rows):
                if row.finished:
                    chosen.append(pad)
                    continue
                delta = RowDelta(i)
                deltas.append(delta)
                scores = logits[i].clone()
                forced = processor.forced_token(sequences[i], budgets[i])
                if forced is not None:
                    row.forced_close = True
                    scores.fill_(float("-inf"))
                    scores[forced] = 0.0
                elif banned_when_not_thinking and not row.spec.in_thinking:
                    scores[list(banned_when_not_thinking)] = float("-inf")  # thinking off
                else:  # a closed section cannot reopen (it would escape the budget)
                    banned = processor.banned_token(sequences[i])
                    if banned is not None:
                        scores[banned] = float("-inf")
                token = _sample(scores, row.spec.params, generators[i])
                chosen.append(token)
                row.generated.append(token)
                sequences[i].append(token)
                params = row.spec.params
                lp = None
                if params.logprobs or params.top_logprobs > 0:
                    lp = _token_logprob(tokenizer, token, raw[i], params.top_logprobs)
                if token in eos_ids:
                    row.finish_reason = "stop"
                    row.finish(delta, close_ids=processor.close_ids, open_ids=processor.open_ids)
                    continue
                row.absorb(row.detok.add(token), lp, delta)
                if not row.finished and len(row.generated) >= params.max_tokens:
                    row.finish_reason = "length"
                if row.finished or len(row.generated) >= params.max_tokens:
                    row.finish(delta, close_ids=processor.close_ids, open_ids=processor.open_ids)
            yield deltas
            if all(r.finished for r in rows):
                return
            step_ids = torch.tensor(chosen, dtype=torch.long, device=device)[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
            positions = positions[:, -1:] + 1
