"""Thinking probes: the strong tier's thinking stops once its answer has settled.

Dynasor-CoT style ("certaindex"), engine-agnostic over a `TierBackend`: the thinking is
generated in chunks of ``budget.probe.interval`` tokens by continuing the assistant message
``open + "\\n" + thinking so far`` (``continue_final_message``, stop at the close marker;
the fallback template's turn markers, where engines stop a base model's answer, are thinking
text and the chunk goes on). After each interval that did not end the thinking, a side probe
continues
``open + thinking + close_sequence + answer_cue`` for a few greedy tokens with
log-probabilities; its answer is normalised (`classifiers.answer_normalisation`) and the
stop rule (`classifiers.budget_probe_rule.ProbeRule`) decides:

- ``natural``: the model closed its thinking (or ended) by itself;
- ``budget``: the predicted budget (the cap) is spent: the thinking is force-closed;
- ``probe``: the last ``agree`` probes agree with confidence: the thinking is closed there.

Then the answer is generated as usual after ``close_sequence`` with the client's sampling
settings and what is left of ``max_tokens``. Probe text never reaches the client; usage
counts the thinking and the answer, not the probes. On vLLM (prefix caching) every chunk
and probe reuses the KV of what came before; on the transformers engine they recompute.

Confidence: for an option letter, the letter's share among the valid letters in the top
log-probabilities at the letter's position, and ``mass`` the letters' share of the whole
distribution there; for any other answer, the probability of the probe's greedy tokens
(``mass`` unknown). A client who leaves cancels the coroutine, hence the call in flight
(`LocalTier` sets the engine's cancel event) and every probe not yet started.

Example::

    probes = ThinkingProbes(config.budget.probe, config.strong.engine.thinking)
    if probes.applies(engine_request):
        result, trace = await probes.generate(strong_tier, engine_request)
        trace.stop, len(trace.probes)       # "probe", 2
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from classifiers.answer_normalisation import Answer, normalise_answer
from classifiers.budget_probe_rule import Probe, ProbeRule
from router.config import ProbeConfig, ThinkingMarkers
from router.engines.base import (
    ChatMessage,
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    StreamEvent,
    TokenLogprob,
)
from router.engines.chat_template import FALLBACK_STOP
from router.sampling import SamplingParams
from router.tiers import TierBackend

__all__ = ["ProbeRecord", "ProbeTrace", "ThinkingProbes", "ThinkingStop"]

ThinkingStop = Literal["natural", "budget", "probe"]
_SEED_STRIDE = 7919
"""Chunk ``k`` of a seeded request samples with ``seed + k x stride`` (no repeated stream)."""


@dataclass(frozen=True)
class ProbeRecord:
    """One probe, as logged."""

    at_tokens: int
    """Thinking tokens before the probe."""
    answer: str | None
    """The normalised answer (None: none found)."""
    kind: str | None
    confidence: float
    mass: float | None
    tokens: int
    """Tokens the probe decoded."""


@dataclass
class ProbeTrace:
    """How one request's thinking went under probes."""

    cap: int
    """The thinking budget (the predicted one, or what ``max_tokens`` left)."""
    stop: ThinkingStop = "natural"
    thinking_tokens: int = 0
    prompt_tokens: int = 0
    """The prompt as the first chunk counted it (the open marker included, as usual)."""
    probes: list[ProbeRecord] = field(default_factory=list)

    @property
    def probe_tokens(self) -> int:
        return sum(p.tokens for p in self.probes)

    @property
    def saved_tokens(self) -> int:
        """Thinking tokens left under the cap when the probes stopped it (else 0)."""
        return max(0, self.cap - self.thinking_tokens) if self.stop == "probe" else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "stop": self.stop,
            "cap": self.cap,
            "thinking_tokens": self.thinking_tokens,
            "probes": [dataclasses.asdict(p) for p in self.probes],
        }


def _with_lead(text: str, tokens: Sequence[TokenLogprob]) -> str:
    """``text`` with the leading whitespace its first token had (engines drop whitespace
    before an answer, but a chunk of thinking continues mid-sentence)."""
    if not tokens or not text:
        return text
    first = tokens[0].token
    lead = first[: len(first) - len(first.lstrip())]
    return lead + text if lead and not text[0].isspace() else text


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


