"""The ``thinkgate`` command line.

Every sub-command lives in its own module that exposes ``configure(parser)`` (adds the
flags; must import nothing heavy) and ``run(args) -> int``. The table below names them, so
``thinkgate --help`` imports no torch, ray or transformers.

Example::

    $ thinkgate serve --port 8000
    $ thinkgate eval-router --outcomes data/*.csv --weak-column weak --strong-column strong \
          --json out.json
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Each module provides configure(parser) and run(args).
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("deployments.commands.serve", "run the Ray Serve application (gateway + both tiers)"),
    "train-router": ("router.commands.train_router", "train the difficulty router"),
    "eval-router": ("router.commands.eval_router", "APGR / CPT of a router on outcomes"),
    "calibrate": ("classifiers.commands.calibrate", "threshold for a target strong-call share"),
    "bench-router": ("classifiers.commands.bench_router", "router latency and throughput"),
    "train-budget": ("router.commands.train_budget_log", "train the complexity predictor"),
    "eval-budget": ("classifiers.commands.eval_budget", "evaluate thinking budgets"),
    "train-selfref": ("router.commands.train_selfref", "train Self-REF confidence tokens"),
    "calibrate-escalation": (
        "router.commands.calibrate_escalation_log",
        "escalation threshold for a target escalation rate",
    ),
    "eval-escalation": ("router.commands.eval_escalation", "AUROC of escalation scorers"),
    "promote": ("router.commands.promote", "make a router, budget model or tau active"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thinkgate",
        description="Adaptive LLM router and cascade: learned routing, Self-Ref escalation, "
        "thinking budgets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            command_parser.set_defaults(_module=None)
            continue
        module.configure(command_parser)
        command_parser.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args._module is None:
        parser.error(f"command {args.command!r} is not available in this installation")
    module = importlib.import_module(args._module)
    result: int = module.run(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
