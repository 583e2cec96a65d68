"""The censored log-space ridge (scikit-learn, exported weights, safetensors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.budget_model import BudgetRidge, fit_budget_ridge, group_folds


def _synthetic(n: int, seed: int = 0, noise: str = "normal") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)) * np.array([1.0, 10.0, 0.1, 1.0, 1.0])
    if noise == "normal":
        errors = rng.normal(scale=0.3, size=n)
    else:  # skewed: mostly tight, a few very long
        errors = np.where(rng.random(n) < 0.8, rng.normal(scale=0.05, size=n), 1.5)
    log_tokens = 4.5 + 0.4 * x[:, 0] + 0.03 * x[:, 1] + errors
    return x, np.round(np.expm1(log_tokens))


def test_fit_recovers_the_signal_and_coverage_is_measured_on_held_out_rows() -> None:
    x, tokens = _synthetic(1500)
    fit = fit_budget_ridge(x, tokens, quantiles=(0.5, 0.9), alphas=(0.1, 10.0, 1e5))
    assert fit.alpha in (0.1, 10.0)
    assert fit.sigma == pytest.approx(0.3, abs=0.03)
    assert fit.cv_coverage[0.5] == pytest.approx(0.5, abs=0.04)
    assert fit.cv_coverage[0.9] == pytest.approx(0.9, abs=0.03)
    x_new, tokens_new = _synthetic(3000, seed=1)
    predicted = fit.model.predict_tokens(x_new)
    assert predicted.shape == (3000, 2)
    assert (np.diff(predicted, axis=1) >= 0).all()
    assert np.mean(tokens_new <= predicted[:, 1]) == pytest.approx(0.9, abs=0.03)


def test_coverage_is_not_the_quantile_by_construction() -> None:
    # skewed residuals break the log-normal spread; the held-out check must show it
    x, tokens = _synthetic(1500, noise="skewed")
    fit = fit_budget_ridge(x, tokens, quantiles=(0.5, 0.9), alphas=(1.0,))
    assert abs(fit.cv_coverage[0.5] - 0.5) > 0.1


def test_censored_rows_are_lower_bounds() -> None:
    x, tokens = _synthetic(1500)
    cap = float(np.quantile(tokens, 0.7))
    censored = tokens > cap
    seen = np.minimum(tokens, cap)
    fit = fit_budget_ridge(x, seen, censored, alphas=(1.0,))
    naive = fit_budget_ridge(x, seen, None, alphas=(1.0,), check_coverage=False)
    assert fit.n_censored == int(censored.sum())
    x_new, tokens_new = _synthetic(3000, seed=2)
    truth = np.log1p(tokens_new)
    # ignoring the cut biases the centre low; the censored fit is unbiased
    bias = np.mean(fit.model.predict_center(x_new) - truth)
    naive_bias = np.mean(naive.model.predict_center(x_new) - truth)
    assert abs(bias) < 0.03
    assert naive_bias < -0.08
    assert np.mean(tokens_new <= fit.model.predict_tokens(x_new)[:, 1]) > 0.85


def test_constant_feature_and_zero_tokens_are_handled() -> None:
    x, tokens = _synthetic(200)
    x[:, 2] = 7.0
    tokens[:5] = 0
    model = fit_budget_ridge(x, tokens, alphas=(1.0,)).model
    predicted = model.predict_tokens(x)
    assert np.isfinite(predicted).all()
    assert (predicted >= 1.0).all()


def test_save_load_round_trip_safetensors(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    x, tokens = _synthetic(300)
    model = fit_budget_ridge(x, tokens, quantiles=(0.25, 0.5, 0.95)).model
    model.save(tmp_path / "w.safetensors")
    arrays = load_file(str(tmp_path / "w.safetensors"))
    assert sorted(arrays) == sorted(model.to_tensors())
    loaded = BudgetRidge.load(tmp_path / "w.safetensors")
    assert loaded.quantiles == (0.25, 0.5, 0.95)
    np.testing.assert_array_equal(loaded.predict_tokens(x), model.predict_tokens(x))


def test_exported_weights_equal_scikit_learn() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    x, tokens = _synthetic(300)
    fit = fit_budget_ridge(x, tokens, alphas=(3.0,), check_coverage=False)
    scaler = StandardScaler().fit(x)
    ridge = Ridge(alpha=3.0).fit(scaler.transform(x), np.log1p(tokens))
    np.testing.assert_allclose(
        fit.model.predict_center(x), ridge.predict(scaler.transform(x)), rtol=1e-9
    )


def test_load_refuses_missing_arrays(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"scaler.mean": np.zeros(2)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="missing arrays"):
        BudgetRidge.load(tmp_path / "bad.safetensors")


def test_model_checks_its_shapes() -> None:
    with pytest.raises(ValueError, match="must all have shape"):
        BudgetRidge(np.zeros(2), np.ones(3), np.zeros(3), 0.0, (0.5,), np.zeros(1))
    with pytest.raises(ValueError, match="one value per quantile"):
        BudgetRidge(np.zeros(3), np.ones(3), np.zeros(3), 0.0, (0.5, 0.9), np.zeros(1))
    with pytest.raises(ValueError, match="strictly increasing"):
        BudgetRidge(np.zeros(1), np.ones(1), np.zeros(1), 0.0, (0.9, 0.5), np.zeros(2))
    model = BudgetRidge(np.zeros(3), np.ones(3), np.zeros(3), 0.0, (0.5,), np.zeros(1))
    with pytest.raises(ValueError, match=r"features must have shape \(n, 3\)"):
        model.predict_tokens(np.zeros((2, 4)))


def test_group_folds_keep_a_group_together() -> None:
    groups = [f"prompt{i % 7}" for i in range(70)]
    folds = group_folds(groups, 5)
    for name in set(groups):
        assert len({folds[i] for i, g in enumerate(groups) if g == name}) == 1
    assert group_folds(groups[::-1], 5).tolist() == folds[::-1].tolist()


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
        fit_budget_ridge(x, tokens, **kwargs)  # type: ignore[arg-type]


def test_fit_refuses_bad_lengths_and_mismatch() -> None:
    x, tokens = _synthetic(100)
    with pytest.raises(ValueError, match="every row is censored"):
        fit_budget_ridge(x, tokens, np.ones(100, dtype=bool))
    tokens[0] = -1
    with pytest.raises(ValueError, match="non-negative"):
        fit_budget_ridge(x, tokens)
    with pytest.raises(ValueError, match="n == len"):
        fit_budget_ridge(x[:50], np.ones(100))
