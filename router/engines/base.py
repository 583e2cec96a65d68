"""The engine protocol: what every model backend (transformers, openai, ...) provides.

An engine turns chat messages plus validated `SamplingParams` into completions. It is
synchronous and batch-first: ``generate_each`` takes several requests at once and returns one
outcome per request - its result, or its own error (a prompt too long for the context fails
alone, never its batch-mates); ``generate`` is the same but raises the first error. ``stream``
yields `StreamEvent`s for one request. Thinking text (``<think>…</think>``) is separated
from the answer by the engine, and a thinking budget, when set, is enforced by it.

Example::

    engine = create_engine(config.small.engine)       # router.engines.factory
    engine.load()
    [result] = engine.generate([GenerationRequest(messages=[ChatMessage("user", "Hi")],
                                                  params=SamplingParams(max_tokens=16))])
    print(result.choices[0].text, result.prompt_tokens)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from router._exceptions import ThinkgateError
from router.sampling import SamplingParams

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ChatMessage:
    """One chat message with plain-text content (content parts are joined by the gateway)."""

    role: str
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """One request for an engine."""

    messages: Sequence[ChatMessage]
    params: SamplingParams
    request_id: str = ""
    continue_final_message: bool = False
    """Continue the last (assistant) message instead of opening a new turn (vLLM's
    ``continue_final_message``); no generation prompt and no new ``<think>`` is added, and
    only the continuation is returned."""
    priority: int = 0
    """vLLM's priority scheduling: a lower value is scheduled first. Client requests are 0;
    background learning work (shadow answers) is `BACKGROUND_PRIORITY`, so it uses the
    capacity clients leave. Engines without priority scheduling ignore it."""


BACKGROUND_PRIORITY = 10
"""`GenerationRequest.priority` of work no client waits for (shadow answers)."""


@dataclass(frozen=True)
class TopLogprob:
    token: str
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    """Log-probability of one generated token and the top alternatives at its position."""

    token: str
    token_id: int
    logprob: float
    top: Sequence[TopLogprob] = ()


@dataclass
class Completion:
    """One choice of a generation."""

    text: str
    """The answer (content after the thinking section)."""
    reasoning: str | None = None
    """The thinking text, without the ``<think>``/``</think>`` markers; None when none."""
    finish_reason: FinishReason = "stop"
    completion_tokens: int = 0
    """All generated tokens, thinking included."""
    reasoning_tokens: int = 0
    logprobs: list[TokenLogprob] | None = None
    """Per-token log-probabilities of the answer span (when requested or needed)."""
    thinking_budget: int | None = None
    forced_close: bool = False
    """True when the thinking budget ran out and the engine forced ``</think>``."""


@dataclass
class GenerationResult:
    model: str
    prompt_tokens: int
    choices: list[Completion] = field(default_factory=list)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.choices)

    @property
    def reasoning_tokens(self) -> int:
        return sum(c.reasoning_tokens for c in self.choices)


@dataclass(frozen=True)
class StreamEvent:
    """One streamed piece of choice ``index``: content and/or reasoning text, or the end."""

    index: int = 0
    content: str = ""
    reasoning: str = ""
    logprobs: Sequence[TokenLogprob] = ()
    finish_reason: FinishReason | None = None
    completion: Completion | None = None
    """Set on the last event of a choice: the full completion with its counts."""
    prompt_tokens: int | None = None
    """Set on the first event."""


Outcome = GenerationResult | ThinkgateError
"""What one request of a batch came to: its result, or the error that was its own."""


def results_or_raise(outcomes: Sequence[Outcome]) -> list[GenerationResult]:
    """The results, in order; raises the first request's error when one failed."""
    for outcome in outcomes:
        if isinstance(outcome, ThinkgateError):
            raise outcome
    return [o for o in outcomes if isinstance(o, GenerationResult)]


@runtime_checkable
class Engine(Protocol):
    """A model backend. Implementations: `TransformersEngine`, `OpenAIEngine`."""

    @property
    def model_name(self) -> str:
        """The name the model answers as (the response's ``model``)."""
        ...

    @property
    def context_length(self) -> int:
        """Maximum prompt + completion tokens."""
        ...

    def load(self) -> None:
        """Load weights / open connections. Idempotent; may take long."""
        ...

    def check_health(self) -> None:
        """Raise when the engine cannot serve (broken model, dead upstream)."""
        ...

    def count_prompt_tokens(self, messages: Sequence[ChatMessage], *, thinking: bool) -> int:
        """Tokens of the rendered prompt, as the engine would feed it."""
        ...

    def generate_each(
        self, requests: Sequence[GenerationRequest], *, cancelled: threading.Event | None = None
    ) -> list[Outcome]:
        """Generate for a batch of requests (blocking); one outcome per request, in order: a
        request the engine refuses (`ThinkgateError`, e.g. `ContextLengthError`) gets its
        error and the others their results. Setting ``cancelled`` (the caller gave up)
        stops the work as soon as the engine can; the return value is then not used."""
        ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """`generate_each`, raising the first request's error (``results_or_raise``)."""
        ...

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        """Generate one request incrementally (blocking iterator)."""
        ...

    def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        """Log-probabilities of ``tokens`` (each a single vocabulary token) as the next token
        after the rendered prompt plus ``assistant_prefix`` — no sampling. Used by
        escalation scorers (self-verification, Self-REF confidence tokens)."""
        ...
