"""``thinkgate train-selfref``: teach the small model Self-REF confidence tokens.

The chosen tier's model (``--engine small``, as configured) answers the training JSONL
(``{"prompt", "answer"}``); each answer is judged (`router.escalation.selfref_data.is_correct`),
followed by ``<CN>`` (right) or ``<UN>`` (wrong), the classes are rebalanced, and a LoRA
adapter is fine-tuned to predict the token (`router.escalation.selfref`). The output folder
holds the adapter, the tokenizer with the two new tokens, and ``selfref.json``. Use it as
``small.engine.adapter_path`` and pick ``escalation.scorer: selfref``.

Example::

    $ python bench/make_qa.py --out train.jsonl --n 200 --offset 1000
    $ thinkgate train-selfref --engine small --data train.jsonl --out selfref-adapter \
          --epochs 2 --lora-r 8
"""

from __future__ import annotations

import argparse

from router.commands._qa_scoring import add_sampling_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine", choices=("small", "strong"), default="small", help="Which tier to train."
    )
    parser.add_argument("--data", required=True, help="Training JSONL of {prompt, answer}.")
    parser.add_argument("--out", required=True, help="Folder for the adapter + tokenizer.")
    parser.add_argument("--config", help="thinkgate YAML config (default: built-in).")
    parser.add_argument("--limit", type=int, help="Use only the first N items.")
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument("--epochs", type=float, default=2.0, help="Passes over the data.")
    steps.add_argument("--max-steps", type=int, help="Optimizer steps (instead of epochs).")
    parser.add_argument("--batch-size", type=int, default=4, help="Training batch size.")
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="AdamW step size.")
    parser.add_argument("--lora-r", type=int, default=8, help="LoRA rank.")
    parser.add_argument("--lora-alpha", type=int, default=16, help="LoRA scaling alpha.")
    parser.add_argument("--lora-dropout", type=float, default=0.0, help="LoRA dropout.")
    parser.add_argument("--max-length", type=int, default=512, help="Tokens kept per example.")
    add_sampling_arguments(parser)
    parser.add_argument("--gen-batch-size", type=int, default=8, help="Generation batch size.")
    parser.add_argument("--seed", type=int, default=0, help="Seed for rebalancing/training.")
    parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")


def run(args: argparse.Namespace) -> int:
    import sys

    from classifiers.records import RecordsError
    from router._exceptions import ThinkgateError
    from router.config import load_config
    from router.escalation.policy import sampling_as_served
    from router.escalation.selfref import SelfRefOptions
    from router.escalation.selfref_pipeline import train_selfref_from_config

    try:
        config = load_config(args.config)
        options = SelfRefOptions(
            epochs=args.epochs,
            max_steps=args.max_steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            lora_r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            max_length=args.max_length,
            seed=args.seed,
            progress=not args.no_progress,
        )
        tier = config.small if args.engine == "small" else config.strong
        stats = train_selfref_from_config(
            tier.engine,
            args.data,
            args.out,
            options,
            params=sampling_as_served(
                tier,
                temperature=args.temperature,
                top_p=args.top_p,
                seed=args.sample_seed,
                max_tokens=args.max_tokens,
                needs_logprobs=False,
            ),
            limit=args.limit,
            batch_size=args.gen_batch_size,
        )
    except (ThinkgateError, RecordsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{stats.examples} answers: {stats.correct} right, {stats.incorrect} wrong; "
        f"trained {stats.steps} steps on {stats.balanced_examples} balanced examples, "
        f"loss {stats.first_loss:.4f} -> {stats.last_loss:.4f}"
    )
    print(f"wrote {args.out}; set small.engine.adapter_path to it and escalation.scorer: selfref")
    return 0
