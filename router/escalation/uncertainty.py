"""Uncertainty scorers: how unsure the small model is of an answer it gave, in [0, 1].

Every scorer has the same shape, so the cascade, ``calibrate-escalation`` and
``eval-escalation`` treat them alike; higher means "more likely wrong, escalate". A
threshold on the score (`EscalationPolicy`) is a separate concern.

Token log-probability family (needs the answer's log-probabilities with
``top_logprobs >= 2``; every transform is monotone, so AUROC and calibrated rates do not
depend on it — it only makes τ readable):

- ``mean_logprob``: ``1 - exp(mean log p)``, one minus the geometric-mean token probability.
- ``min_logprob``: ``1 - exp(min log p)``, one minus the least likely token's probability.
- ``margin``: ``1 - mean(p1 - p2)``, p1 and p2 the two most likely alternatives per token
  (p2 = 0 where a position has one alternative).
- ``entropy``: ``mean(H(q) / log k)``, q the top-k alternatives renormalised to sum 1, so
  each token's entropy lies in [0, 1] (0 where a position has one alternative).

Probe family (reads next-token log-probabilities through a `NextTokenProbe`; no
sampling, nothing is emitted):

- ``self_verify`` (AutoMix): the conversation is extended by the answer and a user turn
  asking whether it is correct; uncertainty = ``1 - P(yes) / (P(yes) + P(no))``. P(yes)
  sums the probability of every casing/spacing variant in `YES_VARIANTS` that the
  tokenizer has as one token ("Yes", " yes", ...): the variants are mutually exclusive
  next tokens, so summing them is the model's total mass on "yes", and it does not matter
  which form a given tokenizer or chat template prefers. Which variants are single tokens
  is found on first use (the probe rejects the others) and remembered by the scorer.
- ``selfref`` (Self-REF, Chuang et al. 2025): with a model fine-tuned by
  ``thinkgate train-selfref``, the confidence token that would follow the answer is read
  at the position right after it; uncertainty = ``P(<UN>) / (P(<CN>) + P(<UN>))``.

An empty answer (no tokens) scores 1.0 on the log-probability family: there is nothing to
trust.

Example::

    scorer = create_uncertainty_scorer("margin")
    u = await scorer.uncertainty(messages, completion, engine_probe(engine))
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from router._exceptions import ConfigError, InvalidRequestError
from router.engines.base import ChatMessage, Completion, Engine, TokenLogprob

NextTokenProbe = Callable[[Sequence[ChatMessage], str, Sequence[str]], Awaitable[dict[str, float]]]
"""``probe(messages, assistant_prefix, tokens) -> {token: log-prob}`` of each single-token
string as the next token after the rendered prompt plus ``assistant_prefix``. Raises
`InvalidRequestError` when one of ``tokens`` is not a single token of the vocabulary
(as `Engine.next_token_logprobs` does)."""

CONFIDENT_TOKEN = "<CN>"
UNCERTAIN_TOKEN = "<UN>"
YES_VARIANTS: tuple[str, ...] = ("Yes", " Yes", "yes", " yes", "YES", " YES")
NO_VARIANTS: tuple[str, ...] = ("No", " No", "no", " no", "NO", " NO")
VERIFY_QUESTION = "Is the answer above correct? Reply with a single word: Yes or No."
MIN_TOP_LOGPROBS = 2
_SELFREF_HINT = "load the adapter written by `thinkgate train-selfref` (small.engine.adapter_path)"


@runtime_checkable
class UncertaintyScorer(Protocol):
    """How unsure the small model is of one answer, in [0, 1]; higher means escalate."""

    @property
    def name(self) -> str:
        """The scorer's name (one of `SCORER_NAMES`)."""
        ...

    @property
    def needs_logprobs(self) -> bool:
        """The small model must return answer log-probabilities (``top_logprobs >= 2``)."""
        ...

    async def uncertainty(
        self, messages: Sequence[ChatMessage], completion: Completion, probe: NextTokenProbe
    ) -> float: ...


