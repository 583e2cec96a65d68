"""Thinking budgets: how many thinking tokens the strong tier may spend on a prompt.

``budget = clamp(predicted quantile x slack, min_tokens, max_tokens)``, then lowered by the
request (``max_thinking_tokens``, ``reasoning_effort`` caps). ``reasoning_effort="none"`` or
``chat_template_kwargs.enable_thinking=false`` turn thinking off (budget None, no ``<think>``).

Example::

    budgets = ThinkingBudget(config.budget)
    budgets.for_prompt("A train leaves at 3pm ...", max_thinking_tokens=200)   # e.g. 184
"""

from __future__ import annotations

import threading
from typing import Any

from router._exceptions import InvalidRequestError
from router.config import BudgetConfig


class ThinkingBudget:
    """Budget policy around the learned complexity predictor (loaded lazily)."""

    def __init__(self, config: BudgetConfig) -> None:
        self.config = config
        self._predictor: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._predictor is None:
                from classifiers.budget_predictor import ComplexityPredictor

                self._predictor = ComplexityPredictor.load(self.config.predictor_path)
            return self._predictor

    def load(self) -> None:
        if self.config.enabled:
            self._load()

    def predicted_tokens(self, prompt: str) -> float:
        """The predictor's estimate at the configured quantile (nearest trained one)."""
        predictor = self._load()
        quantiles = list(predictor.quantiles)
        column = min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - self.config.quantile))
        return float(predictor.predict([prompt])[0][column])

    def for_prompt(
        self,
        prompt: str,
        *,
        max_thinking_tokens: int | None = None,
        reasoning_effort: str | None = None,
    ) -> int:
        cfg = self.config
        if max_thinking_tokens is not None and max_thinking_tokens < 0:
            raise InvalidRequestError(
                f"max_thinking_tokens must be >= 0, got {max_thinking_tokens}",
                param="max_thinking_tokens",
            )
        if cfg.enabled:
            budget = round(self.predicted_tokens(prompt) * cfg.slack)
            budget = max(cfg.min_tokens, min(cfg.max_tokens, budget))
        else:
            budget = cfg.max_tokens
        if reasoning_effort in cfg.effort_caps:
            budget = min(budget, cfg.effort_caps[reasoning_effort])
        if max_thinking_tokens is not None:
            budget = min(budget, max_thinking_tokens)
        return budget

    def instruction(self, budget: int) -> str | None:
        """The prompt-side variant: a sentence stating the budget, if configured."""
        template = self.config.prompt_instruction
        return None if template is None else template.replace("{budget}", str(budget))
