"""Separating a model's thinking section from its answer, in text and in token ids.

No heavy imports: the `openai` engine and the gateway may use it too. The budget-forcing
logits processor lives in `router.engines.thinking` (it needs transformers).

Example::

    split_thinking("<think>2+2=4</think>\n\nFour", in_thinking=False)
    # ("2+2=4", "Four")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def find_last(
    seq: Sequence[int], sub: Sequence[int], start: int = 0, end: int | None = None
) -> int:
    """Index of the last occurrence of ``sub`` inside ``seq[start:end]``, or -1."""
    stop = len(seq) if end is None else min(end, len(seq))
    m = len(sub)
    if m == 0:
        return -1
    first = sub[0]
    for i in range(stop - m, start - 1, -1):
        if seq[i] == first and list(seq[i : i + m]) == list(sub):
            return i
    return -1


def find_first(
    seq: Sequence[int], sub: Sequence[int], start: int = 0, end: int | None = None
) -> int:
    """Index of the first occurrence of ``sub`` inside ``seq[start:end]``, or -1."""
    stop = len(seq) if end is None else min(end, len(seq))
    m = len(sub)
    if m == 0:
        return -1
    first, rest, last = sub[0], list(sub[1:]), stop - m
    i = max(start, 0)
    while i <= last:
        try:
            i = seq.index(first, i, last + 1)
        except ValueError:
            return -1
        if list(seq[i + 1 : i + m]) == rest:
            return i
        i += 1
    return -1


def _longest_marker_prefix(text: str, marker: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``marker``."""
    for n in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0


class ThinkingSplitter:
    """Separate generated text, fed in pieces, into reasoning and content deltas.

    ``in_thinking=True`` when the prompt already opened the section. Otherwise an open
    marker at the very start of the output (after whitespace) opens one. Text that could
    be the beginning of a marker is held back until it is decided. Whitespace around the
    reasoning and before the answer is dropped.

    Example::

        splitter = ThinkingSplitter("<think>", "</think>", in_thinking=True)
        splitter.feed("2+2 is 4</thi")   # ("2+2 is 4", "")
        splitter.feed("nk>\\n\\nFour")    # ("", "Four")
    """

    def __init__(self, open_text: str, close_text: str, *, in_thinking: bool) -> None:
        if not open_text or not close_text:
            raise ValueError("thinking markers must not be empty")
        self.open_text = open_text
        self.close_text = close_text
        self.phase = "thinking" if in_thinking else "start"
        self.saw_thinking = in_thinking
        self._buffer = ""
        self._reasoning_started = False
        self._answer_started = False

    @property
    def thinking(self) -> bool:
        """True while inside an open thinking section."""
        return self.phase == "thinking"

    @property
    def answer_started(self) -> bool:
        """True once some non-whitespace answer text has come out."""
        return self._answer_started

    def feed(self, text: str) -> tuple[str, str]:
        self._buffer += text
        reasoning, content = "", ""
        if self.phase == "start":
            stripped = self._buffer.lstrip()
            if stripped.startswith(self.open_text):
                self._buffer = stripped[len(self.open_text) :]
                self.phase = "thinking"
                self.saw_thinking = True
            elif self.open_text.startswith(stripped):
                return "", ""
            else:
                self.phase = "answer"
        if self.phase == "thinking":
            at = self._buffer.find(self.close_text)
            if at >= 0:
                reasoning = self._reasoning_piece(self._buffer[:at], final=True)
                self._buffer = self._buffer[at + len(self.close_text) :]
                self.phase = "answer"
            else:
                keep = _longest_marker_prefix(self._buffer, self.close_text)
                body = self._buffer[: len(self._buffer) - keep]
                # Trailing whitespace may precede the close marker: hold it.
                ready = body.rstrip()
                reasoning = self._reasoning_piece(ready, final=False)
                self._buffer = self._buffer[len(ready) :]
                return reasoning, ""
        if self.phase == "answer":
            content = self._answer_piece(self._buffer)
            self._buffer = ""
        return reasoning, content

    def flush(self) -> tuple[str, str]:
        """Release held-back text at the end of generation."""
        buffer, self._buffer = self._buffer, ""
        if self.phase == "thinking":
            return self._reasoning_piece(buffer.rstrip(), final=True), ""
        if self.phase == "start":
            self.phase = "answer"
        return "", self._answer_piece(buffer)

    def _reasoning_piece(self, text: str, *, final: bool) -> str:
        if not self._reasoning_started:
            text = text.lstrip()
            if not text:
                return ""
            self._reasoning_started = True
        return text.rstrip() if final else text

    def _answer_piece(self, text: str) -> str:
        if not self._answer_started:
            text = text.lstrip()
            if not text:
                return ""
            self._answer_started = True
        return text


def split_thinking(
    text: str, open_text: str = "<think>", close_text: str = "</think>", *, in_thinking: bool
) -> tuple[str | None, str]:
    """Split a whole generated text into (reasoning or None, answer)."""
    splitter = ThinkingSplitter(open_text, close_text, in_thinking=in_thinking)
    r1, c1 = splitter.feed(text)
    r2, c2 = splitter.flush()
    return (r1 + r2 if splitter.saw_thinking else None), c1 + c2


def count_reasoning_tokens(
    generated: Sequence[int],
    *,
    close_ids: Sequence[int],
    open_ids: Sequence[int],
    in_thinking: bool,
    decode: Callable[[Sequence[int]], str],
    close_text: str,
) -> tuple[int, int]:
    """(reasoning tokens, index where the answer span starts) in ``generated``.

    ``in_thinking``: the prompt opened the section. Otherwise a section is recognised only
    when the output begins with the open marker tokens. The close marker is looked for as
    its token sequence, then (a model may spell it with other tokens) as text.
    """
    begin = 0
    if not in_thinking:
        if list(generated[: len(open_ids)]) != list(open_ids):
            return 0, 0
        begin = len(open_ids)
    at = find_first(generated, close_ids, begin)
    if at >= 0:
        return at - begin, at + len(close_ids)
    if close_text not in decode(generated[begin:]):
        return len(generated) - begin, len(generated)
    lo, hi = begin + 1, len(generated)
    while lo < hi:  # the shortest prefix whose text contains the close marker
        mid = (lo + hi) // 2
        if close_text in decode(generated[begin:mid]):
            hi = mid
        else:
            lo = mid + 1
    marker_tokens = max(1, len(close_ids))
    return max(0, lo - marker_tokens - begin), lo
