"""Rendering chat messages into prompt token ids, with thinkgate's fallback template.

Which template renders a prompt, first match wins:

1. ``EngineConfig.chat_template`` (an override in the config);
2. the tokenizer's own ``chat_template``;
3. `FALLBACK_CHAT_TEMPLATE`, for base models that have none (e.g. the embedded Gemma 3
   270M). It is plain text, which base models continue naturally::

       <bos>You are helpful.            (a system message, if any, then a blank line)

       User: What is 2+2?
       Assistant: 4
       User: And 3+3?
       Assistant:

   With thinking on, the prompt ends ``Assistant: <think>`` plus a newline. Because a base
   model would go on to write the next turn itself, answers rendered with the fallback
   also stop at `FALLBACK_STOP` (``"\nUser:"``, ``"\nAssistant:"``).

Thinking: templates receive ``enable_thinking`` (as Qwen3's does). When thinking is on and
the rendered prompt does not already end with the open marker, the marker and a newline
are appended. A template that always ends with the open marker (DeepSeek-R1 style) puts
the prompt in thinking mode whatever the request asked. The open marker always enters the
ids as the token sequence of the marker alone, so budget forcing can find it whatever the
surrounding text tokenises into.

Continuing the final assistant message (vLLM's ``continue_final_message``): the template
renders the conversation without a generation prompt and with a placeholder as the last
message's content; the text is cut at the placeholder and the content appended verbatim,
so the prompt ends inside that message - no end-of-turn, no new turn, no added open marker
(the template's own trimming of the content does not apply). Thinking is off for it.

Example::

    prompt = render_prompt(tokenizer, [ChatMessage("user", "Hi")], thinking=True,
                           markers=ThinkingMarkers(), template=None)
    prompt.ids, prompt.uses_fallback
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router._exceptions import InvalidRequestError
from router.config import ThinkingMarkers
from router.engines.base import ChatMessage

FALLBACK_CHAT_TEMPLATE = (
    "{{ bos_token if bos_token else '' }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '\n' }}"
    "{% else %}{{ message['role'] | capitalize }}{{ ': ' + message['content'] + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}"
    "{% if enable_thinking is defined and enable_thinking %}{{ ' <think>\n' }}{% endif %}"
    "{% endif %}"
)
"""The documented fallback for base models without a chat template (see module doc)."""

FALLBACK_STOP: tuple[str, ...] = ("\nUser:", "\nAssistant:")
"""Stop sequences added when the fallback template rendered the prompt."""


@dataclass(frozen=True)
class RenderedPrompt:
    ids: list[int]
    """Prompt token ids, special tokens (e.g. BOS) included as the template puts them."""
    thinking: bool
    """The prompt ends inside an open thinking section."""
    uses_fallback: bool


def choose_template(tokenizer: Any, override: str | None) -> tuple[str, bool]:
    """(template, is_fallback) for a tokenizer and an optional config override."""
    if override:
        return override, False
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, str) and own:
        return own, False
    return FALLBACK_CHAT_TEMPLATE, True


_CONTINUE_PLACEHOLDER = "\x00thinkgate-final-message\x00"


def render_text(
    tokenizer: Any,
    messages: Sequence[ChatMessage],
    *,
    thinking: bool,
    template: str,
    continue_final: bool = False,
) -> str:
    """The prompt as text: the generation prompt added, or with ``continue_final`` ending
    inside the last (assistant) message."""
    conversation = [{"role": m.role, "content": m.content} for m in messages]
    if continue_final:
        if not messages or messages[-1].role != "assistant":
            raise InvalidRequestError(
                "continue_final_message needs a final assistant message",
                param="continue_final_message",
            )
        conversation[-1]["content"] = _CONTINUE_PLACEHOLDER
    try:
        text = tokenizer.apply_chat_template(
            conversation,
            chat_template=template,
            tokenize=False,
            add_generation_prompt=not continue_final,
            enable_thinking=thinking and not continue_final,
        )
    except Exception as exc:  # jinja2 raises TemplateError subclasses and others
        raise InvalidRequestError(
            f"the model's chat template rejected the messages: {exc}", param="messages"
        ) from None
    if not isinstance(text, str):
        raise InvalidRequestError("the chat template did not render text", param="messages")
    if continue_final:
        at = text.rfind(_CONTINUE_PLACEHOLDER)
        if at < 0:
            raise InvalidRequestError(
                "the chat template does not render the final assistant message, so it "
                "cannot be continued",
                param="continue_final_message",
            )
        text = text[:at] + messages[-1].content
    return text


def render_prompt(
    tokenizer: Any,
    messages: Sequence[ChatMessage],
    *,
    thinking: bool,
    markers: ThinkingMarkers,
    template: str | None,
    continue_final: bool = False,
) -> RenderedPrompt:
    """Render ``messages`` to ids; with ``thinking`` the ids end in an open section; with
    ``continue_final`` they end inside the last assistant message (thinking off)."""
    chosen, fallback = choose_template(tokenizer, template)
    text = render_text(
        tokenizer, messages, thinking=thinking, template=chosen, continue_final=continue_final
    )

    def encode(piece: str) -> list[int]:
        return list(tokenizer.encode(piece, add_special_tokens=False)) if piece else []

    # Some templates (DeepSeek-R1 style) always end with the open marker.
    opened = not continue_final and text.rstrip().endswith(markers.open)
    if continue_final or not (thinking or opened):
        return RenderedPrompt(encode(text), thinking=False, uses_fallback=fallback)
    head, tail = text, "\n"
    if opened:
        at = text.rstrip().rfind(markers.open)
        head, tail = text[:at], text[at + len(markers.open) :]
    ids = encode(head) + encode(markers.open) + encode(tail)
    return RenderedPrompt(ids, thinking=True, uses_fallback=fallback)