def engine_probe(engine: Engine) -> NextTokenProbe:
    """A `NextTokenProbe` over an in-process engine (the blocking call runs in a thread)."""

    async def probe(
        messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        return await asyncio.to_thread(
            engine.next_token_logprobs, messages, assistant_prefix, tokens
        )

    return probe


def _answer_logprobs(completion: Completion, scorer: str) -> list[TokenLogprob]:
    if completion.logprobs is None:
        raise ValueError(
            f"scorer {scorer!r} needs the answer's log-probabilities; request the small "
            f"model's completion with logprobs=True and top_logprobs >= {MIN_TOP_LOGPROBS}"
        )
    return completion.logprobs


def _alternatives(token: TokenLogprob) -> list[float]:
    """Log-probabilities of the alternatives at one position, most likely first.

    Falls back to the sampled token alone when the engine returned no alternatives."""
    values = [alt.logprob for alt in token.top] or [token.logprob]
    return sorted(values, reverse=True)


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


def mean_logprob_uncertainty(logprobs: Sequence[TokenLogprob]) -> float:
    """``1 - exp(mean log p)`` over the answer tokens; 1.0 for an empty answer."""
    if not logprobs:
        return 1.0
    mean = sum(t.logprob for t in logprobs) / len(logprobs)
    return _clip01(1.0 - math.exp(mean))


def min_logprob_uncertainty(logprobs: Sequence[TokenLogprob]) -> float:
    """``1 - exp(min log p)`` over the answer tokens; 1.0 for an empty answer."""
    if not logprobs:
        return 1.0
    return _clip01(1.0 - math.exp(min(t.logprob for t in logprobs)))


def margin_uncertainty(logprobs: Sequence[TokenLogprob]) -> float:
    """``1 - mean(p1 - p2)``; p2 = 0 where a position has a single alternative."""
    if not logprobs:
        return 1.0
    margins = []
    for token in logprobs:
        alts = _alternatives(token)
        p1 = math.exp(alts[0])
        p2 = math.exp(alts[1]) if len(alts) > 1 else 0.0
        margins.append(p1 - p2)
    return _clip01(1.0 - sum(margins) / len(margins))


def entropy_uncertainty(logprobs: Sequence[TokenLogprob]) -> float:
    """Mean over tokens of the normalised entropy of the renormalised top-k alternatives."""
    if not logprobs:
        return 1.0
    total = 0.0
    for token in logprobs:
        alts = _alternatives(token)
        if len(alts) < 2:
            continue
        peak = alts[0]
        weights = [math.exp(lp - peak) for lp in alts]
        norm = sum(weights)
        entropy = -sum((w / norm) * math.log(w / norm) for w in weights if w > 0.0)
        total += entropy / math.log(len(alts))
    return _clip01(total / len(logprobs))


def _logsumexp(values: Sequence[float]) -> float:
    finite = [v for v in values if v != -math.inf]
    if not finite:
        return -math.inf
    peak = max(finite)
    return peak + math.log(sum(math.exp(v - peak) for v in finite))


def share_of_second(first: Sequence[float], second: Sequence[float]) -> float:
    """``P(second) / (P(first) + P(second))`` from log-probabilities; each side sums its
    variants. 0.5 when neither side has any probability mass (no information)."""
    log_first, log_second = _logsumexp(first), _logsumexp(second)
    if log_first == -math.inf and log_second == -math.inf:
        return 0.5
    if log_first == -math.inf:
        return 1.0
    if log_second == -math.inf:
        return 0.0
    # the logistic of the log-odds, written to never overflow
    diff = log_second - log_first
    if diff >= 0:
        return 1.0 / (1.0 + math.exp(-diff))
    odds = math.exp(diff)
    return odds / (1.0 + odds)


@dataclass(frozen=True)
class _LogprobScorer:
    name: str
    transform: Callable[[Sequence[TokenLogprob]], float]
    needs_logprobs: bool = True

    async def uncertainty(
        self, messages: Sequence[ChatMessage], completion: Completion, probe: NextTokenProbe
    ) -> float:
        return self.transform(_answer_logprobs(completion, self.name))


@dataclass(frozen=True)
class SelfVerifyScorer:
    """AutoMix self-verification: ``1 - P(yes) / (P(yes) + P(no))``, read, not sampled.

    The verification turn is a user message (`question`) after the answer; the probe reads
    the first token of the model's reply to it. Which of the yes/no variants the vocabulary
    holds as single tokens is found once (probing each variant alone, when the probe
    rejects the full list) and remembered by this scorer, which serves one model.

    Example::

        u = await SelfVerifyScorer().uncertainty(messages, completion, probe)
    """

    name: str = "self_verify"
    needs_logprobs: bool = False
    question: str = VERIFY_QUESTION
    yes_tokens: tuple[str, ...] = YES_VARIANTS
    no_tokens: tuple[str, ...] = NO_VARIANTS
    _single_tokens: list[tuple[str, ...]] = field(
        default_factory=list, init=False, repr=False, compare=False, hash=False
    )

    def verification_messages(
        self, messages: Sequence[ChatMessage], completion: Completion
    ) -> list[ChatMessage]:
        """The conversation whose next token is read: the original one, the answer, the
        question."""
        return [
            *messages,
            ChatMessage("assistant", completion.text),
            ChatMessage("user", self.question),
        ]

    async def _variants(self, probe: NextTokenProbe) -> tuple[str, ...]:
        if self._single_tokens:
            return self._single_tokens[0]
        variants = (*self.yes_tokens, *self.no_tokens)
        check = [ChatMessage("user", self.question)]
        try:
            await probe(check, "", variants)
            accepted = variants
        except InvalidRequestError:
            found = []
            for token in variants:
                with contextlib.suppress(InvalidRequestError):
                    await probe(check, "", [token])
                    found.append(token)
            accepted = tuple(found)
        self._single_tokens.append(accepted)
        return accepted

    async def uncertainty(
        self, messages: Sequence[ChatMessage], completion: Completion, probe: NextTokenProbe
    ) -> float:
        variants = await self._variants(probe)
        yes_tokens = [t for t in self.yes_tokens if t in variants]
        no_tokens = [t for t in self.no_tokens if t in variants]
        if not yes_tokens or not no_tokens:
            missing = self.no_tokens if yes_tokens else self.yes_tokens
            raise ConfigError(f"self_verify: the model has none of {missing} as a single token")
        found = await probe(
            self.verification_messages(messages, completion), "", [*yes_tokens, *no_tokens]
        )
        yes = [found[t] for t in yes_tokens if t in found]
        no = [found[t] for t in no_tokens if t in found]
        return share_of_second(yes, no)


@dataclass(frozen=True)
class SelfRefScorer:
    """Self-REF confidence tokens: ``P(<UN>) / (P(<CN>) + P(<UN>))`` right after the answer.

    Needs a small model trained by ``thinkgate train-selfref`` (its adapter set as the
    small engine's ``adapter_path``). The answer text is the assistant prefix, so the
    position read is exactly where training placed the confidence token.

    Example::

        u = await SelfRefScorer().uncertainty(messages, completion, probe)
    """

    name: str = "selfref"
    needs_logprobs: bool = False
    confident_token: str = CONFIDENT_TOKEN
    uncertain_token: str = UNCERTAIN_TOKEN

    async def uncertainty(
        self, messages: Sequence[ChatMessage], completion: Completion, probe: NextTokenProbe
    ) -> float:
        tokens = [self.confident_token, self.uncertain_token]
        try:
            found = await probe(messages, completion.text, tokens)
        except InvalidRequestError as exc:
            raise ConfigError(f"selfref: {exc.message}; {_SELFREF_HINT}") from None
        missing = [t for t in tokens if t not in found]
        if missing:
            raise ConfigError(f"selfref: the model lacks {missing}; {_SELFREF_HINT}")
        return share_of_second([found[self.confident_token]], [found[self.uncertain_token]])


_LOGPROB_TRANSFORMS: dict[str, Callable[[Sequence[TokenLogprob]], float]] = {
    "mean_logprob": mean_logprob_uncertainty,
    "min_logprob": min_logprob_uncertainty,
    "margin": margin_uncertainty,
    "entropy": entropy_uncertainty,
}
LOGPROB_SCORER_NAMES: tuple[str, ...] = tuple(_LOGPROB_TRANSFORMS)
SCORER_NAMES: tuple[str, ...] = (*LOGPROB_SCORER_NAMES, "self_verify", "selfref")


def create_uncertainty_scorer(name: str, **options: str) -> UncertaintyScorer:
    """The scorer called ``name`` (one of `SCORER_NAMES`).

    Options: ``self_verify`` takes ``question``; ``selfref`` takes ``confident_token`` and
    ``uncertain_token``; the log-probability scorers take none.
    """
    if name in _LOGPROB_TRANSFORMS:
        if options:
            raise ConfigError(f"scorer {name!r} takes no options, got {sorted(options)}")
        return _LogprobScorer(name=name, transform=_LOGPROB_TRANSFORMS[name])
    if name == "self_verify":
        _check_options(name, options, {"question"})
        return SelfVerifyScorer(question=options.get("question", VERIFY_QUESTION))
    if name == "selfref":
        _check_options(name, options, {"confident_token", "uncertain_token"})
        return SelfRefScorer(
            confident_token=options.get("confident_token", CONFIDENT_TOKEN),
            uncertain_token=options.get("uncertain_token", UNCERTAIN_TOKEN),
        )
    raise ConfigError(
        f"unknown escalation scorer {name!r}; expected one of {', '.join(SCORER_NAMES)}"
    )


def _check_options(name: str, options: dict[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"scorer {name!r} got unknown options {unknown}; allowed: {sorted(allowed)}"
        )
