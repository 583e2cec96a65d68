"""``thinkgate train-router``: train the difficulty router on outcome files.

Example::

    $ thinkgate train-router --outcomes ../shared/data/routing/mmlu/*.csv \\
          --weak-column mistralai/Mixtral-8x7B-Instruct-v0.1 \\
          --strong-column gpt-4-1106-preview \\
          --exclude ../shared/data/routing/mmlu/contaminated_prompts.jsonl \\
          --out classifiers/artifacts/router
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from classifiers.outcome_flags import add_outcome_flags

if TYPE_CHECKING:
    from classifiers.featurizer import FeaturizerConfig


def add_featurizer_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that choose the feature blocks (see ``classifiers.featurizer``)."""
    parser.add_argument(
        "--encoder", default=None, help="sentence-transformers model folder (default: bundled)"
    )
    parser.add_argument("--static-tokens", type=int, default=512, help="0 disables the block")
    parser.add_argument(
        "--static-tail-tokens",
        type=int,
        nargs="*",
        default=(8, 24),
        metavar="N",
        help="static means over the last N tokens, one per N (default: 8 24; "
        "the flag with no value disables the block)",
    )
    parser.add_argument("--head-tokens", type=int, default=0, help="0 disables the block")
    parser.add_argument(
        "--tail-tokens", type=int, default=0, help="MiniLM tail window; 0 (default) disables it"
    )
    parser.add_argument(
        "--tail-layers",
        type=int,
        default=None,
        help="transformer layers run for the tail block (default: all)",
    )
    parser.add_argument(
        "--no-text-features", action="store_true", help="leave out the cheap text features"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``train-router``."""
    add_outcome_flags(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="router folder to write")
    add_featurizer_flags(parser)
    parser.add_argument(
        "--folds", type=int, default=5, help="group k-fold for model selection (default 5)"
    )
    parser.add_argument(
        "--C",
        dest="c_values",
        type=float,
        nargs="+",
        default=None,
        help="inverse regularisation strengths to try (default: 0.0001 0.0003 0.001)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=0.0,
        help="label: strong - weak > margin (score units) counts as 'strong needed'",
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Train, validate by held-out files, calibrate and save a router."""
    import json
    import shlex
    import sys
    from pathlib import Path

    from classifiers.outcome_flags import outcomes_from_args
    from classifiers.outcomes import OutcomesError, files_digest
    from classifiers.router_training import DEFAULT_CANDIDATES, Candidate, train_router

    try:
        data = outcomes_from_args(args)
    except OutcomesError as exc:
        print(f"train-router: {exc}", file=sys.stderr)
        return 2
    featurizer = featurizer_from_args(args)
    candidates = (
        tuple(Candidate(f"logistic-C{c:g}", c) for c in args.c_values)
        if args.c_values
        else DEFAULT_CANDIDATES
    )
    metadata = {
        "training_data": {
            "files": [Path(f).name for f in args.outcomes],
            "sha256": files_digest(args.outcomes),
            "exclude": Path(args.exclude).name if args.exclude else None,
            "weak_column": args.weak_column,
            "strong_column": args.strong_column,
            "prompt_column": args.prompt_column,
            "n": len(data),
            "score_kind": data.kind,
            "weak_mean": float(data.weak.mean()),
            "strong_mean": float(data.strong.mean()),
        },
        "training_command": shlex.join(["thinkgate", *sys.argv[1:]]),
    }
    print(f"train-router: {len(data)} prompts from {len(args.outcomes)} files", file=sys.stderr)
    router, summary = train_router(
        data,
        featurizer,
        candidates=candidates,
        folds=args.folds,
        margin=args.margin,
        seed=args.seed,
        metadata=metadata,
        progress=lambda line: print(f"  {line}", file=sys.stderr),
        show_progress_bar=True,
    )
    out = router.save(args.out)
    print(json.dumps({"out": str(out), **summary.to_json()}, indent=2))
    return 0


def featurizer_from_args(args: argparse.Namespace) -> FeaturizerConfig:
    """The featurizer chosen by :func:`add_featurizer_flags`' flags."""
    from classifiers.featurizer import FeaturizerConfig

    return FeaturizerConfig(
        encoder_path=args.encoder,
        static_tokens=args.static_tokens,
        static_tail_tokens=tuple(args.static_tail_tokens),
        head_tokens=args.head_tokens,
        tail_tokens=args.tail_tokens,
        tail_layers=args.tail_layers,
        text_features=not args.no_text_features,
    )
