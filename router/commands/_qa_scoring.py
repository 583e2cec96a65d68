"""Shared by `calibrate-escalation` and `eval-escalation`: run the configured small model
on a QA file and score its answers with uncertainty scorers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class QAScores:
    names: list[str]
    """Scorers that were asked for."""
    correct: list[bool]
    scores: dict[str, list[float]]
    skipped: dict[str, str]
    """Scorers that could not run, with the reason."""
    model: str
    """The small model that answered."""


def score_qa_file(args: argparse.Namespace, scorer_names: Sequence[str] | None) -> QAScores:
    """Answer ``args.dataset`` with the small tier of ``args.config``; ``scorer_names`` None
    means the config's ``escalation.scorer``.

    Raises `ThinkgateError` for a bad config, scorer name or model, `RecordsError` for a
    bad dataset.
    """
    from router.config import load_config
    from router.engines.factory import create_engine
    from router.escalation.selfref_data import read_qa_jsonl
    from router.escalation.selfref_eval import answer_and_score
    from router.escalation.uncertainty import create_uncertainty_scorer

    config = load_config(args.config)
    names = list(scorer_names) if scorer_names else [config.escalation.scorer]
    scorers = [create_uncertainty_scorer(name) for name in names]
    items = read_qa_jsonl(args.dataset, limit=args.limit)
    engine = create_engine(config.small.engine)
    engine.load()
    correct, scores, skipped = answer_and_score(
        engine,
        items,
        scorers,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    return QAScores(names, correct, scores, skipped, engine.model_name)