class ThinkingProbes:
    """Chunked thinking with answer probes over a tier (see the module docstring).

    Args:
        config: ``budget.probe``.
        markers: the strong engine's thinking markers.
    """

    def __init__(self, config: ProbeConfig, markers: ThinkingMarkers) -> None:
        self.config = config
        self.markers = markers
        self.rule = ProbeRule(
            agree=config.agree,
            min_confidence=config.min_confidence,
            min_mass=config.min_mass,
            probe_tokens=config.max_tokens,
        )

    def applies(self, request: GenerationRequest, *, opted_out: bool = False) -> bool:
        """Whether ``request`` thinks and may be probed: one choice, not a continuation, and a
        cap above one interval (else no probe could run before the cap)."""
        params = request.params
        return (
            self.config.enabled
            and not opted_out
            and params.thinking
            and params.n == 1
            and not request.continue_final_message
            and self.cap(params) > self.config.interval
        )

    @staticmethod
    def cap(params: SamplingParams) -> int:
        budget = params.thinking_budget
        return params.max_tokens - 1 if budget is None else min(budget, params.max_tokens - 1)

    # ----- requests ----------------------------------------------------------------------
    def _continue(
        self, request: GenerationRequest, prefix: str, params: SamplingParams
    ) -> GenerationRequest:
        messages = [*request.messages, ChatMessage("assistant", prefix)]
        return GenerationRequest(messages, params, request.request_id, True)

    def _chunk_request(
        self, request: GenerationRequest, thinking: str, size: int, index: int
    ) -> GenerationRequest:
        p = request.params
        params = dataclasses.replace(
            p,
            max_tokens=size,
            stop=(self.markers.close,),
            seed=None if p.seed is None else p.seed + index * _SEED_STRIDE,
            logprobs=True,
            top_logprobs=0,
            thinking=False,
            thinking_budget=None,
        )
        return self._continue(request, f"{self.markers.open}\n{thinking}", params)

    def _probe_request(self, request: GenerationRequest, thinking: str) -> GenerationRequest:
        params = SamplingParams(
            max_tokens=self.config.max_tokens,
            temperature=0.0,
            logprobs=True,
            top_logprobs=self.config.top_logprobs,
            stop=("\n",),
        )
        prefix = self._closed(thinking) + self.config.answer_cue
        return self._continue(request, prefix, params)

    def _answer_request(
        self, request: GenerationRequest, thinking: str, spent: int
    ) -> GenerationRequest | None:
        left = request.params.max_tokens - spent
        if left < 1:
            return None
        params = dataclasses.replace(
            request.params, max_tokens=left, thinking=False, thinking_budget=None
        )
        return self._continue(request, self._closed(thinking), params)

    def _closed(self, thinking: str) -> str:
        return f"{self.markers.open}\n{thinking}{self.markers.close_sequence}"

    # ----- probes ------------------------------------------------------------------------
    def read_probe(self, choice: Completion) -> Probe:
        """The probe's normalised answer, confidence and (for a letter) mass."""
        cfg = self.config
        answer = normalise_answer(
            choice.text, cfg.answer_kind, extract=cfg.answer_pattern, letters=cfg.letters
        )
        tokens = choice.logprobs or []
        if answer is not None and answer.kind == "letter":
            letter = self._letter_distribution(answer, tokens)
            if letter is not None:
                return Probe(answer, *letter)
        return Probe(answer, self._answer_probability(answer, tokens), None)

    def _answer_probability(self, answer: Answer | None, tokens: Sequence[TokenLogprob]) -> float:
        """Probability of the greedy tokens up to where the answer is complete (what follows
        the answer, e.g. an explanation, does not lower it)."""
        if answer is None or not tokens:
            return 0.0
        cfg, text, total = self.config, "", 0.0
        for token in tokens:
            text += token.token
            total += token.logprob
            found = normalise_answer(
                text, cfg.answer_kind, extract=cfg.answer_pattern, letters=cfg.letters
            )
            if found == answer:
                break
        return math.exp(total)

    def _letter_distribution(
        self, answer: Answer, tokens: Sequence[TokenLogprob]
    ) -> tuple[float, float] | None:
        letters = self.config.letters
        for token in tokens:
            if token.token.strip(" ([*") != answer.value:
                continue
            by_letter: dict[str, list[float]] = {}
            alternatives = [(a.token, a.logprob) for a in token.top]
            if not any(text == token.token for text, _ in alternatives):
                alternatives.append((token.token, token.logprob))
            for text, logprob in alternatives:
                key = text.strip(" ([*")
                if len(key) == 1 and key in letters:
                    by_letter.setdefault(key, []).append(logprob)
            if answer.value not in by_letter:
                return None
            mass_log = _logsumexp([v for values in by_letter.values() for v in values])
            chosen = _logsumexp(by_letter[answer.value])
            return math.exp(chosen - mass_log), math.exp(mass_log)
        return None

    async def _probe(
        self, tier: TierBackend, request: GenerationRequest, thinking: str, at: int
    ) -> tuple[Probe, ProbeRecord]:
        result = await tier.generate(self._probe_request(request, thinking))
        [choice] = result.choices
        probe = self.read_probe(choice)
        record = ProbeRecord(
            at_tokens=at,
            answer=None if probe.answer is None else probe.answer.value,
            kind=None if probe.answer is None else probe.answer.kind,
            confidence=round(probe.confidence, 6),
            mass=None if probe.mass is None else round(probe.mass, 6),
            tokens=choice.completion_tokens,
        )
        return probe, record

    # ----- thinking ----------------------------------------------------------------------
    def _turn_cut(self, generated: Sequence[TokenLogprob]) -> str:
        """The fallback template's turn marker (``"\\nUser:"``) that ended a chunk: engines
        stop a base model's answer there, but inside thinking it is text, as it is without
        probes. Read from the chunk's last tokens (the text stops before the marker); empty
        when the chunk closed its thinking or ended (an end-of-sequence token has no entry)."""
        tail = "".join(t.token for t in generated[-8:])
        if self.markers.close in tail:
            return ""
        for stop in FALLBACK_STOP:
            if stop.lstrip() in tail[-len(stop) - 4 :]:
                return stop
        return ""

    async def _think(
        self, tier: TierBackend, request: GenerationRequest, trace: ProbeTrace, *, stream: bool
    ) -> AsyncIterator[str]:
        """Yield the thinking text as it comes; ``trace`` says how it ended."""
        thinking, spent, index = "", 0, 0
        seen: list[Probe] = []
        interval = self.config.interval
        while True:
            # up to the next multiple of the interval (a chunk cut short by a turn marker,
            # see `_turn_cut`, is completed before the probe)
            size = min(interval - spent % interval, trace.cap - spent)
            if size <= 0:
                trace.stop = "budget"
                break
            chunk = self._chunk_request(request, thinking, size, index)
            index += 1
            text, tokens, finish = "", 0, "length"
            generated: list[TokenLogprob] = []
            if stream:
                lead_done = False
                async for event in tier.stream(chunk):
                    if event.prompt_tokens is not None and index == 1:
                        trace.prompt_tokens = event.prompt_tokens
                    generated.extend(event.logprobs)
                    piece = event.content or event.reasoning
                    if piece and not lead_done:
                        piece, lead_done = _with_lead(piece, event.logprobs), True
                    if piece:
                        text += piece
                        yield piece
                    if event.completion is not None:
                        tokens = event.completion.completion_tokens
                        finish = event.completion.finish_reason
            else:
                result = await tier.generate(chunk)
                [choice] = result.choices
                if index == 1:
                    trace.prompt_tokens = result.prompt_tokens
                generated = list(choice.logprobs or ())
                text = _with_lead(choice.text, generated)
                tokens, finish = choice.completion_tokens, choice.finish_reason
                if text:
                    yield text
            cut = self._turn_cut(generated) if finish == "stop" else ""
            if cut:
                text += cut
                yield cut
            thinking += text
            spent += tokens
            trace.thinking_tokens = spent
            if finish == "stop" and not cut:
                trace.stop = "natural"
                break
            if spent >= trace.cap:
                trace.stop = "budget"
                break
            if spent % interval:
                continue
            probe, record = await self._probe(tier, request, thinking, spent)
            seen.append(probe)
            trace.probes.append(record)
            if self.rule.settled(seen):
                trace.stop = "probe"
                break

    async def generate(
        self, tier: TierBackend, request: GenerationRequest
    ) -> tuple[GenerationResult, ProbeTrace]:
        """The whole answer, thinking under probes; and how the thinking ended."""
        trace = ProbeTrace(cap=self.cap(request.params))
        thinking = "".join(
            [piece async for piece in self._think(tier, request, trace, stream=False)]
        )
        answer_request = self._answer_request(request, thinking, trace.thinking_tokens)
        answer: Completion | None = None
        if answer_request is not None:
            result = await tier.generate(answer_request)
            [answer] = result.choices
        completion = self._merged(request, thinking, trace, answer)
        return GenerationResult(tier.model_name, trace.prompt_tokens, [completion]), trace

    def _merged(
        self,
        request: GenerationRequest,
        thinking: str,
        trace: ProbeTrace,
        answer: Completion | None,
    ) -> Completion:
        finish: FinishReason = "length" if answer is None else answer.finish_reason
        return Completion(
            text="" if answer is None else answer.text,
            reasoning=thinking.strip(),
            finish_reason=finish,
            completion_tokens=trace.thinking_tokens + (answer.completion_tokens if answer else 0),
            reasoning_tokens=trace.thinking_tokens,
            logprobs=answer.logprobs if answer is not None and request.params.logprobs else None,
            thinking_budget=request.params.thinking_budget,
            forced_close=trace.stop == "budget",
        )

    async def stream(
        self, tier: TierBackend, request: GenerationRequest, trace: ProbeTrace
    ) -> AsyncIterator[StreamEvent]:
        """Stream the thinking chunks as they come (probe output never), then the answer;
        the last event carries the merged completion. ``trace`` is filled as it goes."""
        trace.cap = self.cap(request.params)
        first: int | None = 0
        pieces: list[str] = []
        async for piece in self._think(tier, request, trace, stream=True):
            pieces.append(piece)
            yield StreamEvent(reasoning=piece, prompt_tokens=trace.prompt_tokens if first else None)
            first = None
        if first is not None:
            first = trace.prompt_tokens
        thinking = "".join(pieces)
        answer_request = self._answer_request(request, thinking, trace.thinking_tokens)
        if answer_request is None:
            completion = self._merged(request, thinking, trace, None)
            yield StreamEvent(finish_reason="length", completion=completion, prompt_tokens=first)
            return
        async for event in tier.stream(answer_request):
            if event.completion is not None:
                completion = self._merged(request, thinking, trace, event.completion)
                event = dataclasses.replace(event, completion=completion)
            yield dataclasses.replace(event, index=0, prompt_tokens=first)
            first = None
