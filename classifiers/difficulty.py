"""The learned difficulty router: p_strong for a prompt, and thresholds for a strong share.

``p_strong`` estimates P(the weak model fails where the strong one would do better). The
router only scores; the decision (threshold, or a target share of strong calls turned
into a threshold) is a separate policy, as in RouteLLM.

An artifact is a folder with ``router.json`` (featurizer, head kind, calibration,
training metadata) and ``weights.safetensors`` (the head's arrays) — no pickle. The
default router ships in ``classifiers/artifacts/router``.

Example::

    >>> from classifiers.difficulty import DifficultyRouter
    >>> router = DifficultyRouter.load()                       # doctest: +SKIP
    >>> scores = router.score(["Prove that sqrt(2) is irrational.", "Hi!"])  # doctest: +SKIP
    >>> threshold = router.threshold_for_share(scores, 0.3)   # doctest: +SKIP

What a decision log stores instead of the prompt (``learning.store_text: false``)::

    >>> x = router.features(["Prove that sqrt(2) is irrational."])  # doctest: +SKIP
    >>> router.featurizer_id                                        # doctest: +SKIP
    'feat-...'
    >>> router.score_features(x)          # the same p_strong as score()  # doctest: +SKIP

Retraining from such vectors: :func:`classifiers.router_fit.fit_router_from_features`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.featurizer import FeaturizerConfig, PromptFeaturizer
from classifiers.router_heads import GainHead, PlattCalibration

__all__ = [
    "ARTIFACT_FORMAT",
    "DEFAULT_ROUTER_PATH",
    "DifficultyRouter",
    "LengthBlend",
    "RouterArtifactError",
]

DEFAULT_ROUTER_PATH = Path(__file__).resolve().parent / "artifacts" / "router"
"""The shipped default router."""

ARTIFACT_FORMAT = "thinkgate-difficulty-router/1"
_METADATA_FILE = "router.json"
_WEIGHTS_FILE = "weights.safetensors"
_DIGESTS_TENSOR = "training.digests"


class RouterArtifactError(ValueError):
    """A router folder is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class LengthBlend:
    """The learned gain blended with the prompt-length baseline, both standardised.

    ``score = (gain - gain_mean) / gain_scale + weight * (log_length - length_mean) /
    length_scale``, before calibration; ``log_length`` is the featurizer's last column
    (``prompt_length``). Means and scales are the training prompts'. The weight is fixed
    by the recipe, not learned: a learnt length weight follows one source's sign (on MMLU
    longer is harder, on chat requests the reverse), a fixed one keeps the router at least
    as good as prompt length where length works, without leaning on it further.

    Example::

        >>> blend = LengthBlend(1.0, 0.1, 0.05, 7.0, 0.5)
        >>> round(float(blend.combine(np.array([0.15]), np.array([7.5]))[0]), 6)
        2.0
    """

    weight: float
    gain_mean: float
    gain_scale: float
    length_mean: float
    length_scale: float

    def __post_init__(self) -> None:
        if not (self.gain_scale > 0 and self.length_scale > 0):
            raise ValueError(
                f"blend scales must be > 0, got {self.gain_scale}, {self.length_scale}"
            )

    def combine(self, gain: np.ndarray, log_length: np.ndarray) -> np.ndarray:
        """The blended score (a logit for the calibration)."""
        result: np.ndarray = (gain - self.gain_mean) / self.gain_scale + self.weight * (
            np.asarray(log_length, dtype=np.float64) - self.length_mean
        ) / self.length_scale
        return result

    def to_json(self) -> dict[str, float]:
        """JSON-able form (``router.json``'s ``length_blend``)."""
        return asdict(self)


