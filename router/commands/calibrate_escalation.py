"""``thinkgate calibrate-escalation``: the threshold τ that escalates a target share of
the small model's answers.

The configured small model answers a ``{"prompt", "answer"}`` JSONL, the scorer (default:
``escalation.scorer`` of the config) scores each answer, and τ is chosen with
`router.escalation.policy.tau_for_rate` so that ``uncertainty > τ`` holds for ``--rate`` of
them. Prints τ and the YAML to paste into the config; ``--json`` also writes the details
(τ, realised rate, accuracy of the small model and of the cascade if the strong model is
right).

Example::

    $ thinkgate calibrate-escalation --dataset qa.jsonl --rate 0.2 --scorer margin
    tau = 0.4312  (escalates 20.0% of 60 answers)
    escalation:
      scorer: margin
      tau: 0.4312
"""

from __future__ import annotations

import argparse

from router.commands._qa_scoring import add_sampling_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="thinkgate YAML config (default: built-in).")
    parser.add_argument("--dataset", required=True, help="JSONL of {prompt, answer}.")
    parser.add_argument(
        "--rate", type=float, required=True, help="Target share of escalated answers, in [0, 1]."
    )
    parser.add_argument("--scorer", help="Uncertainty scorer (default: escalation.scorer).")
    parser.add_argument("--json", dest="json_out", help="Also write the details as JSON.")
    parser.add_argument("--limit", type=int, help="Use only the first N items.")
    add_sampling_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=8, help="Generation batch size.")
    parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from classifiers.records import RecordsError
    from router._exceptions import ThinkgateError
    from router.commands._qa_scoring import score_qa_file
    from router.escalation.policy import escalation_rate, tau_for_rate

    if not 0.0 <= args.rate <= 1.0:
        print(f"error: --rate must be in [0, 1], got {args.rate}", file=sys.stderr)
        return 2
    try:
        result = score_qa_file(args, [args.scorer] if args.scorer else None)
    except (ThinkgateError, RecordsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    [name] = result.names
    correct, scores, skipped = result.correct, result.scores, result.skipped
    if name in skipped:
        print(f"error: scorer {name} could not run: {skipped[name]}", file=sys.stderr)
        return 1
    values = scores[name]
    tau = tau_for_rate(values, args.rate)
    realised = escalation_rate(values, tau)
    kept_right = sum(ok for ok, u in zip(correct, values, strict=True) if u <= tau)
    details = {
        "scorer": name,
        "target_rate": args.rate,
        "tau": tau,
        "escalation_rate": realised,
        "n": len(values),
        "small_accuracy": sum(correct) / len(correct),
        "cascade_accuracy_if_strong_is_right": (kept_right + round(realised * len(values)))
        / len(values),
    }
    print(f"tau = {tau:.4f}  (escalates {realised:.1%} of {len(values)} answers)")
    print(f"escalation:\n  scorer: {name}\n  tau: {tau:.4f}")
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(details, indent=2) + "\n")
    return 0
