"""The judge: which of two answers to one request is better, or is an answer correct.

Pairwise, as MT-Bench and AlpacaEval do: the judge model sees the question and two
answers labelled A and B and gives its verdict; the question is asked twice with the
answers swapped, which cancels the judge's position bias. The verdict is read from the
judge's next-token log-probabilities after ``Verdict: [[`` (``A``, ``B`` or ``C`` for a
tie), so every call gives a verdict, even from a model that would not follow the output
format; two verdicts that disagree make a tie.

Result: ``strong_better`` in {0, 0.5, 1} (1: the strong tier's answer is better) and
``small_ok`` (the small answer is at least as good). With a reference answer each answer
is graded alone (``yes``/``no`` against the reference) instead.

Example::

    verdict = await judge_pair(tier, question, small_answer, strong_answer)
    verdict.strong_better, verdict.small_ok
"""

from __future__ import annotations

from dataclasses import dataclass

from router.engines.base import ChatMessage
from router.tiers import TierBackend

PAIRWISE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by "
    "two AI assistants to the user question displayed below. Choose the assistant that "
    "follows the user's instructions and answers the user's question better: consider "
    "helpfulness, relevance, accuracy, depth and level of detail. Do not let the order of "
    "the responses, their length or the assistants' names influence you. Give your final "
    'verdict strictly as "[[A]]" if assistant A is better, "[[B]]" if assistant B is '
    'better, and "[[C]]" for a tie.'
)
GRADE_SYSTEM = (
    "You grade an answer against a reference answer. Reply [[yes]] if the answer is correct "
    "and agrees with the reference, else [[no]]."
)
VERDICT_PREFIX = "Verdict: [["
MAX_ANSWER_CHARS = 6000


@dataclass(frozen=True)
class Verdict:
    strong_better: float
    small_ok: bool
    calls: int
    prompt_chars: int


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ANSWER_CHARS else text[:MAX_ANSWER_CHARS] + " [...]"


def pairwise_messages(question: str, answer_a: str, answer_b: str) -> list[ChatMessage]:
    body = (
        f"[User Question]\n{_clip(question)}\n\n"
        f"[The Start of Assistant A's Answer]\n{_clip(answer_a)}\n"
        f"[The End of Assistant A's Answer]\n\n"
        f"[The Start of Assistant B's Answer]\n{_clip(answer_b)}\n"
        f"[The End of Assistant B's Answer]"
    )
    return [ChatMessage("system", PAIRWISE_SYSTEM), ChatMessage("user", body)]


def _choice(logprobs: dict[str, float], options: tuple[str, ...]) -> str:
    return max(options, key=lambda token: logprobs.get(token, float("-inf")))


async def _ask(judge: TierBackend, messages: list[ChatMessage], options: tuple[str, ...]) -> str:
    logprobs = await judge.next_token_logprobs(messages, VERDICT_PREFIX, list(options))
    return _choice(logprobs, options)


def combine(first: float, second: float) -> float:
    """Two position-swapped verdicts (each 0, 0.5 or 1): agreeing -> that, else a tie."""
    return first if first == second else 0.5


async def judge_pair(judge: TierBackend, question: str, small: str, strong: str) -> Verdict:
    """Pairwise verdict, asked with strong as A then with strong as B."""
    as_a = pairwise_messages(question, strong, small)
    as_b = pairwise_messages(question, small, strong)
    first = await _ask(judge, as_a, ("A", "B", "C"))
    second = await _ask(judge, as_b, ("A", "B", "C"))
    value = {"A": 1.0, "B": 0.0, "C": 0.5}
    strong_better = combine(value[first], 1.0 - value[second])
    chars = sum(len(m.content) for m in as_a + as_b)
    return Verdict(strong_better, strong_better <= 0.5, 2, chars)


async def grade_pair(
    judge: TierBackend, question: str, small: str, strong: str, reference: str
) -> Verdict:
    """Each answer graded against ``reference``; the better-graded one wins."""
    correct = []
    chars = 0
    for answer in (small, strong):
        body = (
            f"[Question]\n{_clip(question)}\n\n[Reference Answer]\n{_clip(reference)}\n\n"
            f"[Answer]\n{_clip(answer)}"
        )
        messages = [ChatMessage("system", GRADE_SYSTEM), ChatMessage("user", body)]
        chars += len(GRADE_SYSTEM) + len(body)
        correct.append(await _ask(judge, messages, ("yes", "no")) == "yes")
    small_ok, strong_ok = correct
    strong_better = 0.5 if small_ok == strong_ok else (1.0 if strong_ok else 0.0)
    return Verdict(strong_better, small_ok, 2, chars)
