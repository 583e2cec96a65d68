"""The actual request inside a prompt: few-shot exemplars and fixed instructions removed.

Benchmark prompts wrap one question in a template: a fixed instruction ("The following
are multiple choice questions (with answers) about ..."), solved exemplars (each ending
in ``Answer: B``), then the question and an answer cue (``Answer:``). Features computed
on the whole prompt learn the template; the router should see what is being asked.
:func:`extract_request` keeps only that part and leaves a plain chat request as it is.

Example::

    >>> p = ("The following are multiple choice questions (with answers) about math.\\n\\n"
    ...      "1 + 1 = ?\\nA. 1\\nB. 2\\nAnswer: B\\n\\nWhat is 2 + 3?\\nA. 5\\nB. 6\\nAnswer:")
    >>> extract_request(p)
    'What is 2 + 3?\\nA. 5\\nB. 6'
    >>> extract_request("Write a haiku about rain.")
    'Write a haiku about rain.'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

__all__ = ["DIGEST_PREFIX_CHARS", "extract_request", "prompt_digests"]

# An exemplar ends with a filled-in answer line, then a blank line before the next item.
_EXEMPLAR_END = re.compile(
    r"^(?:answer|the answer is|a|output|response|solution)\s*[:=]\s*\S[^\n]*\n\s*\n",
    re.IGNORECASE | re.MULTILINE,
)
# A fixed instruction line that only announces the format.
_INSTRUCTION = re.compile(
    r"^\s*(?:the following (?:are|is) [^\n]*(?:questions?|problems?|tasks?)[^\n]*|"
    r"answer the following [^\n]*|"
    r"(?:choose|select) the (?:correct|best) (?:answer|option)[^\n]*)\n",
    re.IGNORECASE,
)
# A trailing answer cue with nothing after it.
_ANSWER_CUE = re.compile(
    r"\n\s*(?:answer|the answer is|a|output|response|solution)\s*[:=]?\s*$", re.IGNORECASE
)


def extract_request(prompt: str) -> str:
    """The request of ``prompt`` without exemplars, format instructions and answer cue.

    Never returns an empty string: when stripping would leave nothing, the stripped
    prompt is returned as it was.
    """
    text = prompt.strip()
    ends = list(_EXEMPLAR_END.finditer(text))
    if ends:
        text = text[ends[-1].end() :]
    text = _INSTRUCTION.sub("", text, count=1)
    text = _ANSWER_CUE.sub("", text).strip()
    return text if text else prompt.strip()


DIGEST_PREFIX_CHARS = 256
"""Characters of the normalised request that a training-prompt digest covers."""


def prompt_digests(prompts: Sequence[str]) -> np.ndarray:
    """A 32-bit digest per prompt: SHA-256 of its normalised request's first characters.

    Normalised: :func:`extract_request`, lower case, whitespace collapsed; only the first
    :data:`DIGEST_PREFIX_CHARS` characters count, so the same question in another template
    still matches. A router keeps these of its training prompts (4 bytes each) so that an
    evaluation can tell in-sample prompts from held-out ones.
    """
    out = np.empty(len(prompts), dtype=np.uint32)
    for i, prompt in enumerate(prompts):
        text = " ".join(extract_request(prompt).lower().split())[:DIGEST_PREFIX_CHARS]
        out[i] = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")
    return out
