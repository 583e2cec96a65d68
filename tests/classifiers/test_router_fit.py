"""Training and adapting a router from a feature matrix (what the decision log stores).

Uses the real bundled encoder (all-MiniLM-L6-v2) on short request windows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from classifiers.difficulty import DifficultyRouter
from classifiers.featurizer import FeaturizerConfig, PromptFeaturizer
from classifiers.request_text import extract_request, prompt_digests
from classifiers.router_fit import balanced_weights, fit_linear_head, fit_router_from_features

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FEATURIZER = FeaturizerConfig(
    static_tokens=0, tail_tokens=0, text_features=False, request_tokens=32, request_length=True
)


def _prompts(kind: str, n: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Prompts where one half (maths for ``quiz``, proofs for ``chat``) needs the strong model."""
    rng = np.random.default_rng(seed)
    prompts, weak, strong = [], [], []
    for i in range(n):
        hard = i % 2 == 0
        a, b = rng.integers(10, 999, size=2)
        if kind == "quiz":
            text = (
                f"Solve {a}x^2 + {b}x = {a + b} for x.\nA. 1\nB. 2\nAnswer:"
                if hard
                else f"What colour is a ripe banana, item {a}?\nA. yellow\nB. blue\nAnswer:"
            )
        else:
            text = (
                f"Prove that the sum of the first {a} odd numbers is a perfect square."
                if hard
                else f"Say hello to my friend number {b}, please."
            )
        prompts.append(text)
        weak.append(float(rng.random() < (0.15 if hard else 0.9)))
        strong.append(float(rng.random() < (0.9 if hard else 0.95)))
    return prompts, np.array(weak), np.array(strong)


def test_fit_linear_head_matches_scikit_learn() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] - x[:, 2] + rng.normal(size=300) > 0).astype(float)
    head = fit_linear_head(x, y, C=0.05)
    model = LogisticRegression(C=0.05).fit(StandardScaler().fit_transform(x), y)
    np.testing.assert_allclose(head.weights[0][:, 0], model.coef_[0], atol=1e-3)
    assert head.biases[0][0] == pytest.approx(model.intercept_[0], abs=1e-3)


def test_prior_keeps_a_head_near_its_base_with_few_labels() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 3))
    base = fit_linear_head(x, (x[:, 0] > 0).astype(float), C=1.0)
    few = rng.normal(size=(10, 3))
    flipped = (few[:, 0] < 0).astype(float)
    near = fit_linear_head(few, flipped, C=0.001, base=base)
    free = fit_linear_head(few, flipped, C=1.0)
    assert near.weights[0][0, 0] > 0.9 * base.weights[0][0, 0]
    assert free.weights[0][0, 0] < 0


def test_balanced_weights_give_each_source_the_same_total() -> None:
    weights = balanced_weights(np.array(["a"] * 90 + ["b"] * 10))
    assert weights[:90].sum() == pytest.approx(weights[90:].sum())
    assert weights.sum() == pytest.approx(100)


def test_extract_request_and_digests() -> None:
    shot = "The following are multiple choice questions (with answers).\n\nQ1?\nA. x\nAnswer: A\n\n"
    assert extract_request(shot + "What is 2 + 3?\nA. 5\nAnswer:") == "What is 2 + 3?\nA. 5"
    same = prompt_digests(["What is 2 + 3?\nA. 5\nAnswer:", shot + "what is 2 +  3?\nA. 5"])
    assert same[0] == same[1]
    assert prompt_digests(["Write a poem."])[0] != same[0]


