"""``thinkgate eval-escalation``: how well each uncertainty scorer spots the small model's
wrong answers.

The configured small model answers every item of a ``{"prompt", "answer"}`` JSONL as the
cascade answers a client (`router.escalation.policy.sampling_as_served`: the client's
sampling flags, the small tier's ``max_tokens_default``, answer log-probabilities); every
scorer scores the whole answer, as served; each answer is judged by
`router.escalation.selfref_data.is_correct`; every available scorer scores it. The JSON report
has ``n``, ``accuracy`` (small model alone), ``scorers`` = ``{name: {"auroc", "curve":
[[escalation_rate, cascade_accuracy_if_strong_is_right], ...]}}``, ``skipped`` (scorers that
could not run, with the reason — e.g. ``selfref`` without a trained adapter) and
``seconds``.

Example::

    $ python bench/make_qa.py --out qa60.jsonl --n 60
    $ thinkgate eval-escalation --dataset qa60.jsonl --json esc.json --plot esc.png
"""

from __future__ import annotations

import argparse

from router.commands._qa_scoring import add_sampling_arguments

SCORERS_HELP = "Scorers to evaluate (default: all; selfref is skipped without its adapter)."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="thinkgate YAML config (default: built-in).")
    parser.add_argument("--dataset", required=True, help="JSONL of {prompt, answer}.")
    parser.add_argument("--json", required=True, dest="json_out", help="Report to write.")
    parser.add_argument("--plot", help="PNG of the escalation curves.")
    parser.add_argument("--limit", type=int, help="Use only the first N items.")
    parser.add_argument("--scorers", nargs="+", metavar="NAME", help=SCORERS_HELP)
    add_sampling_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=8, help="Generation batch size.")
    parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    import time
    from pathlib import Path

    from classifiers.records import RecordsError
    from router._exceptions import ThinkgateError
    from router.commands._qa_scoring import score_qa_file
    from router.escalation.selfref_eval import escalation_report, plot_curves
    from router.escalation.uncertainty import SCORER_NAMES

    started = time.perf_counter()
    names = list(args.scorers or SCORER_NAMES)
    try:
        result = score_qa_file(args, names)
    except (ThinkgateError, RecordsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    correct, scores, skipped = result.correct, result.scores, result.skipped
    report = escalation_report(
        correct,
        scores,
        skipped=skipped,
        extra={
            "model": result.model,
            "dataset": str(args.dataset),
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot_curves(report, args.plot)
    print(f"{report['n']} items, small-model accuracy {report['accuracy']:.3f}")
    for name, result in report["scorers"].items():
        value = "n/a (one class)" if result["auroc"] is None else f"{result['auroc']:.3f}"
        print(f"  {name:<14} AUROC {value}")
    for name, reason in skipped.items():
        print(f"  {name:<14} skipped: {reason}")
    print(f"wrote {out} in {report['seconds']} s")
    return 0
