"""Turns prompts into the feature matrix the difficulty router scores.

Blocks, each optional, concatenated in this order:

0. ``static`` — mean of the encoder's input token embeddings over the first
   ``static_tokens`` tokens (no transformer layers: cheap enough for long windows);
1. ``static_tail`` — for each ``n`` in ``static_tail_tokens``, the same static mean over
   the last ``n`` tokens only (where the question usually is; several window sizes
   weigh the end of the prompt more than any single mean);
2. ``head`` — sentence embedding of the first ``head_tokens`` tokens;
3. ``tail`` — sentence embedding of the last ``tail_tokens`` tokens (where the actual
   question of a long prompt usually is); ``tail_layers=k`` runs only the encoder's
   first ``k`` transformer layers for it (cost about linear in ``k``);
4. ``text`` — the cheap features of :mod:`classifiers.text_features`;
5. ``request`` — sentence embedding (all transformer layers, mean-pooled, normalised) of
   the prompt's actual request (:func:`classifiers.request_text.extract_request`: few-shot
   exemplars, format instructions and the answer cue removed), first ``request_tokens``
   tokens;
6. ``length`` — ``log1p`` of the request's characters and words;
7. ``request_static`` — static mean (input token embeddings, no transformer layers) over
   the extracted request's first ``request_static_tokens`` tokens: the request's words
   at about a hundredth of the cost of block 5;
8. ``prompt_length`` — ``log1p`` of the whole prompt's characters (template included): the
   prompt-length baseline as a column, which the router blends with its learned score
   (:class:`classifiers.difficulty.LengthBlend`) rather than learning a weight for it.

Blocks 5 to 7 describe the request rather than its template; they are what the shipped
router uses (see the README's router section for what each block is worth across sources).
:attr:`PromptFeaturizer.featurizer_id` names the exact feature layout, so feature vectors
stored without their prompt (the decision log) can be matched to a router later.

Example::

    >>> from classifiers.featurizer import FeaturizerConfig, PromptFeaturizer
    >>> featurizer = PromptFeaturizer(FeaturizerConfig(head_tokens=128, tail_tokens=64))
    >>> featurizer.features(["What is 2 + 2?"]).shape        # doctest: +SKIP
    (1, 792)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from classifiers.encoder import TextEncoder
from classifiers.request_text import extract_request
from classifiers.text_features import FEATURE_NAMES, text_features

__all__ = ["FeaturizerConfig", "PromptFeaturizer"]


@dataclass(frozen=True)
class FeaturizerConfig:
    """Which feature blocks a router uses.

    Attributes:
        encoder_path: sentence-transformers model folder; ``None`` is the bundled
            all-MiniLM-L6-v2.
        static_tokens: tokens averaged by the static block; 0 disables the block.
        static_tail_tokens: window sizes (tokens from the end) of the static tail block;
            empty disables the block.
        head_tokens: tokens of the prompt's beginning to embed; 0 disables the block.
        tail_tokens: tokens of the prompt's end to embed; 0 disables the block.
        tail_layers: transformer layers run for the tail block; ``None`` runs them all.
        text_features: whether to append the cheap text features.
        request_tokens: tokens of the extracted request to embed; 0 disables the block.
        request_length: whether to append the request's log length (chars, words).
        request_static_tokens: tokens of the extracted request averaged by the static
            request block; 0 disables the block.
        prompt_length: whether to append ``log1p`` of the whole prompt's characters (last
            column; left out of :meth:`to_json` when false, so older ids stay the same).
    """

    encoder_path: str | None = None
    static_tokens: int = 512
    static_tail_tokens: tuple[int, ...] = ()
    head_tokens: int = 0
    tail_tokens: int = 32
    tail_layers: int | None = None
    text_features: bool = True
    request_tokens: int = 0
    request_length: bool = False
    request_static_tokens: int = 0
    prompt_length: bool = False

    def __post_init__(self) -> None:
        for name in (
            "static_tokens",
            "head_tokens",
            "tail_tokens",
            "request_tokens",
            "request_static_tokens",
        ):
            value = getattr(self, name)
            if value != 0 and value < 4:
                raise ValueError(f"{name} must be 0 or >= 4, got {value}")
        for size in self.static_tail_tokens:
            if size < 4:
                raise ValueError(f"static_tail_tokens must all be >= 4, got {size}")
        if not (
            self.static_tokens
            or self.static_tail_tokens
            or self.head_tokens
            or self.tail_tokens
            or self.text_features
            or self.request_tokens
            or self.request_length
            or self.request_static_tokens
            or self.prompt_length
        ):
            raise ValueError("a featurizer needs at least one feature block")
        if self.tail_layers is not None and self.tail_layers < 1:
            raise ValueError(f"tail_layers must be None or >= 1, got {self.tail_layers}")

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (see :meth:`from_json`)."""
        data = asdict(self)
        data["static_tail_tokens"] = list(self.static_tail_tokens)
        if not self.prompt_length:
            del data["prompt_length"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeaturizerConfig:
        """Inverse of :meth:`to_json`; unknown keys are an error."""
        known = {
            "encoder_path",
            "static_tokens",
            "static_tail_tokens",
            "head_tokens",
            "tail_tokens",
            "tail_layers",
            "text_features",
            "request_tokens",
            "request_length",
            "request_static_tokens",
            "prompt_length",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown featurizer settings: {sorted(unknown)}")
        if "static_tail_tokens" in data:
            data = {**data, "static_tail_tokens": tuple(data["static_tail_tokens"])}
        return cls(**data)

    @property
    def featurizer_id(self) -> str:
        """Stable id of the feature layout: equal ids give comparable feature vectors."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return "feat-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def request_length_features(requests: Sequence[str]) -> np.ndarray:
    """``log1p`` of characters and of words of each (already extracted) request."""
    return np.array(
        [[math.log1p(len(r)), math.log1p(len(r.split()))] for r in requests], dtype=np.float32
    ).reshape(len(requests), 2)


def prompt_length_features(prompts: Sequence[str]) -> np.ndarray:
    """``log1p`` of each whole prompt's characters, float32 ``(n, 1)``."""
    return np.array([math.log1p(len(p)) for p in prompts], dtype=np.float32).reshape(-1, 1)


class PromptFeaturizer:
    """Computes the router's features for a batch of prompts; thread-safe."""

    def __init__(self, config: FeaturizerConfig) -> None:
        self.config = config
        self._static = (
            TextEncoder(
                config.encoder_path,
                max_seq_length=config.static_tokens,
                window="head",
                static=True,
                batch_size=128,
            )
            if config.static_tokens
            else None
        )
        self._static_tail = [
            TextEncoder(
                config.encoder_path,
                max_seq_length=size,
                window="tail",
                static=True,
                batch_size=128,
            )
            for size in config.static_tail_tokens
        ]
        self._head = (
            TextEncoder(config.encoder_path, max_seq_length=config.head_tokens, window="head")
            if config.head_tokens
            else None
        )
        self._tail = (
            TextEncoder(
                config.encoder_path,
                max_seq_length=config.tail_tokens,
                window="tail",
                layers=config.tail_layers,
            )
            if config.tail_tokens
            else None
        )
        self._request = (
            TextEncoder(config.encoder_path, max_seq_length=config.request_tokens, window="head")
            if config.request_tokens
            else None
        )

        self._request_static = (
            TextEncoder(
                config.encoder_path,
                max_seq_length=config.request_static_tokens,
                window="head",
                static=True,
                batch_size=128,
            )
            if config.request_static_tokens
            else None
        )

    @property
    def featurizer_id(self) -> str:
        """See :attr:`FeaturizerConfig.featurizer_id`."""
        return self.config.featurizer_id

    def block_names(self) -> list[str]:
        """Names of the feature blocks, in column order."""
        names = []
        if self._static is not None:
            names.append("static")
        if self._static_tail:
            names.append("static_tail")
        if self._head is not None:
            names.append("head")
        if self._tail is not None:
            names.append("tail")
        if self.config.text_features:
            names.append("text")
        if self._request is not None:
            names.append("request")
        if self.config.request_length:
            names.append("length")
        if self._request_static is not None:
            names.append("request_static")
        if self.config.prompt_length:
            names.append("prompt_length")
        return names

    def blocks(
        self,
        prompts: Sequence[str],
        *,
        show_progress_bar: bool = False,
        only: Collection[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Each feature block separately, float32 ``(n, d_block)``; ``only`` picks some."""
        wanted = set(self.block_names() if only is None else only)
        out: dict[str, np.ndarray] = {}
        bar = show_progress_bar
        if self._static is not None and "static" in wanted:
            out["static"] = self._static.encode(prompts, show_progress_bar=bar)
        if self._static_tail and "static_tail" in wanted:
            out["static_tail"] = np.concatenate(
                [e.encode(prompts, show_progress_bar=bar) for e in self._static_tail], axis=1
            )
        if self._head is not None and "head" in wanted:
            out["head"] = self._head.encode(prompts, show_progress_bar=bar)
        if self._tail is not None and "tail" in wanted:
            out["tail"] = self._tail.encode(prompts, show_progress_bar=bar)
        if self.config.text_features and "text" in wanted:
            out["text"] = text_features(prompts)
        if wanted & {"request", "length", "request_static"}:
            requests = [extract_request(p) for p in prompts]
            if self._request is not None and "request" in wanted:
                out["request"] = self._request.encode(requests, show_progress_bar=bar)
            if self.config.request_length and "length" in wanted:
                out["length"] = request_length_features(requests)
            if self._request_static is not None and "request_static" in wanted:
                out["request_static"] = self._request_static.encode(requests, show_progress_bar=bar)
        if self.config.prompt_length and "prompt_length" in wanted:
            out["prompt_length"] = prompt_length_features(prompts)
        return out

    def features(self, prompts: Sequence[str], *, show_progress_bar: bool = False) -> np.ndarray:
        """All blocks concatenated, float32 ``(n, d)``."""
        blocks = self.blocks(prompts, show_progress_bar=show_progress_bar)
        return np.concatenate([blocks[name] for name in self.block_names()], axis=1)

    @staticmethod
    def text_feature_names() -> tuple[str, ...]:
        """Column names of the ``text`` block."""
        return FEATURE_NAMES
