"""The log-space ridge with cross-validated residual quantiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.budget_model import LogRidgeModel, fit_log_ridge


def _synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)) * np.array([1.0, 10.0, 0.1, 1.0, 1.0])
    log_tokens = 4.5 + 0.4 * x[:, 0] + 0.03 * x[:, 1] + rng.normal(scale=0.2, size=n)
    return x, np.round(np.expm1(log_tokens))


def test_fit_recovers_the_signal_and_calibrates_quantiles() -> None:
    x, tokens = _synthetic(3000)
    fit = fit_log_ridge(x, tokens, quantiles=(0.5, 0.9), alphas=(0.1, 10.0, 1e5))
    assert fit.alpha in (0.1, 10.0)
    assert fit.cv_rmse[fit.alpha] < 0.25 < fit.cv_rmse[1e5]
    assert fit.cv_coverage[0.5] == pytest.approx(0.5, abs=0.02)
    assert fit.cv_coverage[0.9] == pytest.approx(0.9, abs=0.02)
    x_new, tokens_new = _synthetic(3000, seed=1)
    predicted = fit.model.predict_tokens(x_new)
    assert predicted.shape == (3000, 2)
    assert (np.diff(predicted, axis=1) >= 0).all()
    assert np.mean(tokens_new <= predicted[:, 1]) == pytest.approx(0.9, abs=0.03)
    assert np.corrcoef(np.log1p(tokens_new), np.log1p(predicted[:, 0]))[0, 1] > 0.9


def test_constant_feature_and_zero_tokens_are_handled() -> None:
    x, tokens = _synthetic(200)
    x[:, 2] = 7.0
    tokens[:5] = 0
    model = fit_log_ridge(x, tokens, alphas=(1.0,)).model
    predicted = model.predict_tokens(x)
    assert np.isfinite(predicted).all()
    assert (predicted >= 1.0).all()


def test_save_load_round_trip_without_pickle(tmp_path: Path) -> None:
    x, tokens = _synthetic(300)
    model = fit_log_ridge(x, tokens, quantiles=(0.25, 0.5, 0.95)).model
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype == np.float64 for name in arrays.files)
    loaded = LogRidgeModel.load(tmp_path / "m.npz")
    assert loaded.quantiles == (0.25, 0.5, 0.95)
    np.testing.assert_array_equal(loaded.predict_tokens(x), model.predict_tokens(x))


def test_load_refuses_missing_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", mean=np.zeros(2))
    with pytest.raises(ValueError, match="missing arrays"):
        LogRidgeModel.load(tmp_path / "bad.npz")


def test_model_checks_its_shapes() -> None:
    with pytest.raises(ValueError, match="must all have shape"):
        LogRidgeModel(np.zeros(2), np.ones(3), np.zeros(3), 0.0, (0.5,), np.zeros(1))
    with pytest.raises(ValueError, match="one value per quantile"):
        LogRidgeModel(np.zeros(3), np.ones(3), np.zeros(3), 0.0, (0.5, 0.9), np.zeros(1))
    with pytest.raises(ValueError, match="strictly increasing"):
        LogRidgeModel(np.zeros(1), np.ones(1), np.zeros(1), 0.0, (0.9, 0.5), np.zeros(2))
    model = LogRidgeModel(np.zeros(3), np.ones(3), np.zeros(3), 0.0, (0.5,), np.zeros(1))
    with pytest.raises(ValueError, match=r"features must have shape \(n, 3\)"):
        model.predict_tokens(np.zeros((2, 4)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantiles": (0.9, 0.5)}, "quantiles must be increasing"),
        ({"quantiles": (0.5, 1.0)}, "quantiles must be increasing"),
        ({"alphas": ()}, "alphas must be positive"),
        ({"alphas": (0.0,)}, "alphas must be positive"),
        ({"folds": 1}, "folds must be >= 2"),
        ({"folds": 60}, "need at least 120 rows"),
    ],
)
def test_fit_checks_its_arguments(kwargs: dict[str, object], message: str) -> None:
    x, tokens = _synthetic(100)
    with pytest.raises(ValueError, match=message):
        fit_log_ridge(x, tokens, **kwargs)  # type: ignore[arg-type]


def test_fit_refuses_negative_tokens_and_mismatch() -> None:
    x, tokens = _synthetic(100)
    tokens[0] = -1
    with pytest.raises(ValueError, match="non-negative"):
        fit_log_ridge(x, tokens)
    with pytest.raises(ValueError, match="n == len"):
        fit_log_ridge(x[:50], np.ones(100))
