"""The encoder's partial-depth option (``layers``) and its place in the featurizer."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.encoder import TextEncoder
from classifiers.featurizer import FeaturizerConfig, PromptFeaturizer

PROMPTS = [
    "Which of the following best explains why the sky is blue during the day?",
    "Hi",
    "Solve 2x + 3 = 7 for x.",
]


def test_all_layers_equal_the_full_model() -> None:
    full = TextEncoder(max_seq_length=32, window="tail").encode(PROMPTS)
    six = TextEncoder(max_seq_length=32, window="tail", layers=6).encode(PROMPTS)
    np.testing.assert_allclose(six, full, atol=1e-5)


def test_fewer_layers_give_a_different_normalised_embedding() -> None:
    one = TextEncoder(max_seq_length=16, window="tail", layers=1).encode(PROMPTS)
    full = TextEncoder(max_seq_length=16, window="tail").encode(PROMPTS)
    assert one.shape == full.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(one, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(one, full, atol=1e-3)
    # Batched and single calls agree (padding is masked out of the pooling).
    single = np.stack(
        [TextEncoder(max_seq_length=16, window="tail", layers=1).encode([p])[0] for p in PROMPTS]
    )
    np.testing.assert_allclose(single, one, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layers": 0}, "layers must be None or >= 1, got 0"),
        ({"layers": 1, "static": True}, "static"),
    ],
)
def test_bad_layers_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TextEncoder(**kwargs)  # type: ignore[arg-type]


def test_too_many_layers_names_the_limit() -> None:
    with pytest.raises(ValueError, match="layers must be <= 6"):
        TextEncoder(layers=7).encode(["x"])


def test_featurizer_records_tail_layers() -> None:
    config = FeaturizerConfig(static_tokens=0, tail_tokens=16, tail_layers=1, text_features=False)
    assert FeaturizerConfig.from_json(config.to_json()) == config
    assert FeaturizerConfig.from_json({"tail_tokens": 32}).tail_layers is None
    features = PromptFeaturizer(config).features(PROMPTS)
    expected = TextEncoder(max_seq_length=16, window="tail", layers=1).encode(PROMPTS)
    np.testing.assert_allclose(features, expected, atol=1e-6)
    with pytest.raises(ValueError, match="tail_layers must be None or >= 1, got 0"):
        FeaturizerConfig(tail_layers=0)


def test_featurizer_static_tail_block() -> None:
    config = FeaturizerConfig(
        static_tokens=0, static_tail_tokens=(8, 24), tail_tokens=0, text_features=False
    )
    assert FeaturizerConfig.from_json(config.to_json()) == config
    assert config.to_json()["static_tail_tokens"] == [8, 24]
    featurizer = PromptFeaturizer(config)
    assert featurizer.block_names() == ["static_tail"]
    features = featurizer.features(PROMPTS)
    expected = np.concatenate(
        [
            TextEncoder(max_seq_length=n, window="tail", static=True).encode(PROMPTS)
            for n in (8, 24)
        ],
        axis=1,
    )
    np.testing.assert_allclose(features, expected, atol=1e-6)
    with pytest.raises(ValueError, match="static_tail_tokens must all be >= 4, got 2"):
        FeaturizerConfig(static_tail_tokens=(2,))


def test_cli_featurizer_defaults_match_the_shipped_router() -> None:
    import argparse

    from classifiers.commands.train_router import add_featurizer_flags, featurizer_from_args
    from classifiers.difficulty import DifficultyRouter

    parser = argparse.ArgumentParser()
    add_featurizer_flags(parser)
    default = featurizer_from_args(parser.parse_args([]))
    assert default == DifficultyRouter.load().featurizer_config
    disabled = featurizer_from_args(parser.parse_args(["--static-tail-tokens"]))
    assert disabled.static_tail_tokens == ()
