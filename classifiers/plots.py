"""Quality vs strong-call share plot of a router (matplotlib, Agg backend, PNG).

Example::

    >>> from classifiers.evaluation import evaluate_scores
    >>> from classifiers.plots import plot_router_curve
    >>> report = evaluate_scores(scores, weak, strong)         # doctest: +SKIP
    >>> plot_router_curve(report, "router.png")                # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from classifiers.evaluation import RouterReport

__all__ = ["plot_router_curve"]


def plot_router_curve(report: RouterReport, path: str | Path, title: str | None = None) -> Path:
    """Draw the router curve, the random and oracle routers, and weak/strong lines.

    Returns the written path. Uses the non-interactive Agg backend, so it works on a
    server without a display and never opens a window.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    figure, axes = plt.subplots(figsize=(6, 5))
    try:
        shares = [p[0] * 100 for p in report.curve]
        qualities = [p[1] for p in report.curve]
        axes.plot(
            shares, qualities, marker="x", label=f"router (APGR {report.apgr:.3f})", color="C0"
        )
        if report.oracle_curve:
            axes.plot(
                [p[0] * 100 for p in report.oracle_curve],
                [p[1] for p in report.oracle_curve],
                linestyle=":",
                color="C2",
                label=f"oracle (APGR {report.oracle_apgr:.3f})",
            )
        axes.plot(
            [0, 100],
            [report.weak_accuracy, report.strong_accuracy],
            linestyle="--",
            color="grey",
            label=f"random (APGR {report.random_apgr:.3f})",
        )
        axes.axhline(report.weak_accuracy, color="C3", linewidth=1, label="weak model")
        axes.axhline(report.strong_accuracy, color="C1", linewidth=1, label="strong model")
        axes.set_xlabel("strong-model calls (%)")
        axes.set_ylabel("quality (mean score)")
        axes.set_title(
            title or f"n={report.n}, CPT(50%)={report.cpt50:.1%}, CPT(80%)={report.cpt80:.1%}"
        )
        axes.grid(True, alpha=0.3)
        axes.legend(loc="lower right", fontsize="small")
        figure.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=120)
    finally:
        plt.close(figure)
    return out
