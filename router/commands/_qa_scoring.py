"""Shared by `calibrate-escalation`, `eval-escalation` (and the sampling flags by
`train-selfref`): run the configured small model on a QA file as the cascade would (the
sampling flags are the client's settings; omitted, what a client that sends none gets) and
score its whole answers with uncertainty scorers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """The client sampling settings the answers are generated with, as served."""
    parser.add_argument(
        "--temperature", type=float, default=1.0, help="Client temperature (API default 1)."
    )
    parser.add_argument("--top-p", type=float, default=1.0, help="Client top_p (default 1).")
    parser.add_argument(
        "--sample-seed", type=int, default=0, help="Seed of item i's answer: this + i."
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="Client max_tokens (default: the small tier's max_tokens_default, as served).",
    )


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
    from router.escalation.policy import sampling_as_served
    from router.escalation.selfref_data import read_qa_jsonl
    from router.escalation.selfref_eval import answer_and_score
    from router.escalation.uncertainty import create_uncertainty_scorer

    config = load_config(args.config)
    names = list(scorer_names) if scorer_names else [config.escalation.scorer]
    scorers = [create_uncertainty_scorer(name) for name in names]
    params = sampling_as_served(
        config.small,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.sample_seed,
        max_tokens=args.max_tokens,
        needs_logprobs=any(scorer.needs_logprobs for scorer in scorers),
    )
    items = read_qa_jsonl(args.dataset, limit=args.limit)
    engine = create_engine(config.small.engine)
    engine.load()
    correct, scores, skipped = answer_and_score(
        engine,
        items,
        scorers,
        params,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    return QAScores(names, correct, scores, skipped, engine.model_name)
