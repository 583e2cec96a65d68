"""``thinkgate train-router``: train the difficulty router on outcome files, or adapt one.

Outcome files in one folder are one *source* (a prompt type, e.g. all MMLU domains); every
source weighs the same in training and in the score quantiles that ``routing.strong_share``
is calibrated against. Each file is a validation group (a single-file source is split at
random into ``--folds`` groups). ``--base DIR`` adapts an existing router to labelled prompts
of a new kind instead (prior on the weights toward the base's; its strength, 0 = keep the
base, chosen by k-fold on the new prompts; the base's featurizer is used).

Example::

    $ thinkgate train-router --outcomes ../shared/data/routing/mmlu/mmlu_*.csv \\
          ../shared/data/routing/alpaca_eval/alpaca_eval_pairwise.csv \\
          --weak-column mistralai/Mixtral-8x7B-Instruct-v0.1 \\
          --strong-column gpt-4-1106-preview \\
          --exclude ../shared/data/routing/mmlu/contaminated_prompts.jsonl \\
          --out classifiers/artifacts/router
    $ thinkgate train-router --outcomes my_traffic.csv --weak-column small_ok \\
          --strong-column strong_ok --base classifiers/artifacts/router --out my-router
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from classifiers.outcome_flags import add_outcome_flags

if TYPE_CHECKING:
    from classifiers.featurizer import FeaturizerConfig
    from classifiers.outcomes import Outcomes


def add_featurizer_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that choose the feature blocks (see ``classifiers.featurizer``).

    The defaults are the shipped router's: the static MiniLM mean of the extracted request.
    """
    parser.add_argument(
        "--encoder", default=None, help="sentence-transformers model folder (default: bundled)"
    )
    parser.add_argument(
        "--request-static-tokens",
        type=int,
        default=256,
        help="static MiniLM mean over the extracted request's first N tokens (default 256; 0: off)",
    )
    parser.add_argument(
        "--request-tokens",
        type=int,
        default=0,
        help="full MiniLM embedding of the extracted request, first N tokens (0, default: "
        "off; about 30x the CPU time of the static block)",
    )
    parser.add_argument(
        "--request-length", action="store_true", help="add the request's log length (chars, words)"
    )
    parser.add_argument(
        "--static-tokens", type=int, default=0, help="static mean of the first N tokens (0: off)"
    )
    parser.add_argument(
        "--static-tail-tokens",
        type=int,
        nargs="*",
        default=(),
        metavar="N",
        help="static means over the last N tokens of the whole prompt, one per N (default: off)",
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
        "--text-features", action="store_true", help="add the cheap whole-prompt text features"
    )
    parser.add_argument(
        "--prompt-length-weight",
        type=float,
        default=1.0,
        metavar="W",
        help="blend the learned gain with log prompt length at this weight, both "
        "standardised (default 1.0, the shipped recipe; 0: the learned gain alone)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``train-router``."""
    add_outcome_flags(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="router folder to write")
    parser.add_argument(
        "--base",
        default=None,
        metavar="DIR",
        help="adapt this router (its featurizer; the featurizer flags are ignored)",
    )
    add_featurizer_flags(parser)
    parser.add_argument(
        "--folds", type=int, default=5, help="k-fold for choosing the strength (default 5)"
    )
    parser.add_argument(
        "--C",
        dest="c_values",
        type=float,
        nargs="+",
        default=None,
        help="inverse regularisation strengths to try (default: 0.0003 0.001 0.003 0.01; "
        "with --base, of the prior: 0 0.001 0.003 0.01 0.03 0.1)",
    )
    parser.add_argument(
        "--max-rows-per-source",
        type=int,
        default=0,
        metavar="N",
        help="keep at most N prompts of each source (random, stratified by file, seed 0; "
        "0: all): embedding costs CPU time",
    )
    parser.add_argument("--seed", type=int, default=0)


def outcome_sources(data: Outcomes) -> list[str]:
    """Source name of each row: the folder of the file it came from."""
    from pathlib import Path

    names = [Path(f).resolve().parent.name for f in data.sources]
    return [names[g] for g in data.groups]


def run(args: argparse.Namespace) -> int:
    """Train (or adapt), validate by held-out groups, calibrate and save a router."""
    import json
    import shlex
    import sys
    from pathlib import Path

    import numpy as np

    from classifiers.difficulty import DifficultyRouter, RouterArtifactError
    from classifiers.featurizer import PromptFeaturizer
    from classifiers.outcome_flags import outcomes_from_args
    from classifiers.outcomes import OutcomesError, files_digest
    from classifiers.router_fit import fit_router_from_features, fold_groups, sample_rows

    try:
        data = outcomes_from_args(args)
    except OutcomesError as exc:
        print(f"train-router: {exc}", file=sys.stderr)
        return 2
    base = None
    if args.base:
        try:
            base = DifficultyRouter.load(args.base)
        except RouterArtifactError as exc:
            print(f"train-router: --base: {exc}", file=sys.stderr)
            return 2
    featurizer = base.featurizer_config if base is not None else featurizer_from_args(args)
    sources = np.array(outcome_sources(data))
    if args.max_rows_per_source:
        keep = sample_rows(data.groups, sources, args.max_rows_per_source, seed=0)
        data, sources = data.subset(keep), sources[keep]
    weak, strong = data.normalized()
    metadata = {
        "training_data": {
            "files": [Path(f).name for f in args.outcomes],
            "sha256": files_digest(args.outcomes),
            "exclude": Path(args.exclude).name if args.exclude else None,
            "weak_column": args.weak_column,
            "strong_column": args.strong_column,
            "prompt_column": args.prompt_column,
            "n": len(data),
            "max_rows_per_source": args.max_rows_per_source or None,
            "score_kind": data.kind,
            "weak_mean": float(weak.mean()),
            "strong_mean": float(strong.mean()),
        },
        "training_command": shlex.join(["thinkgate", *sys.argv[1:]]),
    }
    print(
        f"train-router: {len(data)} prompts from {len(args.outcomes)} files, sources "
        + ", ".join(f"{s} ({int(np.sum(sources == s))})" for s in np.unique(sources)),
        file=sys.stderr,
    )
    if base is not None:
        features = base.features(data.prompts, show_progress_bar=True)
    else:
        features = PromptFeaturizer(featurizer).features(data.prompts, show_progress_bar=True)
    try:
        router = fit_router_from_features(
            features,
            weak,
            strong,
            featurizer=featurizer,
            base=base,
            sources=sources,
            groups=fold_groups(data.groups, sources, args.folds, args.seed),
            prompts=data.prompts,
            c_values=args.c_values,
            folds=args.folds,
            seed=args.seed,
            metadata=metadata,
            progress=lambda line: print(f"  {line}", file=sys.stderr),
            length_weight=args.prompt_length_weight,
        )
    except ValueError as exc:
        print(f"train-router: {exc}", file=sys.stderr)
        return 2
    out = router.save(args.out)
    print(json.dumps({"out": str(out), **router.metadata["training"]}, indent=2))
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
        text_features=args.text_features,
        request_tokens=args.request_tokens,
        request_length=args.request_length,
        request_static_tokens=args.request_static_tokens,
        prompt_length=getattr(args, "prompt_length_weight", 0.0) > 0,
    )
