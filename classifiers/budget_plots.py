"""Accuracy against mean thinking tokens spent: fixed, predicted budgets, probes (PNG, Agg).

Example::

    >>> from classifiers.budget_plots import plot_budget_sweep
    >>> plot_budget_sweep(report, "budget.png")    # from evaluate_sweep  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_budget_sweep", "plot_budget_sweeps"]

Baselines = Mapping[str, Sequence[Mapping[str, float]]]


def plot_budget_sweep(
    report: Mapping[str, Any],
    path: str | Path,
    title: str | None = None,
    baselines: Baselines | None = None,
) -> Path:
    """Draw both curves of a sweep report, the target and the unlimited point.

    ``baselines`` adds other predicted-budget curves by label (e.g. prompt length).
    Returns the written path; never opens a window.
    """
    return plot_budget_sweeps({title or "": (report, baselines or {})}, path)


def plot_budget_sweeps(
    panels: Mapping[str, tuple[Mapping[str, Any], Baselines]], path: str | Path
) -> Path:
    """One panel per sweep report (title -> (report, baselines)), side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    figure, grid = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    try:
        for axes, (title, (report, baselines)) in zip(grid[0], panels.items(), strict=True):
            _draw(axes, report, title or None, baselines)
        figure.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=100)
    finally:
        plt.close(figure)
    return out


def _draw(axes: Any, report: Mapping[str, Any], title: str | None, baselines: Baselines) -> None:
    for key, label, style in (
        ("fixed", "fixed budget", "C1"),
        ("predicted", "predicted", "C0"),
    ):
        points = report[key]
        spent_at = report[f"{key}_spent_at_target"]
        axes.plot(
            [p["mean_spent"] for p in points],
            [p["accuracy"] for p in points],
            color=style,
            label=f"{label} ({spent_at:.0f} tokens at target)",
        )
    for index, (label, points) in enumerate(baselines.items()):
        axes.plot(
            [p["mean_spent"] for p in points],
            [p["accuracy"] for p in points],
            color=f"C{index + 2}",
            linestyle=":",
            label=label,
        )
    axes.axhline(report["target_accuracy"], color="grey", linestyle="--", linewidth=1)
    axes.plot(
        [report["unlimited_mean_spent"]],
        [report["unlimited_accuracy"]],
        marker="o",
        color="black",
        linestyle="",
        label="no budget",
    )
    for key, label, marker in (
        ("online_cv", "thinking probes, out-of-fold", "P"),
        ("online", "thinking probes, shipped rule", "*"),
    ):
        if key in report:
            online = report[key]["online"] if key == "online_cv" else report[key]
            axes.plot(
                [online["mean_spent"]],
                [online["accuracy"]],
                marker=marker,
                markersize=14 if key == "online_cv" else 9,
                linestyle="",
                color="C3" if key == "online" else "C4",
                label=f"{label} (ratio {online['spent_ratio']:.2f})",
            )
    low = min(0.5, report["target_accuracy"] - 0.2)
    high = 1.0 if "online" not in report else min(1.0, report["target_accuracy"] + 0.35)
    axes.set_ylim(low, high)
    axes.set_xlabel("mean thinking tokens spent")
    axes.set_ylabel("accuracy")
    axes.set_title(
        f"{title + ': ' if title else ''}n={report['n']}, spent ratio {report['spent_ratio']:.3f}",
        fontsize="medium",
    )
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left" if "online" in report else "lower right", fontsize="small")
