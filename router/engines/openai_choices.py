"""Reading an OpenAI-compatible upstream's choices: text, reasoning, log-probs, token counts.

An upstream reports reasoning either in its own field (``reasoning_content``, or
``reasoning`` in newer vLLM) or, without a reasoning parser, as raw ``<think>…</think>``
text inside ``content``. `ChoiceText` accepts both, message by message or delta by delta,
and separates them with the shared `ThinkingSplitter`.

Token counts: an upstream reports ``usage`` for the whole response, not per choice. With
one choice the counts are the upstream's own; with several, a choice cut by ``max_tokens``
used exactly that many, and the rest of the total is shared out by the other choices'
log-prob counts when those add up to it, else in proportion to their text length (the total
stays exact). Reasoning tokens are the upstream's
``completion_tokens_details.reasoning_tokens`` when it reports a positive number; otherwise
a choice that produced only reasoning counts all its tokens as reasoning, and one with both
shares its tokens by text length.

Example::

    choice = ChoiceText(ThinkingMarkers(), "auto")
    choice.feed(reasoning="", content="<think>4</think>Four")   # ("4", "Four")
    choice.finish()
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import Any, Literal

from router.config import ThinkingMarkers
from router.engines.base import (
    Completion,
    FinishReason,
    StreamEvent,
    TokenLogprob,
    TopLogprob,
)
from router.engines.thinking_text import ThinkingSplitter

ChoiceMode = Literal["auto", "thinking", "answer"]
"""How raw ``content`` is read: ``auto`` — an answer, possibly opening with a thinking
section; ``thinking`` — thinking (an optional leading open marker is dropped) until a close
marker, then answer; ``answer`` — all of it is answer, reasoning fields included (a
continuation after closed thinking)."""

UNKNOWN_TOKEN_ID = -1
"""OpenAI-compatible APIs return token strings, not ids."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def reasoning_of(message: Any) -> str:
    """The reasoning field of a message or delta (``reasoning_content`` or ``reasoning``)."""
    if not isinstance(message, dict):
        return ""
    return _text(message.get("reasoning_content")) or _text(message.get("reasoning"))


def content_of(message: Any) -> str:
    return _text(message.get("content")) if isinstance(message, dict) else ""


def finish_reason_of(value: Any) -> FinishReason | None:
    """``length`` stays ``length``; any other reason the upstream gives ends as ``stop``."""
    if value is None:
        return None
    return "length" if value == "length" else "stop"


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else -math.inf


