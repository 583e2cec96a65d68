"""Engine over any OpenAI-compatible upstream (vLLM, SGLang, another thinkgate, ...) via httpx.

Requests go to ``POST {base_url}/chat/completions`` (JSON, or server-sent events for
``stream``); health is ``GET {base_url}/models``. Sampling settings pass through
(``temperature``, ``top_p``, ``n``, ``stop``, ``seed``, ``max_tokens``, ``logprobs`` /
``top_logprobs``; ``top_k`` as the extra top-level field vLLM and thinkgate accept, sent
only when set). Thinking is switched per request with ``chat_template_kwargs.enable_thinking``
(unless `EngineConfig.thinking_switch` is off); reasoning comes back from the upstream's
``reasoning_content`` (or ``reasoning``) field, or from ``<think>…</think>`` in its text
(`router.engines.openai_choices`). Errors map as `router.engines.openai_http` describes.

Thinking budgets (``params.thinking`` with ``params.thinking_budget``), by
`EngineConfig.budget_mode`:

- ``native``: the budget travels in the field `EngineConfig.native_budget_field`
  (``thinking_token_budget`` for vLLM, ``max_thinking_tokens`` for a thinkgate upstream); the
  upstream enforces it. ``forced_close`` is inferred: reasoning tokens reached the budget.
- ``two_phase`` (`router.engines.openai_budget`): phase 1 generates only the thinking, with
  ``max_tokens=budget`` and ``stop=[close marker]``; if it ran out, the thinking was cut at
  the budget (``forced_close``). Phase 2 continues the assistant message
  ``open + thinking + close_sequence`` (``continue_final_message``) with thinking off and the
  tokens left, for the answer. Streams too: reasoning deltas, then content deltas.

Approximations, because the API does not expose more: ``count_prompt_tokens`` is an
estimate (about four characters per token, plus four per message for the chat framing);
token ids in log-probabilities are -1; with ``n > 1`` the upstream's usage total is shared
out among the choices by text length; in `next_token_logprobs`, tokens outside the
upstream's top 20 get ``-inf``.

Example::

    engine = OpenAIEngine(EngineConfig(kind="openai", model="Qwen/Qwen3-8B",
                                       base_url="http://vllm:8000/v1"))
    engine.load()
    [result] = engine.generate([GenerationRequest([ChatMessage("user", "Hi")],
                                                  SamplingParams(max_tokens=16))])
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from router._exceptions import ConfigError, ThinkgateError, UpstreamError
from router.config import EngineConfig
from router.engines.base import (
    ChatMessage,
    Completion,
    GenerationRequest,
    GenerationResult,
    Outcome,
    StreamEvent,
    results_or_raise,
)
from router.engines.openai_budget import TwoPhaseForcing
from router.engines.openai_choices import (
    ChoiceMode,
    ChoiceText,
    Streamed,
    content_of,
    estimate_tokens,
    finish_choices,
    finish_reason_of,
    parse_logprobs,
    reasoning_of,
)
from router.engines.openai_http import UpstreamClient, run_parallel
from router.sampling import MAX_TOP_LOGPROBS, SamplingParams

DEFAULT_CONTEXT_LENGTH = 131_072
"""Context window assumed when the config names none; the upstream still enforces its own
(and its error comes back as `ContextLengthError`)."""
_MESSAGE_OVERHEAD_TOKENS = 4
_PROMPT_OVERHEAD_TOKENS = 3


class OpenAIEngine:
    """A `router.engines.base.Engine` that forwards to an OpenAI-compatible upstream."""

    def __init__(self, config: EngineConfig) -> None:
        if config.kind != "openai":
            raise ConfigError(f"OpenAIEngine needs kind 'openai', got {config.kind!r}")
        if not config.base_url:
            raise ConfigError("engine.base_url: required when kind is 'openai'")
        self.config = config
        self._name = config.display_name
        self._client: UpstreamClient | None = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self.config.context_length or DEFAULT_CONTEXT_LENGTH

    # -- connection ----------------------------------------------------------------------

    def load(self) -> None:
        """Open the connection pool (no request is sent; `check_health` does that)."""
        self._http()

    def _http(self) -> UpstreamClient:
        with self._lock:
            if self._client is None:
                self._client = UpstreamClient(
                    str(self.config.base_url),
                    name=self._name,
                    timeout_s=self.config.timeout_s,
                    api_key=self._api_key(),
                )
            return self._client

    def _api_key(self) -> str | None:
        env = self.config.api_key_env
        if not env:
            return None
        key = os.environ.get(env)
        if not key:
            raise ConfigError(f"engine.api_key_env: environment variable {env!r} is not set")
        return key

    def close(self) -> None:
        """Close the connection pool; a later call opens a new one."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def check_health(self) -> None:
        """``GET /models`` answers, and lists the configured model when it lists any."""
        payload = self._http().get_json("models")
        data = payload.get("data") if isinstance(payload, dict) else None
        ids = [d.get("id") for d in data or [] if isinstance(d, dict)]
        if ids and self.config.model not in ids:
            raise UpstreamError(
                f"upstream {self.config.base_url} does not serve model {self.config.model!r}; "
                f"it serves {sorted(str(i) for i in ids)}"
            )

    def count_prompt_tokens(self, messages: Sequence[ChatMessage], *, thinking: bool) -> int:
        """An estimate: the upstream's tokenizer is not available here (see module doc)."""
        tokens = sum(estimate_tokens(m.content) + _MESSAGE_OVERHEAD_TOKENS for m in messages)
        if thinking:
            tokens += estimate_tokens(self.config.thinking.open + "\n")
        return tokens + _PROMPT_OVERHEAD_TOKENS

    # -- request bodies ------------------------------------------------------------------

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
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON body of one upstream call. ``prefill``: append an assistant message
        and continue it; ``continue_final``: continue the last message as it is."""
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if prefill is not None:
            chat.append({"role": "assistant", "content": prefill})
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": chat,
            "max_tokens": max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "n": n,
        }
        if params.top_k > 0:
            body["top_k"] = params.top_k
        if stop:
            body["stop"] = list(stop)
        if seed is not None:
            body["seed"] = seed
        if logprobs:
            body["logprobs"] = True
            if params.top_logprobs:
                body["top_logprobs"] = params.top_logprobs
        if thinking is not None and self.config.thinking_switch:
            body["chat_template_kwargs"] = {"enable_thinking": thinking}
        if prefill is not None or continue_final:
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if extra:
            body.update(extra)
        return body

    def _plain_body(self, request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
        """One call for a request without two-phase forcing (native budgets included)."""
        params = request.params
        extra: dict[str, Any] = {}
        if params.thinking and params.thinking_budget is not None:
            extra[self.config.native_budget_field] = params.thinking_budget
        return self.chat_body(
            request.messages,
            params,
            max_tokens=params.max_tokens,
            n=params.n,
            stop=params.stop,
            seed=params.seed,
            thinking=params.thinking,
            continue_final=request.continue_final_message,
            logprobs=params.logprobs,
            stream=stream,
            extra=extra,
        )

    @staticmethod
    def _mode(request: GenerationRequest) -> ChoiceMode:
        return "answer" if request.continue_final_message else "auto"

    def uses_two_phase(self, request: GenerationRequest) -> bool:
        params = request.params
        return (
            self.config.budget_mode == "two_phase"
            and params.thinking
            and params.thinking_budget is not None
            and not request.continue_final_message
        )

    # -- calls ---------------------------------------------------------------------------

    def call(
        self, body: dict[str, Any], mode: ChoiceMode, *, cancelled: threading.Event | None = None
    ) -> tuple[list[ChoiceText], Any]:
        """One non-streamed call: (its choices, fully read, and its usage object). Setting
        ``cancelled`` aborts the upstream call (`UpstreamCallCancelled`)."""
        payload = self._http().post_json("chat/completions", body, cancelled=cancelled)
        raw = payload.get("choices")
        n = int(body.get("n", 1))
        if not isinstance(raw, list) or len(raw) != n:
            raise UpstreamError(
                f"upstream {self._name} returned {len(raw) if isinstance(raw, list) else 'no'} "
                f"choices for n={n}"
            )
        choices = [ChoiceText(self.config.thinking, mode) for _ in range(n)]
        for position, item in enumerate(raw):
            index = item.get("index", position) if isinstance(item, dict) else position
            if not isinstance(index, int) or not 0 <= index < n:
                raise UpstreamError(f"upstream {self._name} returned choice index {index!r}")
            item = item if isinstance(item, dict) else {}
            message = item.get("message")
            choice = choices[index]
            choice.feed(reasoning=reasoning_of(message), content=content_of(message))
            choice.flush()
            choice.logprobs = parse_logprobs(item.get("logprobs"))
            choice.finish_reason = finish_reason_of(item.get("finish_reason")) or "stop"
        return choices, payload.get("usage")

    def stream_call(
        self, body: dict[str, Any], mode: ChoiceMode, *, index_base: int = 0
    ) -> Streamed:
        """One streamed call: yields deltas (choice ``index_base + i``), returns the choices
        (held-back text not yet flushed) and the usage object."""
        n = int(body.get("n", 1))
        choices = [ChoiceText(self.config.thinking, mode) for _ in range(n)]
        usage: Any = None
        for chunk in self._http().stream_sse("chat/completions", body):
            if chunk.get("usage"):
                usage = chunk["usage"]
            for item in chunk.get("choices") or []:
                index = item.get("index", 0) if isinstance(item, dict) else None
                if not isinstance(index, int) or not 0 <= index < n:
                    raise UpstreamError(f"upstream {self._name} streamed choice index {index!r}")
                choice = choices[index]
                delta = item.get("delta")
                reasoning, content = choice.feed(
                    reasoning=reasoning_of(delta), content=content_of(delta)
                )
                logprobs = parse_logprobs(item.get("logprobs"))
                choice.logprobs.extend(logprobs)
                finish = finish_reason_of(item.get("finish_reason"))
                if finish is not None:
                    choice.finish_reason = finish
                if reasoning or content or logprobs:
                    yield StreamEvent(
                        index=index_base + index,
                        content=content,
                        reasoning=reasoning,
                        logprobs=tuple(logprobs),
                    )
        return choices, usage

    # -- generation ----------------------------------------------------------------------

    def generate_each(
        self, requests: Sequence[GenerationRequest], *, cancelled: threading.Event | None = None
    ) -> list[Outcome]:
        """Setting ``cancelled`` (the caller left) aborts the upstream calls in flight: their
        connections close, so the upstream stops generating, as for a closed stream."""
        return run_parallel(lambda r: self._outcome_of(r, cancelled), list(requests))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return results_or_raise(self.generate_each(requests))

    def _outcome_of(
        self, request: GenerationRequest, cancelled: threading.Event | None = None
    ) -> Outcome:
        try:
            return self._generate_one(request, cancelled)
        except ThinkgateError as exc:  # this request's own failure (4xx, upstream error)
            return exc

    def _generate_one(
        self, request: GenerationRequest, cancelled: threading.Event | None = None
    ) -> GenerationResult:
        if self.uses_two_phase(request):
            return TwoPhaseForcing(self, request, cancelled=cancelled).generate()
        choices, usage = self.call(
            self._plain_body(request, stream=False), self._mode(request), cancelled=cancelled
        )
        prompt, done = finish_choices(choices, usage, max_tokens=request.params.max_tokens)
        if prompt is None:
            prompt = self.count_prompt_tokens(request.messages, thinking=request.params.thinking)
        return GenerationResult(self._name, prompt, [self._with_budget(request, c) for c in done])

    @staticmethod
    def _with_budget(request: GenerationRequest, completion: Completion) -> Completion:
        """Native budgets: the upstream enforced it; a spent budget means a forced close."""
        params = request.params
        if not params.thinking or params.thinking_budget is None:
            return completion
        completion.thinking_budget = params.thinking_budget
        completion.forced_close = completion.reasoning_tokens >= params.thinking_budget
        return completion

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        estimate = self.count_prompt_tokens(request.messages, thinking=request.params.thinking)
        first = True
        for event in self._stream_events(request):
            if first and event.prompt_tokens is None:
                event = dataclasses.replace(event, prompt_tokens=estimate)
            first = False
            yield event

    def _stream_events(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        if self.uses_two_phase(request):
            yield from TwoPhaseForcing(self, request).stream()
            return
        body = self._plain_body(request, stream=True)
        choices, usage = yield from self.stream_call(body, self._mode(request))
        tails = [choice.flush() for choice in choices]
        prompt, done = finish_choices(choices, usage, max_tokens=request.params.max_tokens)
        for index, ((reasoning, content), completion) in enumerate(zip(tails, done, strict=True)):
            completion = self._with_budget(request, completion)
            yield StreamEvent(
                index=index,
                content=content,
                reasoning=reasoning,
                finish_reason=completion.finish_reason,
                completion=completion,
                prompt_tokens=prompt,
            )

    # -- scoring -------------------------------------------------------------------------

    def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        """One greedy token with ``top_logprobs=20`` after ``assistant_prefix`` (a
        continuation of the final assistant message; a plain new turn when the prefix is
        empty). Tokens outside the upstream's top 20 get ``-inf``; a token is matched by its
        exact text as the upstream spells it (e.g. ``" Yes"`` differs from ``"Yes"``)."""
        params = SamplingParams(
            max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=MAX_TOP_LOGPROBS
        )
        body = self.chat_body(
            messages,
            params,
            max_tokens=1,
            thinking=False,
            prefill=assistant_prefix or None,
            logprobs=True,
        )
        [choice], _ = self.call(body, "answer")
        if not choice.logprobs:
            raise UpstreamError(f"upstream {self._name} returned no log-probabilities")
        first = choice.logprobs[0]
        seen = {alt.token: alt.logprob for alt in first.top}
        seen.setdefault(first.token, first.logprob)
        return {token: seen.get(token, -math.inf) for token in tokens}
