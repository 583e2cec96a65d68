"""Two-phase budget forcing over an OpenAI-compatible upstream (`OpenAIEngine`).

The upstream cannot be stopped mid-thought by a logits processor, so the budget is enforced
with two calls, as in s1's budget forcing:

1. **Think.** Generate the thinking alone: ``max_tokens = budget``, ``stop = [close
   marker]``, ``n`` choices. `EngineConfig.two_phase_opening` picks how the thinking is
   opened: ``template`` turns on the upstream's thinking mode
   (``chat_template_kwargs.enable_thinking``); ``prefill`` continues an assistant message
   that is just the open marker and a newline (``continue_final_message``), which suits
   upstreams whose own thinking mode would cap the thinking themselves (a thinkgate
   gateway) and base models. A choice that ran out (``finish_reason == "length"`` with no
   answer yet) was cut exactly at the budget: ``forced_close``.
2. **Answer.** Per choice, continue the assistant message ``open + thinking +
   close_sequence`` (the thinking exactly as generated when the upstream returned it as
   raw text; otherwise ``open\\n{reasoning}\\n``) with ``continue_final_message=true``,
   ``add_generation_prompt=false``, thinking off, the request's ``stop`` and log-prob
   settings, seed ``seed + i``, and ``max_tokens`` = what phase 1 left.

Cases the upstream decides: if it closed the thinking on its own and finished its answer
inside phase 1 (``finish_reason == "stop"`` with answer text), no phase 2 runs; if it
closed the thinking and the answer was cut, phase 2 continues that answer (those first
answer tokens carry no log-probabilities). A budget of 0 skips phase 1.

Counts: ``completion_tokens`` = both phases' generated tokens (the forced close sequence is
prompt text of phase 2, not counted); ``reasoning_tokens`` = phase 1's tokens when it
produced only thinking; ``prompt_tokens`` = phase 1's prompt as the upstream counted it.

Example::

    result = TwoPhaseForcing(engine, request).generate()
    result.choices[0].forced_close, result.choices[0].reasoning_tokens
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from router.config import EngineConfig
from router.engines.base import (
    ChatMessage,
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    StreamEvent,
)
from router.engines.openai_choices import ChoiceMode, ChoiceText, Streamed, finish_choices
from router.engines.openai_http import run_parallel
from router.sampling import SamplingParams


class ForcingUpstream(Protocol):
    """What two-phase forcing needs of its engine (`OpenAIEngine` provides it); a protocol,
    so this module does not import the engine that imports it."""

    config: EngineConfig

    @property
    def model_name(self) -> str: ...

    def count_prompt_tokens(self, messages: Sequence[ChatMessage], *, thinking: bool) -> int: ...

    def chat_body(
        self,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        *,
        max_tokens: int,
        n: int = 1,
        stop: Sequence[str] = (),
        seed: int | None = None,
        thinking: bool | None = None,
        prefill: str | None = None,
        continue_final: bool = False,
        logprobs: bool = False,
        stream: bool = False,
    ) -> dict[str, Any]: ...

    def call(
        self, body: dict[str, Any], mode: ChoiceMode, *, cancelled: threading.Event | None = None
    ) -> tuple[list[ChoiceText], Any]: ...

    def stream_call(
        self, body: dict[str, Any], mode: ChoiceMode, *, index_base: int = 0
    ) -> Streamed: ...


@dataclass(frozen=True)
class Thought:
    """Phase 1's outcome for one choice."""

    reasoning: str
    prefix: str
    """The assistant message phase 2 continues: thinking, close sequence, answer so far."""
    answer: str
    """Answer text phase 1 already produced (the upstream closed the thinking itself)."""
    tokens: int
    reasoning_tokens: int
    forced: bool
    complete: bool
    """The answer finished inside phase 1: no phase 2."""


