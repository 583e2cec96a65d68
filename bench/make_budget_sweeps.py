"""Build budget sweep files from the shared reasoning traces (for ``eval-budget --sweep``).

Each trace of ``budget/mip_overthinking`` (QwQ-32B, DeepSeek-R1-Distill-Qwen-32B,
DeepSeek-R1 on GSM8K and MATH) becomes one sweep line: its thinking is cut at a geometric
grid of budgets (16 tokens x 2^(k/8), i.e. ~9% apart) below its natural length, then at
the natural length. A cut counts as correct when the correct answer already appears in the
thinking before it (:func:`classifiers.budget_traces.sweep_correct`); at the natural length
the graded final answer counts. Lengths are in ``--tokenizer`` (default: the embedded
strong tier's, ``embedded:gemma3-270m``), the unit the shipped predictor is trained in.

Files written to ``--out`` (outside the repository; never commit data):

- ``gsm8k_holdout_<model>.jsonl``: the GSM8K problems the shipped predictor holds out
  (hash rule of ``train-budget``, fraction 0.2, seed 0), one file per model;
- ``gsm8k_train_<model>.jsonl``: the other GSM8K problems (trained on: in-sample only);
- ``math_<model>.jsonl``: all 52 MATH problems, a prompt type never trained on.

Usage::

    python bench/make_budget_sweeps.py --out /tmp/thinkgate-budget-sweeps
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    shared = Path(os.environ.get("THINKGATE_DATA_DIR", root.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--traces", default=str(shared / "budget" / "mip_overthinking"), help="traces folder"
    )
    parser.add_argument("--out", default="/tmp/thinkgate-budget-sweeps", help="output folder")
    parser.add_argument("--tokenizer", default=None, help="tokenizer of the lengths")
    parser.add_argument("--holdout-fraction", type=float, default=0.2)
    parser.add_argument("--holdout-seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np

    from classifiers.budget_data import holdout_mask
    from classifiers.budget_sweep import SweepRow, sweep_line
    from classifiers.budget_tokens import TokenCounter
    from classifiers.budget_traces import cut_budgets, load_traces, measure_traces, sweep_correct

    counter = TokenCounter.load(args.tokenizer)
    traces = load_traces(args.traces)
    natural, answer_at = measure_traces(traces, counter)
    held = holdout_mask([t.prompt for t in traces], args.holdout_fraction, args.holdout_seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    for index, trace in enumerate(traces):
        budgets = cut_budgets(int(natural[index]))
        flags = sweep_correct(budgets, int(answer_at[index]), trace.correct)
        row = SweepRow(trace.prompt, int(natural[index]), budgets, flags)
        split = "" if trace.dataset == "math" else ("_holdout" if held[index] else "_train")
        files.setdefault(f"{trace.dataset}{split}_{trace.model}.jsonl", []).append(sweep_line(row))
    print(f"tokenizer {counter.name}")
    print(f"{'file':<32} {'n':>5} {'accuracy':>9} {'mean natural':>13}")
    for name, lines in sorted(files.items()):
        (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        import json

        records = [json.loads(line) for line in lines]
        accuracy = np.mean([r["correct"][-1] for r in records])
        mean_natural = np.mean([r["natural_tokens"] for r in records])
        print(f"{name:<32} {len(lines):>5} {accuracy:>9.3f} {mean_natural:>13.1f}")


if __name__ == "__main__":
    main()
