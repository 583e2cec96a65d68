"""Vectorised sampling over a batch: per-row temperature, top-k, top-p and seed in one pass.

Each row draws one uniform number from its own ``torch.Generator`` (so a seeded row samples
the same whatever else is in the batch); everything else is tensor work over the whole batch:
temperature scaling, top-k and top-p masks on the sorted logits, and inverse-CDF sampling
(`torch.searchsorted`). Greedy rows (temperature 0) and rows with a single finite logit (a
forced token) take the argmax.

Example::

    settings = BatchSettings.of([row.params for row in rows], device)
    tokens = sample(logits, settings, [row.generator for row in rows])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from router.sampling import SamplingParams


@dataclass(frozen=True)
class BatchSettings:
    """The sampling settings of a batch as tensors, one entry per row."""

    temperature: torch.Tensor
    top_k: torch.Tensor
    top_p: torch.Tensor
    greedy: torch.Tensor
    any_sampled: bool

    @classmethod
    def of(cls, params: Sequence[SamplingParams], device: torch.device) -> BatchSettings:
        greedy = [p.greedy for p in params]
        return cls(
            temperature=torch.tensor(
                [p.temperature if not p.greedy else 1.0 for p in params], device=device
            )[:, None],
            top_k=torch.tensor([p.top_k for p in params], device=device)[:, None],
            top_p=torch.tensor([p.top_p for p in params], device=device)[:, None],
            greedy=torch.tensor(greedy, device=device),
            any_sampled=not all(greedy),
        )


def sample(
    logits: torch.Tensor, settings: BatchSettings, generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """One token per row of ``logits`` ([rows, vocab], already masked for forced/banned
    tokens); returns a long tensor [rows]."""
    best = torch.argmax(logits, dim=-1)
    if not settings.any_sampled:
        return best
    x = logits / settings.temperature
    ordered, order = torch.sort(x, dim=-1, descending=True)
    ranks = torch.arange(x.shape[-1], device=x.device)[None, :]
    k = torch.where(settings.top_k > 0, settings.top_k, x.shape[-1])
    ordered = ordered.masked_fill(ranks >= k, float("-inf"))
    probs = torch.softmax(ordered, dim=-1)
    cumulative = torch.cumsum(probs, dim=-1)
    drop = (cumulative - probs) > settings.top_p
    probs = probs.masked_fill(drop, 0.0)
    cumulative = torch.cumsum(probs, dim=-1)
    uniforms = torch.stack([torch.rand((), generator=g, device=x.device) for g in generators])
    target = uniforms[:, None] * cumulative[:, -1:]
    picked = torch.searchsorted(cumulative, target, right=True).clamp(max=x.shape[-1] - 1)
    # Never land on a dropped (zero-probability) tail entry through rounding.
    picked = torch.minimum(picked, (probs > 0).sum(dim=-1, keepdim=True) - 1)
    sampled = order.gather(-1, picked).squeeze(-1)
    single = torch.isfinite(logits).sum(dim=-1) == 1
    return torch.where(settings.greedy | single, best, sampled)
