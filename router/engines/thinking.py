"""Budget forcing: a transformers ``LogitsProcessor`` that closes thinking at the budget.

`ThinkingBudgetProcessor`: once a row has spent its budget of tokens since the last
``<think>`` it forces the closing sequence (``</think>\n\n`` by default) token by token,
after which the model answers freely. Its state comes from the tokens so far, never from a
call counter, so it is correct for every row of a batch, in streaming, and when reused.

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


class _Encoder(Protocol):
    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


def _encode(tokenizer: _Encoder, text: str, what: str) -> list[int]:
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    if not ids:
        raise ValueError(f"the thinking {what} {text!r} encodes to no tokens")
    return ids


class ThinkingBudgetProcessor(LogitsProcessor):
    """Force the closing sequence once a row has spent its thinking budget.

    For each row: find the last open-marker token sequence (prompt or generated); the
    tokens after it (and after ``prompt_length``, so template text such as the newline
    after ``<think>`` in the prompt is not counted) are thinking tokens. If the close
    marker appears before the budget is reached, the row is left alone. Otherwise, from
    position ``open + budget`` on, the tokens of ``close_sequence`` are forced one per step;
    once it is complete, generation continues unconstrained. A budget of 0 closes at once;
    ``None`` leaves the row unconstrained.

    Args:
        tokenizer: anything with ``encode(text, add_special_tokens=False)``.
        markers: the model's thinking markers (``open``, ``close``, ``close_sequence``).
        budgets: one budget per batch row (``None`` = no cap).
        prompt_length: length of the (padded) prompt in ``input_ids``; tokens before it
            are never counted as spent.
    """

    def __init__(
        self,
        tokenizer: _Encoder,
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
        self.open_ids = _encode(tokenizer, markers.open, "open marker")
        self.close_ids = _encode(tokenizer, markers.close, "close marker")
        self.close_sequence_ids = _encode(tokenizer, markers.close_sequence, "close sequence")
        self.budgets = list(budgets)
        self.prompt_length = prompt_length
        n = len(self.close_ids)
        # A close marker the model began on its own right at the budget is completed
        # rather than restarted; that needs the forced sequence to begin with it.
        self._can_resume = self.close_sequence_ids[:n] == self.close_ids

    def forced_token(self, row: Sequence[int], budget: int | None) -> int | None:
        """The token this row must produce next, or None when it is free."""
        if budget is None:
            return None
        opened = find_last(row, self.open_ids)
        if opened < 0:
            return None
        start = max(opened + len(self.open_ids), self.prompt_length)
        limit = start + budget
        if len(row) < limit:
            return None
        if find_first(row, self.close_ids, opened + len(self.open_ids), limit) >= 0:
            return None
        begun = 0
        if self._can_resume:
            for j in range(len(self.close_ids) - 1, 0, -1):
                if limit - j >= start and list(row[limit - j : limit]) == self.close_ids[:j]:
                    begun = j
                    break
        k = len(row) - limit + begun
        if k < len(self.close_sequence_ids):
            return self.close_sequence_ids[k]
        return None

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
        return scores
