"""What the engines that hold a Hugging Face tokenizer in process share (`VLLMEngine`,
`TransformersEngine`): rendering a request to prompt ids, looking up single tokens for
next-token scores, the end-of-sequence and marker ids, and turning row deltas into
`StreamEvent`s. One place, so both engines render, count and stream alike.

Example::

    prompt = render_messages(tokenizer, config, messages, thinking=True)
    ids = single_token_ids(tokenizer, ["Yes", "No"], model_name="gemma3-270m")
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from router._exceptions import InvalidRequestError
from router.config import EngineConfig
from router.engines.base import ChatMessage, StreamEvent, TokenLogprob
from router.engines.chat_template import RenderedPrompt, render_prompt
from router.engines.hf_decoding import RowDelta


def render_messages(
    tokenizer: Any,
    config: EngineConfig,
    messages: Sequence[ChatMessage],
    *,
    thinking: bool,
    continue_final: bool = False,
) -> RenderedPrompt:
    """``messages`` as prompt ids with the engine's template and thinking markers."""
    if not messages:
        raise InvalidRequestError("messages must not be empty", param="messages")
    return render_prompt(
        tokenizer,
        messages,
        thinking=thinking,
        markers=config.thinking,
        template=config.chat_template,
        continue_final=continue_final,
    )


def single_token_ids(tokenizer: Any, tokens: Sequence[str], model_name: str) -> dict[str, int]:
    """The vocabulary id of each of ``tokens``, each of which must be one token (as text,
    or as a vocabulary entry such as an added ``<CN>``); else `InvalidRequestError`."""
    wanted: dict[str, int] = {}
    for token in tokens:
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1:
            vocab_id = tokenizer.convert_tokens_to_ids(token)
            if not isinstance(vocab_id, int) or vocab_id == tokenizer.unk_token_id:
                raise InvalidRequestError(
                    f"{token!r} is not a single token of {model_name}'s vocabulary",
                    param="tokens",
                )
            ids = [vocab_id]
        wanted[token] = int(ids[0])
    return wanted


def eos_ids(*sources: object) -> frozenset[int]:
    """End-of-sequence ids from ``eos_token_id``-like values (an int, a list, or None)."""
    ids: set[int] = set()
    for value in sources:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(i) for i in value)
    return frozenset(ids)


def marker_ids(tokenizer: Any, config: EngineConfig) -> tuple[frozenset[int], list[int], list[int]]:
    """(special ids dropped from text - the thinking markers kept where they are single
    special tokens -, the open marker's ids, the close marker's ids)."""
    markers = config.thinking
    opened = list(tokenizer.encode(markers.open, add_special_tokens=False))
    closed = list(tokenizer.encode(markers.close, add_special_tokens=False))
    single = {ids[0] for ids in (opened, closed) if len(ids) == 1}
    skip = frozenset(int(i) for i in tokenizer.all_special_ids) - single
    return skip, opened, closed


def stream_events(steps: Iterable[list[RowDelta]], prompt_tokens: int) -> Iterator[StreamEvent]:
    """Row deltas, step by step, as stream events: a row's event is sent when it has text or
    ends (and the very first one, which carries ``prompt_tokens``); log-probabilities of
    tokens whose text is held back (incomplete UTF-8, a possible stop or marker) ride on
    the row's next event."""
    first = True
    pending: dict[int, list[TokenLogprob]] = {}
    for deltas in steps:
        for delta in deltas:
            waiting = pending.setdefault(delta.row, [])
            waiting.extend(delta.logprobs)
            if not (delta.content or delta.reasoning or delta.completion or first):
                continue
            done = delta.completion
            yield StreamEvent(
                index=delta.row,
                content=delta.content,
                reasoning=delta.reasoning,
                logprobs=tuple(waiting),
                finish_reason=done.finish_reason if done else None,
                completion=done,
                prompt_tokens=prompt_tokens if first else None,
            )
            waiting.clear()
            first = False