def test_train_from_features_then_adapt_from_a_base(tmp_path: Path) -> None:
    quiz, quiz_weak, quiz_strong = _prompts("quiz", 120, 0)
    x = PromptFeaturizer(FEATURIZER).features(quiz)
    assert x.shape == (120, 384 + 2)
    router = fit_router_from_features(
        x, quiz_weak, quiz_strong, featurizer=FEATURIZER, prompts=quiz, folds=3
    )
    scores = router.score(quiz)
    hard = np.arange(120) % 2 == 0
    assert scores[hard].mean() > scores[~hard].mean()
    router.save(tmp_path / "base")
    loaded = DifficultyRouter.load(tmp_path / "base")
    np.testing.assert_allclose(loaded.score(quiz), scores, atol=1e-5)
    assert loaded.featurizer_id == FEATURIZER.featurizer_id
    assert loaded.featurizer_id.startswith("feat-")
    overlap = loaded.training_overlap(quiz)
    assert overlap is not None and overlap.all()
    assert len(loaded.metadata["score_quantiles"]) == 101

    chat, chat_weak, chat_strong = _prompts("chat", 80, 1)
    adapted = fit_router_from_features(
        loaded.features(chat),
        chat_weak,
        chat_strong,
        base=tmp_path / "base",
        prompts=chat,
        folds=4,
    )
    assert adapted.featurizer_id == loaded.featurizer_id
    assert adapted.metadata["training"]["method"] == "prior-toward-base"
    chat_scores = adapted.score(chat)
    assert chat_scores[::2].mean() > chat_scores[1::2].mean()
    overlap = adapted.training_overlap(quiz + chat)
    assert overlap is not None and overlap.all()
    unseen = adapted.training_overlap(["An unrelated request about gardening."])
    assert unseen is not None and not unseen.any()

    other = FeaturizerConfig(static_tokens=0, tail_tokens=0, request_tokens=16)
    with pytest.raises(ValueError, match="featurizer"):
        fit_router_from_features(
            loaded.features(chat), chat_weak, chat_strong, featurizer=other, base=loaded
        )
    with pytest.raises(ValueError, match="weak_scores"):
        fit_router_from_features(x, quiz_weak * 2, quiz_strong, featurizer=FEATURIZER)


def _write_outcomes(path: Path, kind: str, n: int, seed: int) -> Path:
    import csv

    prompts, weak, strong = _prompts(kind, n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "small_ok", "strong_ok"])
        writer.writerows(zip(prompts, weak, strong, strict=True))
    return path


def test_cli_adapt_with_base_then_eval_warns_on_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from router.cli import main

    quiz = [str(_write_outcomes(tmp_path / "quiz" / f"q{i}.csv", "quiz", 60, i)) for i in (0, 1)]
    chat = str(_write_outcomes(tmp_path / "chat" / "chat.csv", "chat", 80, 5))
    columns = ["--weak-column", "small_ok", "--strong-column", "strong_ok"]
    base, adapted = tmp_path / "base", tmp_path / "adapted"
    small = ["--request-tokens", "32", "--folds", "3"]
    assert main(["train-router", "--outcomes", *quiz, *columns, "--out", str(base), *small]) == 0
    meta = DifficultyRouter.load(base).metadata
    assert meta["training"]["method"] == "from-scratch"
    assert meta["training"]["sources"] == {"quiz": 120}
    argv = ["train-router", "--outcomes", chat, *columns, "--base", str(base), "--out"]
    assert main([*argv, str(adapted)]) == 0
    router = DifficultyRouter.load(adapted)
    assert router.metadata["training"]["method"] == "prior-toward-base"
    assert router.featurizer_id == DifficultyRouter.load(base).featurizer_id
    capsys.readouterr()
    out = tmp_path / "eval.json"
    argv = ["eval-router", "--router", str(adapted), "--outcomes", chat, *columns, "--json"]
    assert main([*argv, str(out)]) == 0
    assert "80 of 80 evaluated prompts" in capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["training_overlap"] == 80 and 0.0 <= report["apgr"] <= 1.5
    fresh = tmp_path / "fresh.csv"
    rows = [f"Plan a garden with {i} rose bushes,{i % 2},1" for i in range(40)]
    fresh.write_text("prompt,small_ok,strong_ok\n" + "\n".join(rows) + "\n", encoding="utf-8")
    argv = ["eval-router", "--router", str(adapted), "--outcomes", str(fresh), *columns, "--json"]
    assert main([*argv, str(out)]) == 0
    assert "WARNING" not in capsys.readouterr().err
    assert json.loads(out.read_text())["training_overlap"] == 0
    bad = ["train-router", "--outcomes", chat, *columns, "--base", str(tmp_path), "--out"]
    assert main([*bad, str(tmp_path / "x")]) == 2
    assert "--base" in capsys.readouterr().err
