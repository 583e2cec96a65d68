"""The router's classifier heads as plain numpy arrays (no pickle anywhere).

Training uses scikit-learn; what ships is only arrays (saved as safetensors) plus a few
JSON numbers, evaluated here with numpy. A :class:`LinearHead` is standardisation then
dense layers ending in one logit (``logistic`` with one layer, ``mlp`` with more). A
:class:`GainHead` holds two of them — the expected quality of the strong and of the weak
model — and scores a prompt by the expected gain of routing it to the strong model,
``sigmoid(strong logit) - sigmoid(weak logit)`` in ``[-1, 1]``.

:class:`PlattCalibration` maps the raw logit to a probability with ``sigmoid(a z + b)``,
fitted on out-of-fold predictions; being strictly increasing, it never changes the order
of prompts (and therefore APGR), only what the numbers mean.

Example::

    >>> import numpy as np
    >>> head = LinearHead(mean=np.zeros(2), scale=np.ones(2),
    ...                   weights=[np.array([[1.0], [-1.0]])], biases=[np.array([0.0])])
    >>> float(head.logit(np.array([[2.0, 1.0]]))[0])
    1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GainHead", "LinearHead", "PlattCalibration", "sigmoid"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out: np.ndarray = np.empty_like(z, dtype=np.float64)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    exp_z = np.exp(z[~positive])
    out[~positive] = exp_z / (1.0 + exp_z)
    return out


@dataclass(frozen=True)
class LinearHead:
    """Standardisation followed by dense layers (ReLU between them) ending in one logit.

    One layer is logistic regression; more layers are an MLP. ``weights[i]`` has shape
    ``(d_in, d_out)``; the last layer's ``d_out`` is 1.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def __post_init__(self) -> None:
        if not self.weights or len(self.weights) != len(self.biases):
            raise ValueError("a head needs as many bias vectors as weight matrices (>= 1)")
        width = self.mean.shape[0]
        if self.scale.shape != (width,):
            raise ValueError(f"scale has shape {self.scale.shape}, expected ({width},)")
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                raise ValueError(
                    f"layer {i}: weight {w.shape} / bias {b.shape} do not fit input width {width}"
                )
            width = w.shape[1]
        if width != 1:
            raise ValueError(f"the last layer must have one output, got {width}")

    @property
    def n_features(self) -> int:
        """Input width."""
        return int(self.mean.shape[0])

    @property
    def kind(self) -> str:
        """``"logistic"`` for one layer, ``"mlp"`` otherwise."""
        return "logistic" if len(self.weights) == 1 else "mlp"

    def logit(self, features: np.ndarray) -> np.ndarray:
        """Raw score per row of ``features`` ``(n, n_features)``; shape ``(n,)``."""
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(
                f"features must have shape (n, {self.n_features}), got {features.shape}"
            )
        hidden = (features.astype(np.float64) - self.mean) / self.scale
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            hidden = hidden @ w + b
            if i != last:
                hidden = np.maximum(hidden, 0.0)
        result: np.ndarray = hidden[:, 0]
        return result

    def to_tensors(self) -> dict[str, np.ndarray]:
        """Arrays by name, for safetensors."""
        tensors = {"scaler.mean": self.mean, "scaler.scale": self.scale}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            tensors[f"layer{i}.weight"] = w
            tensors[f"layer{i}.bias"] = b
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> LinearHead:
        """Inverse of :meth:`to_tensors`."""
        missing = {"scaler.mean", "scaler.scale", "layer0.weight", "layer0.bias"} - set(tensors)
        if missing:
            raise ValueError(f"router weights lack tensors {sorted(missing)}")
        weights, biases = [], []
        i = 0
        while f"layer{i}.weight" in tensors:
            weights.append(tensors[f"layer{i}.weight"].astype(np.float64))
            biases.append(tensors[f"layer{i}.bias"].astype(np.float64))
            i += 1
        return cls(
            mean=tensors["scaler.mean"].astype(np.float64),
            scale=tensors["scaler.scale"].astype(np.float64),
            weights=weights,
            biases=biases,
        )

    @classmethod
    def from_sklearn(cls, scaler: Any, model: Any) -> LinearHead:
        """From a fitted ``StandardScaler`` and ``LogisticRegression``/``MLPClassifier``."""
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        if hasattr(model, "coefs_"):
            if model.activation != "relu":
                raise ValueError(f"only ReLU MLPs are supported, got {model.activation!r}")
            weights = [np.asarray(w, dtype=np.float64) for w in model.coefs_]
            biases = [np.asarray(b, dtype=np.float64) for b in model.intercepts_]
        else:
            weights = [np.asarray(model.coef_, dtype=np.float64).T]
            biases = [np.asarray(model.intercept_, dtype=np.float64)]
        return cls(
            mean=np.asarray(scaler.mean_, dtype=np.float64),
            scale=scale.astype(np.float64),
            weights=weights,
            biases=biases,
        )