def parse_logprobs(payload: Any) -> list[TokenLogprob]:
    """``choices[].logprobs`` (``{"content": [{token, logprob, top_logprobs}]}``) as
    `TokenLogprob`s; token ids are `UNKNOWN_TOKEN_ID`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("content"), list):
        return []
    out: list[TokenLogprob] = []
    for item in payload["content"]:
        if not isinstance(item, dict):
            continue
        top = item.get("top_logprobs")
        alternatives = tuple(
            TopLogprob(_text(t.get("token")), _float(t.get("logprob")))
            for t in (top if isinstance(top, list) else [])
            if isinstance(t, dict)
        )
        out.append(
            TokenLogprob(
                _text(item.get("token")),
                UNKNOWN_TOKEN_ID,
                _float(item.get("logprob")),
                alternatives,
            )
        )
    return out


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder)."""
    if not weights:
        return []
    clean = [max(0, w) for w in weights]
    if sum(clean) == 0:
        clean = [1] * len(clean)
    whole = sum(clean)
    shares = [total * w / whole for w in clean]
    parts = [int(s) for s in shares]
    order = sorted(range(len(parts)), key=lambda i: shares[i] - parts[i], reverse=True)
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def usage_counts(usage: Any) -> tuple[int | None, int | None, int | None]:
    """(prompt, completion, reasoning) tokens from a ``usage`` object; None where absent."""
    if not isinstance(usage, dict):
        return None, None, None
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None

    def count(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return (
        count(usage.get("prompt_tokens")),
        count(usage.get("completion_tokens")),
        count(reasoning),
    )


def estimate_tokens(text: str) -> int:
    """About four characters per token (the usual rule of thumb for English BPE)."""
    return math.ceil(len(text) / 4)


class ChoiceText:
    """One choice of an upstream response, fed message or delta pieces in order."""

    def __init__(self, markers: ThinkingMarkers, mode: ChoiceMode) -> None:
        self.markers = markers
        self.mode = mode
        self.reasoning = ""
        self.content = ""
        self.raw = ""
        """The raw ``content`` the upstream sent, markers included."""
        self.logprobs: list[TokenLogprob] = []
        self.finish_reason: FinishReason | None = None
        self.reasoning_field_seen = False
        self._lead: str | None = "" if mode == "thinking" else None
        self._splitter = (
            None
            if mode == "answer"
            else ThinkingSplitter(markers.open, markers.close, in_thinking=mode == "thinking")
        )

    @property
    def saw_thinking(self) -> bool:
        if self.reasoning_field_seen or self.mode == "thinking":
            return True
        return self._splitter is not None and self._splitter.saw_thinking

    def _drop_open_marker(self, text: str, *, final: bool) -> str:
        """Thinking mode: drop an open marker the upstream wrote itself at the start."""
        if self._lead is None:
            return text
        self._lead += text
        stripped = self._lead.lstrip()
        opener = self.markers.open
        if stripped.startswith(opener):
            self._lead = None
            return stripped[len(opener) :]
        if opener.startswith(stripped) and not final:
            return ""
        text, self._lead = self._lead, None
        return text

    def feed(self, *, reasoning: str, content: str) -> tuple[str, str]:
        """Take one piece; returns the (reasoning, content) text it adds."""
        self.raw += content
        if self.mode == "answer":
            added = reasoning + content
            self.content += added
            return "", added
        if reasoning:
            self.reasoning_field_seen = True
        out_reasoning, out_content = reasoning, ""
        piece = self._drop_open_marker(content, final=False)
        if piece and self._splitter is not None:
            r, out_content = self._splitter.feed(piece)
            out_reasoning += r
        self.reasoning += out_reasoning
        self.content += out_content
        return out_reasoning, out_content

    def flush(self) -> tuple[str, str]:
        """Release text held back at the end (a possible marker prefix)."""
        if self._splitter is None:
            return "", ""
        out_reasoning, out_content = "", ""
        piece = self._drop_open_marker("", final=True)
        if piece:
            out_reasoning, out_content = self._splitter.feed(piece)
        r, c = self._splitter.flush()
        out_reasoning, out_content = out_reasoning + r, out_content + c
        self.reasoning += out_reasoning
        self.content += out_content
        return out_reasoning, out_content

    def counts(self, tokens: int, reported_reasoning: int | None) -> int:
        """Reasoning tokens of this choice, given its completion ``tokens``."""
        if not self.reasoning.strip():
            return 0
        if reported_reasoning:
            return min(tokens, reported_reasoning)
        if not self.content.strip():
            return tokens
        share = len(self.reasoning) / (len(self.reasoning) + len(self.content))
        return min(tokens, round(tokens * share))

    def completion(self, tokens: int, reasoning_tokens: int) -> Completion:
        return Completion(
            text=self.content,
            reasoning=self.reasoning if self.saw_thinking else None,
            finish_reason=self.finish_reason or "stop",
            completion_tokens=tokens,
            reasoning_tokens=reasoning_tokens,
            logprobs=list(self.logprobs) if self.logprobs else None,
        )


Streamed = Generator[StreamEvent, None, tuple[list[ChoiceText], Any]]
"""Stream events of one upstream call; returns the choices and the usage object."""


def share_tokens(choices: Sequence[ChoiceText], total: int, max_tokens: int | None) -> list[int]:
    """Each choice's part of the response's ``total`` completion tokens (see module doc)."""
    if len(choices) == 1:
        return [total]
    tokens = [0] * len(choices)
    open_ = list(range(len(choices)))
    cut = [i for i, c in enumerate(choices) if c.finish_reason == "length"]
    if max_tokens is not None and cut and max_tokens * len(cut) <= total:
        for i in cut:  # a choice that ran out generated exactly max_tokens
            tokens[i] = max_tokens
        open_ = [i for i in open_ if i not in cut]
        total -= max_tokens * len(cut)
    if not open_:
        return tokens
    weights = [len(choices[i].logprobs) for i in open_]
    if not all(weights) or sum(weights) != total:  # log-probs may cover only the answer
        weights = [len(choices[i].reasoning) + len(choices[i].content) + 1 for i in open_]
    for i, part in zip(open_, apportion(total, weights), strict=True):
        tokens[i] = part
    return tokens


def finish_choices(
    choices: Sequence[ChoiceText], usage: Any, *, max_tokens: int | None = None
) -> tuple[int | None, list[Completion]]:
    """(prompt tokens or None, one `Completion` per choice) once all text is in;
    ``max_tokens`` is what each choice was allowed (a choice cut by it used all of it)."""
    prompt, completion, reasoning = usage_counts(usage)
    if completion is None:
        completion = sum(estimate_tokens(c.reasoning + c.content) for c in choices)
    tokens = share_tokens(choices, completion, max_tokens)
    reported: list[int | None] = [None] * len(choices)
    if reasoning is not None:
        reported = list(apportion(reasoning, [len(c.reasoning) for c in choices]))
    done = [
        c.completion(t, c.counts(t, r)) for c, t, r in zip(choices, tokens, reported, strict=True)
    ]
    return prompt, done
