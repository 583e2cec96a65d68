"""Budget forcing: a transformers ``LogitsProcessor`` that closes thinking at the budget.

`ThinkingBudgetProcessor`: once a row has spent its budget of tokens since its (first)
``<think>`` it forces the closing sequence (``</think>\n\n`` by default) token by token,
after which the model answers freely; a closed section is never reopened or forced again.
Its state comes from the tokens so far, never from a call counter, so it is correct for
every row of a batch, in streaming, and when reused.

Markers may be single special tokens (``<think>`` in Qwen3's vocabulary) or plain text
that tokenises into several tokens (Gemma 3 270M has no ``<think>`` token): the processor
matches the open/close markers as token *sequences*, and the engine puts the open marker
into prompts as exactly that sequence. Splitting text into reasoning and answer is in
`router.engines.thinking_text` (re-exported here).

Example::

    processor = ThinkingBudgetProcessor(tokenizer, ThinkingMarkers(), budgets=[16, None])
    model.generate(**batch, logits_processor=LogitsProcessorList([processor]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from transformers import LogitsProcessor

from router.config import ThinkingMarkers
from router.engines.thinking_text import (
    ThinkingSplitter,
    count_reasoning_tokens,
    find_first,
    find_last,
    split_thinking,
)

__all__ = [
    "ThinkingBudgetProcessor",
    "ThinkingSplitter",
    "count_reasoning_tokens",
    "split_thinking",
]


class _Tokenizer(Protocol):
    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, token_ids: list[int], skip_special_tokens: bool = ...) -> str: ...


def _encode(tokenizer: _Tokenizer, text: str, what: str) -> list[int]:
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    if not ids:
        raise ValueError(f"the thinking {what} {text!r} encodes to no tokens")
    return ids


class ThinkingBudgetProcessor(LogitsProcessor):
    """Force the closing sequence once a row has spent its thinking budget; never reopen.

    For each row, the thinking section is anchored once: on the last open marker inside
    the prompt when the prompt leaves it open (a thinking-mode prompt ends with
    ``<think>``), else on the *first* open marker after the prompt. The tokens after it
    (and after ``prompt_length``, so template text such as the newline after ``<think>`` in
    the prompt is not counted) are thinking tokens. Once the section is closed - the close
    marker seen as its token sequence, or as text spelled with other tokens - nothing is
    ever forced again, and the open marker cannot be completed again (its last token is
    banned after its other tokens), so a section cannot reopen with a fresh budget. While
    it is open, from position ``anchor + budget`` on, the tokens of ``close_sequence`` are
    forced one per step; then generation continues unconstrained. A budget of 0 closes at
    once; ``None`` sets no cap (a closed section still cannot reopen).

    Args:
        tokenizer: anything with ``encode(text, add_special_tokens=False)`` and
            ``decode(ids, skip_special_tokens=False)``.
        markers: the model's thinking markers (``open``, ``close``, ``close_sequence``).
        budgets: one budget per batch row (``None`` = no cap).
        prompt_length: length of the (padded) prompt in ``input_ids``; tokens before it
            are never counted as spent. Pass it with chat prompts that hold earlier turns.
    """

    def __init__(
        self,
        tokenizer: _Tokenizer,
        markers: ThinkingMarkers,
        budgets: Sequence[int | None],
        prompt_length: int = 0,
    ) -> None:
        if not budgets:
            raise ValueError("budgets must name one budget per batch row, got none")
        for budget in budgets:
            if budget is not None and (isinstance(budget, bool) or budget < 0):
                raise ValueError(f"thinking budgets must be >= 0 or None, got {budget!r}")
        if prompt_length < 0:
            raise ValueError(f"prompt_length must be >= 0, got {prompt_length}")
        if not markers.close_sequence.startswith(markers.close):
            raise ValueError(
                f"close_sequence {markers.close_sequence!r} must start with the close "
                f"marker {markers.close!r}"
            )
        self._tokenizer = tokenizer
        self.close_text = markers.close
        self.open_ids = _encode(tokenizer, markers.open, "open marker")
        self.close_ids = _encode(tokenizer, markers.close, "close marker")
        self.close_sequence_ids = _encode(tokenizer, markers.close_sequence, "close sequence")
        self.budgets = list(budgets)
        self.prompt_length = prompt_length
        n = len(self.close_ids)
        # A close marker the model began on its own right at the budget is completed
        # rather than restarted; that needs the forced sequence to begin with it.
        self._can_resume = self.close_sequence_ids[:n] == self.close_ids

    def section_start(self, row: Sequence[int], prompt_length: int | None = None) -> int:
        """Where the row's thinking tokens start (just after its anchored open marker), or
        -1 when no section was opened."""
        prompt = self.prompt_length if prompt_length is None else prompt_length
        m = len(self.open_ids)
        in_prompt = find_last(row, self.open_ids, 0, prompt)
        if in_prompt >= 0 and find_first(row, self.close_ids, in_prompt + m, prompt) < 0:
            return max(in_prompt + m, prompt)
        opened = find_first(row, self.open_ids, max(0, prompt - m + 1))
        return -1 if opened < 0 else max(opened + m, prompt)

    def _closed(self, row: Sequence[int], start: int, end: int | None = None) -> bool:
        """The close marker appears in ``row[start:end]``, as tokens or as text."""
        if find_first(row, self.close_ids, start, end) >= 0:
            return True
        span = list(row[start:end])
        text = self._tokenizer.decode(span, skip_special_tokens=False) if span else ""
        return self.close_text in text

    def forced_token(
        self, row: Sequence[int], budget: int | None, prompt_length: int | None = None
    ) -> int | None:
        """The token this row must produce next, or None when it is free."""
        if budget is None:
            return None
        start = self.section_start(row, prompt_length)
        if start < 0:
            return None
        limit = start + budget
        if len(row) < limit:
            return None
        begun = 0
        if self._can_resume:
            for j in range(len(self.close_ids) - 1, 0, -1):
                if limit - j >= start and list(row[limit - j : limit]) == self.close_ids[:j]:
                    begun = j
                    break
        k = len(row) - limit + begun
        if k >= len(self.close_sequence_ids):
            return None
        if self._closed(row, start, limit):  # the model closed the section itself
            return None
        return self.close_sequence_ids[k]

    def banned_token(self, row: Sequence[int], prompt_length: int | None = None) -> int | None:
        """The token that would reopen this row's closed section (the open marker's last
        token, right after its other tokens), or None."""
        head = self.open_ids[:-1]
        if head and list(row[len(row) - len(head) :]) != head:
            return None
        start = self.section_start(row, prompt_length)
        if start < 0 or not self._closed(row, start):
            return None
        return self.open_ids[-1]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != len(self.budgets):
            raise ValueError(
                f"ThinkingBudgetProcessor got {input_ids.shape[0]} rows for "
                f"{len(self.budgets)} budgets"
            )
        rows = input_ids.tolist()
        for i, (row, budget) in enumerate(zip(rows, self.budgets, strict=True)):
            token = self.forced_token(row, budget)
            if token is not None:
                scores[i, :] = float("-inf")
                scores[i, token] = 0.0
                continue
            banned = self.banned_token(row)
            if banned is not None:
                scores[i, banned] = float("-inf")
        return scores
