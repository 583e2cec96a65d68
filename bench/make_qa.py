"""Derive a short QA file (``{"prompt", "answer"}`` JSONL) from GSM8K for the escalation
commands (``eval-escalation``, ``calibrate-escalation``, ``train-selfref``).

Two kinds of items, mixed (``--arithmetic-share``, default one half):

- word problems: the GSM8K question, gold answer = the ``#### n`` number;
- one-step calculations taken from the solutions' calculator annotations
  (``<<48/2=24>>`` -> "What is 48/2?", gold 24): easy enough that a very small model gets
  some right, so both classes (correct / wrong) exist and AUROC is defined.

The file is generated on demand and never committed (the source data lives in
``../shared/data``, see its README).

Example::

    python bench/make_qa.py --out /tmp/qa60.jsonl --n 60
    python bench/make_qa.py --out /tmp/qa_train.jsonl --n 200 --offset 1000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
_CALC = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_FINAL = re.compile(r"####\s*(.+)\s*$")
WORD_PROBLEM = "{question}\nAnswer with the final number only."
CALCULATION = "What is {expression}? Answer with the number only."


def _number(text: str) -> str | None:
    value = text.strip().replace(",", "")
    try:
        number = float(value)
    except ValueError:
        return None
    return str(int(number)) if number == int(number) else value


def qa_items(
    lines: Sequence[str], *, n: int, arithmetic_share: float, seed: int, offset: int = 0
) -> list[dict[str, str]]:
    """``n`` items from GSM8K records ``lines[offset:]``, shuffled with ``seed``."""
    rng = random.Random(seed)
    records = [json.loads(line) for line in lines[offset:] if line.strip()]
    rng.shuffle(records)
    n_calc = round(n * arithmetic_share)
    problems: list[dict[str, str]] = []
    calculations: list[dict[str, str]] = []
    for record in records:
        final = _FINAL.search(record["answer"])
        gold = _number(final.group(1)) if final else None
        if gold is not None and len(problems) < n - n_calc:
            problems.append(
                {"prompt": WORD_PROBLEM.format(question=record["question"]), "answer": gold}
            )
        steps = _CALC.findall(record["answer"])
        if steps and len(calculations) < n_calc:
            expression, result = rng.choice(steps)
            value = _number(result)
            if value is not None and re.fullmatch(r"[\d.+\-*/() ]+", expression):
                calculations.append(
                    {"prompt": CALCULATION.format(expression=expression), "answer": value}
                )
        if len(problems) + len(calculations) >= n:
            break
    items = problems + calculations
    rng.shuffle(items)
    return items


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSONL file to write.")
    parser.add_argument("--n", type=int, default=60, help="Number of items.")
    parser.add_argument("--gsm8k", default=str(DEFAULT_GSM8K), help="GSM8K train.jsonl.")
    parser.add_argument(
        "--arithmetic-share", type=float, default=0.5, help="Share of calculations."
    )
    parser.add_argument("--offset", type=int, default=0, help="Skip the first records (splits).")
    parser.add_argument("--seed", type=int, default=0, help="Shuffle seed.")
    args = parser.parse_args(argv)
    if not 0.0 <= args.arithmetic_share <= 1.0:
        parser.error(f"--arithmetic-share must be in [0, 1], got {args.arithmetic_share}")
    lines = Path(args.gsm8k).read_text(encoding="utf-8").splitlines()
    items = qa_items(
        lines, n=args.n, arithmetic_share=args.arithmetic_share, seed=args.seed, offset=args.offset
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    print(f"wrote {len(items)} items to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