@dataclass(frozen=True)
class PlattCalibration:
    """``p = sigmoid(slope * logit + intercept)``; slope > 0 keeps the order."""

    slope: float = 1.0
    intercept: float = 0.0

    def __post_init__(self) -> None:
        if not self.slope > 0:
            raise ValueError(f"calibration slope must be > 0, got {self.slope}")

    def probability(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``logits``."""
        return sigmoid(self.slope * np.asarray(logits, dtype=np.float64) + self.intercept)

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray) -> PlattCalibration:
        """Fit on (out-of-fold) logits and 0/1 labels by logistic regression."""
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(labels)) < 2:
            return cls()
        model = LogisticRegression(C=1e6, max_iter=1000)
        model.fit(np.asarray(logits, dtype=np.float64).reshape(-1, 1), labels)
        slope = float(model.coef_[0, 0])
        if slope <= 0:
            # The scores carry no usable signal on this data: keep the raw logit.
            return cls()
        return cls(slope=slope, intercept=float(model.intercept_[0]))

    def to_json(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"method": "platt", "slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlattCalibration:
        """Inverse of :meth:`to_json`."""
        if data.get("method") != "platt":
            raise ValueError(f"unknown calibration method {data.get('method')!r}")
        return cls(slope=float(data["slope"]), intercept=float(data["intercept"]))


@dataclass(frozen=True)
class GainHead:
    """Expected quality gain of the strong over the weak model for a prompt."""

    strong: LinearHead
    weak: LinearHead

    def __post_init__(self) -> None:
        if self.strong.n_features != self.weak.n_features:
            raise ValueError(
                f"strong and weak heads differ in input width "
                f"({self.strong.n_features} vs {self.weak.n_features})"
            )

    @property
    def n_features(self) -> int:
        """Input width."""
        return self.strong.n_features

    @property
    def kind(self) -> str:
        """``"gain-<kind of the two heads>"``."""
        return f"gain-{self.strong.kind}"

    def gain(self, features: np.ndarray) -> np.ndarray:
        """``E[strong quality] - E[weak quality]`` per row, in ``[-1, 1]``."""
        result: np.ndarray = sigmoid(self.strong.logit(features)) - sigmoid(
            self.weak.logit(features)
        )
        return result

    def to_tensors(self) -> dict[str, np.ndarray]:
        """Arrays by name (``strong.*`` and ``weak.*``), for safetensors."""
        tensors = {f"strong.{k}": v for k, v in self.strong.to_tensors().items()}
        tensors.update({f"weak.{k}": v for k, v in self.weak.to_tensors().items()})
        return tensors

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> GainHead:
        """Inverse of :meth:`to_tensors`."""
        parts: dict[str, dict[str, np.ndarray]] = {"strong": {}, "weak": {}}
        for name, value in tensors.items():
            prefix, _, rest = name.partition(".")
            if prefix in parts:
                parts[prefix][rest] = value
        return cls(
            strong=LinearHead.from_tensors(parts["strong"]),
            weak=LinearHead.from_tensors(parts["weak"]),
        )
