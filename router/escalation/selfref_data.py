"""QA data for escalation: reading ``{"prompt", "answer"}`` JSONL, answering it with the
small model, and judging the answers.

The judge is one function, `is_correct`, shared by ``train-selfref`` (labels for the
confidence tokens) and ``eval-escalation`` (the ground truth of the AUROC): an answer is
correct when the normalised gold answer appears as a whole word (sequence of words) in
the first non-empty line of the reply. Normalisation (`normalize_answer`): lower case,
``$`` and thousands separators dropped (``$1,000`` -> ``1000``), numbers written
canonically (``18.50`` -> ``18.5``, ``7.0`` -> ``7``), everything else split into words
at punctuation and spaces.

Example::

    items = read_qa_jsonl("qa.jsonl")
    replies = answer_items(engine, items, sampling_as_served(config.small, temperature=0.0))
    labels = [is_correct(r.text, item.answer) for r, item in zip(replies, items)]
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from classifiers.records import RecordsError, read_records
from router.engines.base import ChatMessage, Completion, Engine, GenerationRequest
from router.sampling import SamplingParams

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_WORD = re.compile(r"-?\d+(?:\.\d+)?|[^\W_]+")


@dataclass(frozen=True)
class QAItem:
    """One question with its gold answer."""

    prompt: str
    answer: str

    @property
    def messages(self) -> list[ChatMessage]:
        """The chat sent to the small model: the prompt as one user turn."""
        return [ChatMessage("user", self.prompt)]


def read_qa_jsonl(path: str | Path, *, limit: int | None = None) -> list[QAItem]:
    """Read a JSONL file of ``{"prompt": str, "answer": str|number}`` objects.

    Raises `RecordsError` naming the file and the first bad line or record."""
    items: list[QAItem] = []
    for number, record in enumerate(read_records(path, jsonl=True), start=1):
        where = f"{path}: record {number}"
        prompt, answer = record.get("prompt"), record.get("answer")
        if not isinstance(prompt, str) or not prompt.strip():
            raise RecordsError(f"{where}: 'prompt' must be a non-empty string")
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise RecordsError(f"{where}: 'answer' must be a string or a number")
        if not normalize_answer(str(answer)):
            raise RecordsError(f"{where}: 'answer' has no words after normalisation")
        items.append(QAItem(prompt=prompt, answer=str(answer)))
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise RecordsError(f"{path}: holds no items")
    return items


def _canonical_number(word: str) -> str:
    if "." not in word:
        return word.lstrip("+")
    whole, _, fraction = word.partition(".")
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def answer_words(text: str) -> list[str]:
    """The normalised words of ``text`` (see the module docstring)."""
    cleaned = _THOUSANDS.sub("", text.lower().replace("$", ""))
    return [_canonical_number(w) for w in _WORD.findall(cleaned)]


def normalize_answer(text: str) -> str:
    """Normalised answer text: its words joined by single spaces."""
    return " ".join(answer_words(text))


def first_line(reply: str) -> str:
    """The first non-empty line of a reply ("" when there is none)."""
    for line in reply.splitlines():
        if line.strip():
            return line
    return ""


def is_correct(reply: str, gold: str) -> bool:
    """Whether the normalised ``gold`` appears as whole words in the reply's first line."""
    want = answer_words(gold)
    have = answer_words(first_line(reply))
    if not want:
        return False
    width = len(want)
    return any(have[i : i + width] == want for i in range(len(have) - width + 1))


def answer_items(
    engine: Engine,
    items: Sequence[QAItem],
    params: SamplingParams,
    *,
    batch_size: int = 8,
    progress: bool = True,
    desc: str = "answering",
) -> list[Completion]:
    """The (loaded) engine's whole answers to every item, sampled with ``params`` (build
    them with `router.escalation.policy.sampling_as_served` to answer as the cascade does);
    a tqdm bar shows progress. With a ``seed``, item ``i`` is sampled with ``seed + i``."""
    from tqdm.auto import tqdm

    out: list[Completion] = []
    with tqdm(total=len(items), desc=desc, unit="item", disable=not progress) as bar:
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            requests = [
                GenerationRequest(
                    messages=item.messages,
                    params=params
                    if params.seed is None
                    else dataclasses.replace(params, seed=params.seed + i),
                    request_id=str(i),
                )
                for i, item in enumerate(batch, start=start)
            ]
            for result in engine.generate(requests):
                out.append(result.choices[0])
            bar.update(len(batch))
    return out