class TwoPhaseForcing:
    """Budget forcing for one request over ``engine``'s upstream."""

    def __init__(
        self,
        engine: ForcingUpstream,
        request: GenerationRequest,
        *,
        cancelled: threading.Event | None = None,
    ) -> None:
        budget = request.params.thinking_budget
        if budget is None:
            raise ValueError("two-phase forcing needs a thinking budget")
        self.engine = engine
        self.request = request
        self.cancelled = cancelled
        """Set when the caller left: aborts the non-streamed upstream calls."""
        self.params = request.params
        self.budget = budget
        self.markers = engine.config.thinking
        self.prefill = engine.config.two_phase_opening == "prefill"
        self.think_tokens = min(budget, request.params.max_tokens)

    # -- phase 1 -------------------------------------------------------------------------

    def think_body(self, *, stream: bool) -> dict[str, Any]:
        return self.engine.chat_body(
            self.request.messages,
            self.params,
            max_tokens=self.think_tokens,
            n=self.params.n,
            stop=(self.markers.close,),
            seed=self.params.seed,
            thinking=None if self.prefill else True,
            prefill=self.markers.open + "\n" if self.prefill else None,
            stream=stream,
        )

    def thought(self, choice: ChoiceText, completion: Completion) -> Thought:
        open_, close = self.markers.open, self.markers.close
        answer = choice.content
        finished = choice.finish_reason == "stop"
        closed = finished or bool(answer.strip())
        raw = choice.raw
        if not choice.reasoning_field_seen and close not in raw:
            # The thinking exactly as generated: budget forcing appends to the very tokens.
            thinking = raw if raw.lstrip().startswith(open_) else f"{open_}\n{raw}"
        else:
            thinking = f"{open_}\n{choice.reasoning}\n"
        return Thought(
            reasoning=choice.reasoning,
            prefix=thinking + self.markers.close_sequence + answer,
            answer=answer,
            tokens=completion.completion_tokens,
            reasoning_tokens=completion.reasoning_tokens,
            forced=not closed,
            complete=finished and bool(answer.strip()),
        )

    def skipped_thoughts(self) -> list[Thought]:
        """Budget 0: the thinking is closed before it starts."""
        prefix = f"{self.markers.open}\n" + self.markers.close_sequence
        empty = Thought("", prefix, "", 0, 0, forced=True, complete=False)
        return [empty] * self.params.n

    # -- phase 2 -------------------------------------------------------------------------

    def answer_body(self, index: int, thought: Thought, *, stream: bool) -> dict[str, Any]:
        params = self.params
        return self.engine.chat_body(
            self.request.messages,
            params,
            max_tokens=params.max_tokens - thought.tokens,
            stop=params.stop,
            seed=None if params.seed is None else params.seed + index,
            thinking=False,
            prefill=thought.prefix,
            logprobs=params.logprobs,
            stream=stream,
        )

    def merged(self, thought: Thought, answer: Completion | None) -> Completion:
        """The choice's completion from its thought and its phase-2 answer (None: none)."""
        finish: FinishReason
        if answer is None:
            finish = "stop" if thought.complete else "length"
            text, tokens, logprobs = thought.answer, thought.tokens, None
        else:
            finish = answer.finish_reason
            text = thought.answer + answer.text
            tokens = thought.tokens + answer.completion_tokens
            logprobs = answer.logprobs
        return Completion(
            text=text,
            reasoning=thought.reasoning,
            finish_reason=finish,
            completion_tokens=tokens,
            reasoning_tokens=thought.reasoning_tokens,
            logprobs=logprobs,
            thinking_budget=self.budget,
            forced_close=thought.forced,
        )

    def needs_answer(self, thought: Thought) -> bool:
        return not thought.complete and self.params.max_tokens - thought.tokens > 0

    # -- whole requests ------------------------------------------------------------------

    def generate(self) -> GenerationResult:
        engine = self.engine
        prompt: int | None = None
        if self.budget > 0:
            choices, usage = engine.call(
                self.think_body(stream=False), "thinking", cancelled=self.cancelled
            )
            prompt, done = finish_choices(choices, usage, max_tokens=self.think_tokens)
            thoughts = [self.thought(c, d) for c, d in zip(choices, done, strict=True)]
        else:
            thoughts = self.skipped_thoughts()

        def answer(index: int) -> tuple[int | None, Completion]:
            thought = thoughts[index]
            if not self.needs_answer(thought):
                return None, self.merged(thought, None)
            body = self.answer_body(index, thought, stream=False)
            [choice], usage = engine.call(body, "answer", cancelled=self.cancelled)
            answer_prompt, [done] = finish_choices([choice], usage)
            return answer_prompt, self.merged(thought, done)

        answered = run_parallel(answer, list(range(len(thoughts))))
        if prompt is None:
            prompt = next((p for p, _ in answered if p is not None), None)
        if prompt is None:
            prompt = engine.count_prompt_tokens(self.request.messages, thinking=True)
        return GenerationResult(engine.model_name, prompt, [c for _, c in answered])

    def stream(self) -> Iterator[StreamEvent]:
        """Reasoning deltas of every choice (phase 1), then each choice's answer deltas."""
        engine = self.engine
        prompt: int | None = None
        if self.budget > 0:
            choices, usage = yield from engine.stream_call(self.think_body(stream=True), "thinking")
            for index, choice in enumerate(choices):
                reasoning, content = choice.flush()
                if reasoning or content:
                    yield StreamEvent(index=index, reasoning=reasoning, content=content)
            prompt, done = finish_choices(choices, usage, max_tokens=self.think_tokens)
            thoughts = [self.thought(c, d) for c, d in zip(choices, done, strict=True)]
        else:
            thoughts = self.skipped_thoughts()
        for index, thought in enumerate(thoughts):
            answer: Completion | None = None
            if self.needs_answer(thought):
                body = self.answer_body(index, thought, stream=True)
                [choice], usage = yield from engine.stream_call(body, "answer", index_base=index)
                answer_prompt, [answer] = finish_choices([choice], usage)
                prompt = answer_prompt if prompt is None else prompt
            completion = self.merged(thought, answer)
            yield StreamEvent(
                index=index,
                finish_reason=completion.finish_reason,
                completion=completion,
                prompt_tokens=prompt,
            )