class DifficultyRouter:
    """Scores prompts with p_strong in [0, 1]; thread-safe.

    Args:
        featurizer: feature blocks the head was trained on.
        head: expected quality gain of the strong over the weak model (numpy).
        calibration: maps the expected gain to p_strong, a probability.
        metadata: JSON-able facts about training (data hash, command, validation).
        training_digests: :func:`classifiers.request_text.prompt_digests` of the training
            prompts (``None`` when unknown, e.g. trained from feature vectors only).
        length_blend: with a ``prompt_length`` featurizer, how the head's gain (on the
            other columns) and the last column are combined.
    """

    def __init__(
        self,
        featurizer: FeaturizerConfig,
        head: GainHead,
        calibration: PlattCalibration,
        metadata: dict[str, Any] | None = None,
        training_digests: np.ndarray | None = None,
        length_blend: LengthBlend | None = None,
    ) -> None:
        if featurizer.prompt_length != (length_blend is not None):
            raise ValueError("a prompt_length featurizer and a length blend go together")
        self._featurizer = PromptFeaturizer(featurizer)
        self.length_blend = length_blend
        self.training_digests = (
            None if training_digests is None else np.asarray(training_digests, dtype=np.uint32)
        )
        self.featurizer_config = featurizer
        self.head = head
        self.calibration = calibration
        self._metadata: dict[str, Any] = dict(metadata or {})

    @property
    def metadata(self) -> dict[str, Any]:
        """JSON-able description: format, featurizer, head, calibration, training facts."""
        return {
            **self._metadata,
            "format": ARTIFACT_FORMAT,
            "featurizer": self.featurizer_config.to_json(),
            "featurizer_id": self.featurizer_id,
            "head": {"kind": self.head.kind, "n_features": self.head.n_features},
            "calibration": self.calibration.to_json(),
            **({} if self.length_blend is None else {"length_blend": self.length_blend.to_json()}),
        }

    @property
    def featurizer_id(self) -> str:
        """Id of the feature layout (:attr:`FeaturizerConfig.featurizer_id`)."""
        return self.featurizer_config.featurizer_id

    def training_overlap(self, prompts: Sequence[str]) -> np.ndarray | None:
        """Boolean mask of ``prompts`` that were (by digest) among the training prompts.

        ``None`` when the artifact keeps no digests. A 32-bit digest makes a false match
        about one in 400,000 per prompt for a router trained on 10,000 prompts.
        """
        if self.training_digests is None:
            return None
        from classifiers.request_text import prompt_digests

        result: np.ndarray = np.isin(prompt_digests(prompts), self.training_digests)
        return result

    def features(self, prompts: Sequence[str], *, show_progress_bar: bool = False) -> np.ndarray:
        """The feature matrix of ``prompts`` (what :meth:`score_features` takes)."""
        return self._featurizer.features(prompts, show_progress_bar=show_progress_bar)

    def raw_score(self, features: np.ndarray) -> np.ndarray:
        """The score before calibration: the head's gain, blended with prompt length when
        the router has a :class:`LengthBlend` (last feature column)."""
        x = np.asarray(features)
        if self.length_blend is None:
            return self.head.gain(x)
        return self.length_blend.combine(self.head.gain(x[:, :-1]), x[:, -1])

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """p_strong from precomputed features."""
        return self.calibration.probability(self.raw_score(features))

    def score(self, prompts: Sequence[str], *, show_progress_bar: bool = False) -> np.ndarray:
        """p_strong of each prompt, float64 in [0, 1], shape ``(len(prompts),)``."""
        if isinstance(prompts, str):
            raise TypeError("score() takes a sequence of prompts, not a single str")
        if len(prompts) == 0:
            return np.zeros(0, dtype=np.float64)
        return self.score_features(self.features(prompts, show_progress_bar=show_progress_bar))

    @staticmethod
    def threshold_for_share(scores: np.ndarray, strong_share: float) -> float:
        """Threshold ``t`` such that about ``strong_share`` of ``scores`` are ``>= t``.

        Route to the strong model when ``p_strong >= t``. ``strong_share`` 0 gives a
        threshold above every score, 1 the lowest score.

        Raises:
            ValueError: ``strong_share`` outside [0, 1] or no scores.
        """
        if not (0.0 <= strong_share <= 1.0) or math.isnan(strong_share):
            raise ValueError(f"strong_share must be in [0, 1], got {strong_share}")
        values = np.sort(np.asarray(scores, dtype=np.float64).ravel())
        if values.size == 0:
            raise ValueError("cannot calibrate a threshold on zero scores")
        n_strong = round(strong_share * values.size)
        if n_strong == 0:
            return float(np.nextafter(values[-1], np.inf))
        return float(values[values.size - n_strong])

    def save(self, path: str | Path) -> Path:
        """Write the artifact folder (created if needed); returns it."""
        from safetensors.numpy import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = self.head.to_tensors()
        if self.training_digests is not None:
            tensors[_DIGESTS_TENSOR] = np.ascontiguousarray(self.training_digests)
        save_file(tensors, str(folder / _WEIGHTS_FILE))
        text = json.dumps(self.metadata, indent=2, sort_keys=True)
        (folder / _METADATA_FILE).write_text(text + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path | None = None) -> DifficultyRouter:
        """Read an artifact folder; ``None`` is the shipped default router.

        Raises:
            RouterArtifactError: the folder or one of its files is missing or malformed.
        """
        from safetensors.numpy import load_file

        folder = DEFAULT_ROUTER_PATH if path is None else Path(path)
        meta_path, weights_path = folder / _METADATA_FILE, folder / _WEIGHTS_FILE
        for needed in (meta_path, weights_path):
            if not needed.is_file():
                raise RouterArtifactError(f"{folder}: not a router folder ({needed.name} missing)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != ARTIFACT_FORMAT:
                raise RouterArtifactError(
                    f"{meta_path}: format {meta.get('format')!r}, expected {ARTIFACT_FORMAT!r}"
                )
            featurizer = FeaturizerConfig.from_json(meta["featurizer"])
            calibration = PlattCalibration.from_json(meta["calibration"])
            tensors = load_file(str(weights_path))
            head = GainHead.from_tensors(tensors)
            blend = LengthBlend(**meta["length_blend"]) if "length_blend" in meta else None
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RouterArtifactError):
                raise
            raise RouterArtifactError(f"{folder}: malformed router artifact ({exc})") from exc
        extra = {
            k: v
            for k, v in meta.items()
            if k
            not in {"format", "featurizer", "featurizer_id", "head", "calibration", "length_blend"}
        }
        try:
            return cls(featurizer, head, calibration, extra, tensors.get(_DIGESTS_TENSOR), blend)
        except ValueError as exc:
            raise RouterArtifactError(f"{folder}: inconsistent router artifact ({exc})") from exc
