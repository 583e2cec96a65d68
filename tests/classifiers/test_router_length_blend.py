"""A router whose featurizer ends in ``prompt_length`` blends its learned gain with log
prompt length (`classifiers.difficulty.LengthBlend`): fitted, saved, loaded, scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.difficulty import DifficultyRouter, RouterArtifactError
from classifiers.featurizer import FeaturizerConfig, PromptFeaturizer
from classifiers.router_fit import fit_router_from_features

PLAIN = FeaturizerConfig(static_tokens=0, tail_tokens=0, text_features=True)
BLENDED = FeaturizerConfig(static_tokens=0, tail_tokens=0, text_features=True, prompt_length=True)


def _data(n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    log_length = rng.normal(6.0, 1.0, size=n)
    # the strong model wins where x0 is high, and (less) on longer prompts
    strong_better = (x[:, 0] + 0.5 * (log_length - 6.0) + 0.5 * rng.normal(size=n)) > 0
    weak = np.where(strong_better, 0.0, 1.0)
    return x, log_length, weak, np.ones(n)


def test_prompt_length_block_is_the_last_column_and_keeps_old_ids() -> None:
    assert "prompt_length" not in PLAIN.to_json()  # ids of existing routers unchanged
    assert BLENDED.featurizer_id != PLAIN.featurizer_id
    assert FeaturizerConfig.from_json(BLENDED.to_json()) == BLENDED
    featurizer = PromptFeaturizer(BLENDED)
    assert featurizer.block_names()[-1] == "prompt_length"
    block = featurizer.blocks(["abc", "x" * 99], only=["prompt_length"])["prompt_length"]
    assert block[:, 0] == pytest.approx(np.log1p([3, 99]))


def test_blended_router_round_trips_and_weighs_length(tmp_path: Path) -> None:
    x, log_length, weak, strong = _data()
    features = np.column_stack([x, log_length])
    routers = {
        w: fit_router_from_features(
            features, weak, strong, featurizer=BLENDED, c_values=[0.01], length_weight=w
        )
        for w in (0.0, 1.0, 100.0)
    }
    blended = routers[1.0]
    assert blended.length_blend is not None and blended.head.n_features == 3
    loaded = DifficultyRouter.load(blended.save(tmp_path / "r"))
    assert loaded.length_blend == blended.length_blend
    assert loaded.score_features(features) == pytest.approx(blended.score_features(features))
    # weight 0: the gain alone (length ignored); a huge weight: ordered by length
    only_gain = routers[0.0].score_features(np.column_stack([x, np.zeros(len(x))]))
    assert routers[0.0].score_features(features) == pytest.approx(only_gain)
    ranks = np.argsort(np.argsort(routers[100.0].score_features(features)))
    assert np.corrcoef(ranks, np.argsort(np.argsort(log_length)))[0, 1] > 0.99
    # quantiles of the blended out-of-fold scores, for routing.strong_share
    assert len(blended.metadata["score_quantiles"]) == 101


def test_a_blend_without_its_column_is_refused(tmp_path: Path) -> None:
    x, log_length, weak, strong = _data()
    router = fit_router_from_features(
        np.column_stack([x, log_length]), weak, strong, featurizer=BLENDED, c_values=[0.01]
    )
    folder = router.save(tmp_path / "r")
    meta = (
        (folder / "router.json")
        .read_text()
        .replace('"prompt_length": true', '"prompt_length": false')
    )
    (folder / "router.json").write_text(meta)
    with pytest.raises(RouterArtifactError, match="length blend"):
        DifficultyRouter.load(folder)
