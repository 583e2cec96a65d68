"""Thinking budgets: how many thinking tokens the strong tier may spend on a prompt.

``budget = clamp(predicted quantile x slack x units, min_tokens, max_tokens)``, then lowered
by the request (``max_thinking_tokens``, ``reasoning_effort`` caps). ``reasoning_effort=
"none"`` or ``chat_template_kwargs.enable_thinking=false`` turn thinking off (budget None,
no ``<think>``).

**Units.** The predictor records the tokenizer its lengths were counted in. At load the
strong tier's tokenizer is compared with it: the same name (the embedded Gemma) needs
nothing; a local model folder with a ``tokenizer.json`` is converted with a measured ratio
(its tokens per predictor token on a fixed passage of maths reasoning, ``units``), with a
warning; anything else (a hub id, an upstream) is warned about and used unconverted.

**Prompt-side control.** With ``budget.prompt_instruction`` set (TALE / Chain-of-Draft
style, ``{budget}`` replaced by the number), the instruction is appended to the last user
message of every request that thinks under a budget (:meth:`ThinkingBudget.instruct`).

Example::

    budgets = ThinkingBudget(config.budget, strong_model=config.strong.engine.model)
    budgets.load()                                              # warns on a unit mismatch
    budgets.for_prompt("A train leaves at 3pm ...", max_thinking_tokens=200)   # e.g. 184
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router._exceptions import InvalidRequestError
from router.config import BudgetConfig
from router.engines.base import ChatMessage

logger = logging.getLogger("thinkgate.budget")

UNITS_PASSAGE = (
    "Okay, so the shop sells 12 pens at $3 each, that's 12 * 3 = 36 dollars. Then she "
    "returns 2 notebooks: 6 - 2 = 4 notebooks at $5, so 4 * 5 = 20. Wait, let me check the "
    "discount: 10% of (36 + 20) = 5.6, so the total is 56 - 5.6 = 50.4. Hmm, but maybe the "
    "discount only applies to the notebooks? The problem says 'on the rest', which means the "
    "remaining notebooks. So 20 * 0.9 = 18, plus 36 gives 54. Let me verify: \\frac{9}{10} "
    "of 20 is 18. Yes. Therefore the answer is \\boxed{54}."
)
"""Text on which tokens-per-token ratios between two tokenizers are measured."""


def _strong_tokenizer(strong_model: str | None, trained: str) -> str | None:
    """A tokenizer name for the strong tier that ``TokenCounter`` can load, if any."""
    if strong_model is None or strong_model == trained:
        return strong_model
    if strong_model.startswith("embedded:"):
        return strong_model
    folder = Path(strong_model)
    return strong_model if (folder / "tokenizer.json").is_file() else None


class ThinkingBudget:
    """Budget policy around the learned complexity predictor (loaded lazily).

    Args:
        config: the ``budget`` section.
        strong_model: the strong tier's ``engine.model``, to check the predictor's units.
    """

    def __init__(self, config: BudgetConfig, strong_model: str | None = None) -> None:
        self.config = config
        self.strong_model = strong_model
        self.units = 1.0
        """Strong-tier tokens per predictor token (1.0 when the tokenizers agree)."""
        self._predictor: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._predictor is None:
                from classifiers.budget_predictor import ComplexityPredictor

                self._predictor = ComplexityPredictor.load(self.config.predictor_path)
            return self._predictor

    def load(self) -> None:
        """Load the predictor and check its tokenizer against the strong tier's."""
        if self.config.enabled:
            self.units = self._measure_units(self._load())

    def _measure_units(self, predictor: Any) -> float:
        trained = str(predictor.tokenizer)
        if self.strong_model is None or self.strong_model == trained:
            return 1.0
        serving = _strong_tokenizer(self.strong_model, trained)
        if serving is not None:
            from classifiers.budget_tokens import TokenCounter

            try:
                ours = TokenCounter.load(trained).count([UNITS_PASSAGE])[0]
                theirs = TokenCounter.load(serving).count([UNITS_PASSAGE])[0]
            except (FileNotFoundError, OSError, ValueError) as exc:
                logger.warning("cannot load a tokenizer to convert budget units: %s", exc)
            else:
                ratio = float(theirs) / float(max(ours, 1))
                logger.warning(
                    "the budget predictor counts tokens of %r but the strong tier uses %r: "
                    "budgets are converted by a measured ratio of %.3f tokens per token",
                    trained,
                    serving,
                    ratio,
                )
                return ratio
        logger.warning(
            "the budget predictor counts tokens of %r but the strong tier is %r, whose "
            "tokenizer cannot be loaded here: budgets are used unconverted (retrain with "
            "`thinkgate train-budget --tokenizer` for this model)",
            trained,
            self.strong_model,
        )
        return 1.0

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
            budget = round(self.predicted_tokens(prompt) * cfg.slack * self.units)
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

    def instruct(self, messages: Sequence[ChatMessage], budget: int) -> Sequence[ChatMessage]:
        """``messages`` with the instruction appended to the last user message (if set)."""
        text = self.instruction(budget)
        if text is None:
            return messages
        out = list(messages)
        for index in range(len(out) - 1, -1, -1):
            if out[index].role == "user":
                message = out[index]
                out[index] = dataclasses.replace(message, content=f"{message.content}\n\n{text}")
                return out
        return [*out, ChatMessage(role="user", content=text)]
