"""Validated sampling settings shared by every engine.

Each field checks itself and names the bad value, e.g.
``InvalidRequestError("top_p must be in (0, 1], got 1.5", param="top_p")``.

Example::

    params = SamplingParams(temperature=0.0, max_tokens=32, stop=("\\n",))
    params.greedy  # True
"""

from __future__ import annotations

from dataclasses import dataclass

from router._exceptions import InvalidRequestError

MAX_N = 16
MAX_STOP_SEQUENCES = 8
MAX_TOP_LOGPROBS = 20
# below this a temperature samples greedily (as vLLM does): logits / 1e-69 overflow
GREEDY_BELOW = 1e-5


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy decoding."""

    max_tokens: int = 256
    """Generated tokens in all (thinking + answer)."""
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0 disables top-k."""
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    thinking: bool = False
    """Open a ``<think>`` section before the answer (reasoning mode)."""
    thinking_budget: int | None = None
    """Cap on thinking tokens; at the cap the engine forces the closing sequence."""

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise InvalidRequestError(
                f"max_tokens must be at least 1, got {self.max_tokens}", param="max_tokens"
            )
        if not 0.0 <= self.temperature <= 2.0:
            raise InvalidRequestError(
                f"temperature must be in [0, 2], got {self.temperature}", param="temperature"
            )
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidRequestError(f"top_p must be in (0, 1], got {self.top_p}", param="top_p")
        if self.top_k < 0:
            raise InvalidRequestError(
                f"top_k must be >= 0 (0 disables it), got {self.top_k}", param="top_k"
            )
        if not 1 <= self.n <= MAX_N:
            raise InvalidRequestError(f"n must be in [1, {MAX_N}], got {self.n}", param="n")
        if len(self.stop) > MAX_STOP_SEQUENCES:
            raise InvalidRequestError(
                f"stop may hold at most {MAX_STOP_SEQUENCES} sequences, got {len(self.stop)}",
                param="stop",
            )
        if any(s == "" for s in self.stop):
            raise InvalidRequestError("stop sequences must not be empty", param="stop")
        if not 0 <= self.top_logprobs <= MAX_TOP_LOGPROBS:
            raise InvalidRequestError(
                f"top_logprobs must be in [0, {MAX_TOP_LOGPROBS}], got {self.top_logprobs}",
                param="top_logprobs",
            )
        if self.thinking_budget is not None and self.thinking_budget < 0:
            raise InvalidRequestError(
                f"the thinking budget must be >= 0, got {self.thinking_budget}",
                param="max_thinking_tokens",
            )

    @property
    def greedy(self) -> bool:
        """Temperature 0, or one so small that dividing the logits by it overflows (vLLM
        treats temperatures below 1e-5 as greedy too)."""
        return self.temperature < GREEDY_BELOW
