"""The log-probability scorers' arithmetic, pinned on hand-computed values."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest

from router._exceptions import ConfigError
from router.engines.base import ChatMessage, Completion, TokenLogprob, TopLogprob
from router.escalation import SCORER_NAMES, create_uncertainty_scorer

LN = math.log
MESSAGES = [ChatMessage("user", "What is 2 + 2?")]


async def _no_probe(
    messages: Sequence[ChatMessage], prefix: str, tokens: Sequence[str]
) -> dict[str, float]:
    raise AssertionError("log-probability scorers must not probe the model")


def _token(p: float, *alternatives: float) -> TokenLogprob:
    top = tuple(TopLogprob(f"t{i}", LN(q)) for i, q in enumerate(alternatives))
    return TokenLogprob(token="x", token_id=0, logprob=LN(p), top=top)


def _score(name: str, tokens: list[TokenLogprob]) -> float:
    completion = Completion(text="4", logprobs=tokens)
    return asyncio.run(create_uncertainty_scorer(name).uncertainty(MESSAGES, completion, _no_probe))


# Two answer tokens: p = 0.8 (alternatives 0.8, 0.2) and p = 0.5 (alternatives 0.5, 0.25, 0.25)
ANSWER = [_token(0.8, 0.8, 0.2), _token(0.5, 0.5, 0.25, 0.25)]


def test_mean_logprob_is_one_minus_geometric_mean_probability() -> None:
    assert _score("mean_logprob", ANSWER) == pytest.approx(1 - math.sqrt(0.8 * 0.5))


def test_min_logprob_is_one_minus_least_token_probability() -> None:
    assert _score("min_logprob", ANSWER) == pytest.approx(0.5)


def test_margin_is_one_minus_mean_top2_gap() -> None:
    # gaps 0.8 - 0.2 = 0.6 and 0.5 - 0.25 = 0.25
    assert _score("margin", ANSWER) == pytest.approx(1 - (0.6 + 0.25) / 2)


def test_margin_sorts_alternatives_whatever_order_the_engine_gives() -> None:
    assert _score("margin", [_token(0.2, 0.2, 0.8)]) == pytest.approx(1 - 0.6)


def test_entropy_is_mean_normalised_entropy_of_renormalised_alternatives() -> None:
    h1 = -(0.8 * LN(0.8) + 0.2 * LN(0.2)) / LN(2)
    h2 = -(0.5 * LN(0.5) + 2 * 0.25 * LN(0.25)) / LN(3)
    assert _score("entropy", ANSWER) == pytest.approx((h1 + h2) / 2)


def test_entropy_renormalises_truncated_alternatives() -> None:
    # 0.3 and 0.3 of a larger vocabulary: renormalised to 0.5 / 0.5 -> maximal entropy
    assert _score("entropy", [_token(0.3, 0.3, 0.3)]) == pytest.approx(1.0)


def test_single_alternative_means_certain_for_margin_and_entropy() -> None:
    sure = [TokenLogprob(token="x", token_id=0, logprob=0.0)]
    assert _score("margin", sure) == pytest.approx(0.0)
    assert _score("entropy", sure) == pytest.approx(0.0)


def test_certain_answer_scores_zero_and_empty_answer_scores_one() -> None:
    certain = [_token(1.0, 1.0, 1e-12)]
    for name in ("mean_logprob", "min_logprob", "margin", "entropy"):
        assert _score(name, certain) == pytest.approx(0.0, abs=1e-9)
        assert _score(name, []) == 1.0


def test_scores_are_monotone_in_confidence() -> None:
    for name in ("mean_logprob", "min_logprob", "margin", "entropy"):
        values = [_score(name, [_token(p, p, 1 - p)]) for p in (0.55, 0.7, 0.9, 0.99)]
        assert values == sorted(values, reverse=True), name
        assert all(0.0 <= v <= 1.0 for v in values)


def test_logprob_scorer_without_logprobs_names_the_fix() -> None:
    scorer = create_uncertainty_scorer("mean_logprob")
    assert scorer.needs_logprobs
    with pytest.raises(ValueError, match="logprobs=True"):
        asyncio.run(scorer.uncertainty(MESSAGES, Completion(text="4"), _no_probe))


def test_create_uncertainty_scorer_knows_every_name_and_rejects_others() -> None:
    assert {create_uncertainty_scorer(name).name for name in SCORER_NAMES} == set(SCORER_NAMES)
    with pytest.raises(ConfigError, match="unknown escalation scorer 'nope'"):
        create_uncertainty_scorer("nope")
    with pytest.raises(ConfigError, match="no options"):
        create_uncertainty_scorer("margin", question="?")
    with pytest.raises(ConfigError, match="unknown options"):
        create_uncertainty_scorer("selfref", question="?")
