"""``thinkgate calibrate-escalation``: from a QA file, plus ``--from-log URL``: tau from the
small answers of the decision log (their uncertainty as scored when serving; escalated
requests log the uncertainty of the small answer they replaced) for a target escalation
rate (``--rate``: every scored answer, labelled or not) or a target error rate of the small
answers kept (``--target-error``: the labelled ones).

Example::

    $ thinkgate calibrate-escalation --from-log sqlite:///learning.db --target-error 0.2
    $ thinkgate promote --tau 0.4312
"""

from __future__ import annotations

import argparse

from router.commands.from_log import add_from_log, dispatch

INNER = "router.commands.calibrate_escalation"


def configure(parser: argparse.ArgumentParser) -> None:
    add_from_log(parser, INNER)
    parser.add_argument(
        "--target-error",
        type=float,
        default=None,
        help="--from-log: largest share of wrong answers among the small answers kept",
    )


def run(args: argparse.Namespace) -> int:
    return dispatch(args, "calibrate-escalation", from_log)


def from_log(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from router.escalation.policy import escalation_rate, tau_for_rate
    from router.learning.log_data import small_answer_rows, tau_for_error
    from router.learning.store import LearningStore

    if (args.rate is None) == (args.target_error is None):
        print("calibrate-escalation: give --rate or --target-error", file=sys.stderr)
        return 2
    store = LearningStore(args.from_log)
    rows = small_answer_rows(store, scored=True)
    store.close()
    if args.rate is not None:
        if not rows.scored:
            print("calibrate-escalation: no small answers with an uncertainty", file=sys.stderr)
            return 2
        tau = tau_for_rate(rows.scored, args.rate)
    elif not rows.uncertainties:
        print(
            "calibrate-escalation: no labelled small answers with an uncertainty", file=sys.stderr
        )
        return 2
    else:
        tau = tau_for_error(rows.uncertainties, rows.ok, args.target_error)
    kept = [ok for u, ok in zip(rows.uncertainties, rows.ok, strict=True) if u <= tau]
    details = {
        "tau": tau,
        "scorer": rows.scorer,
        "n": len(rows.scored) if args.rate is not None else len(rows.uncertainties),
        "n_labelled": len(rows.uncertainties),
        "escalation_rate": escalation_rate(
            rows.scored if args.rate is not None else rows.uncertainties, tau
        ),
        "kept_error_rate": (1 - sum(kept) / len(kept)) if kept else None,
        "small_error_rate": (1 - sum(rows.ok) / len(rows.ok)) if rows.ok else None,
        "target_rate": args.rate,
        "target_error": args.target_error,
    }
    print(
        f"tau = {tau:.4f}  (escalates {details['escalation_rate']:.1%} of {details['n']} "
        f"scored small answers; kept answers wrong: {details['kept_error_rate']} of "
        f"{details['n_labelled']} labelled)"
    )
    print(f"escalation:\n  scorer: {rows.scorer}\n  tau: {tau:.4f}")
    target = f" --target-error {args.target_error}" if args.target_error is not None else ""
    print(f"or, on every gateway without a restart: thinkgate promote --tau {tau:.4f}{target}")
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")
    return 0
