"""Evaluating escalation scorers: AUROC for spotting wrong answers, and the cascade curve.

For each scorer, on answers of the small model judged by
`router.escalation.selfref_data.is_correct`:

- ``auroc``: the probability that a wrong answer gets a higher uncertainty than a right
  one (ties count one half; the Mann-Whitney form of the ROC area). ``None`` when the set
  has only right or only wrong answers.
- ``curve``: ``[[escalation_rate, cascade_accuracy], ...]`` from 0 to 1: escalating every
  answer with uncertainty >= a threshold, for each distinct threshold (highest first), and
  counting escalated answers as right (the strong model is assumed right). Equal scores
  are escalated together, so ties never flatter a scorer.

Example::

    report = escalation_report(correct, {"margin": [0.1, 0.9, ...]})
    report["scorers"]["margin"]["auroc"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from router._exceptions import ThinkgateError
from router.engines.base import ChatMessage, Completion, Engine
from router.escalation.selfref_data import QAItem, answer_items, is_correct
from router.escalation.uncertainty import NextTokenProbe, UncertaintyScorer, engine_probe
from router.sampling import SamplingParams

Curve = list[list[float]]


async def score_answers(
    scorers: Sequence[UncertaintyScorer],
    conversations: Sequence[Sequence[ChatMessage]],
    completions: Sequence[Completion],
    probe: NextTokenProbe,
    *,
    progress: bool = True,
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Every scorer's uncertainty for every answer, and the scorers that could not run
    (name -> reason, e.g. ``selfref`` on a model without confidence tokens)."""
    from tqdm.auto import tqdm

    if len(conversations) != len(completions):
        raise ValueError(f"{len(conversations)} conversations but {len(completions)} answers")
    scores: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    for scorer in scorers:
        values: list[float] = []
        bar = tqdm(
            total=len(completions), desc=f"scoring {scorer.name}", unit="item", disable=not progress
        )
        try:
            for messages, completion in zip(conversations, completions, strict=True):
                values.append(float(await scorer.uncertainty(messages, completion, probe)))
                bar.update(1)
        except (ValueError, ThinkgateError) as exc:
            skipped[scorer.name] = str(exc)
            continue
        finally:
            bar.close()
        scores[scorer.name] = values
    return scores, skipped


def auroc(uncertainties: Sequence[float], correct: Sequence[bool]) -> float | None:
    """ROC area of ``uncertainties`` for detecting wrong answers; None with one class."""
    from sklearn.metrics import roc_auc_score

    if len(uncertainties) != len(correct):
        raise ValueError(f"{len(uncertainties)} scores but {len(correct)} labels")
    wrong = [not ok for ok in correct]
    if all(wrong) or not any(wrong):
        return None
    return float(roc_auc_score(wrong, list(uncertainties)))


def escalation_curve(uncertainties: Sequence[float], correct: Sequence[bool]) -> Curve:
    """Cascade accuracy (strong model assumed right) at each escalation rate."""
    n = len(correct)
    if n == 0:
        return []
    if len(uncertainties) != n:
        raise ValueError(f"{len(uncertainties)} scores but {n} labels")
    order = sorted(range(n), key=lambda i: uncertainties[i], reverse=True)
    right_kept = sum(correct)
    points: Curve = [[0.0, right_kept / n]]
    escalated = 0
    k = 0
    while k < n:
        value = uncertainties[order[k]]
        while k < n and uncertainties[order[k]] == value:
            right_kept -= int(correct[order[k]])
            escalated += 1
            k += 1
        points.append([escalated / n, (right_kept + escalated) / n])
    return points


def escalation_report(
    correct: Sequence[bool],
    uncertainties: Mapping[str, Sequence[float]],
    *,
    skipped: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``eval-escalation`` JSON: ``n``, ``accuracy``, ``scorers``, ``skipped`` (+ extra)."""
    n = len(correct)
    report: dict[str, Any] = {
        "n": n,
        "accuracy": sum(correct) / n if n else 0.0,
        "scorers": {
            name: {
                "auroc": auroc(values, correct),
                "curve": escalation_curve(values, correct),
            }
            for name, values in uncertainties.items()
        },
        "skipped": dict(skipped or {}),
    }
    report.update(extra or {})
    return report


def plot_curves(report: Mapping[str, Any], path: str | Path) -> Path:
    """Draw every scorer's curve with the random-escalation diagonal; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4.5))
    base = float(report["accuracy"])
    axes.plot([0, 1], [base, 1.0], linestyle="--", color="grey", label="random")
    for name, result in report["scorers"].items():
        xs = [p[0] for p in result["curve"]]
        ys = [p[1] for p in result["curve"]]
        score = result["auroc"]
        label = f"{name} (AUROC {score:.3f})" if score is not None else f"{name} (AUROC n/a)"
        axes.plot(xs, ys, label=label)
    axes.set_xlabel("escalation rate (share of answers sent to the strong model)")
    axes.set_ylabel("cascade accuracy (strong model right)")
    axes.set_title(f"escalation on {report['n']} items, small-model accuracy {base:.2f}")
    axes.legend(loc="lower right", fontsize="small")
    axes.grid(alpha=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def answer_and_score(
    engine: Engine,
    items: Sequence[QAItem],
    scorers: Sequence[UncertaintyScorer],
    params: SamplingParams,
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> tuple[list[bool], dict[str, list[float]], dict[str, str]]:
    """Answer every item with the (loaded) engine, judge the answers, run the scorers:
    correctness, uncertainties by scorer, skipped scorers with their reasons."""
    import asyncio

    completions = answer_items(engine, items, params, batch_size=batch_size, progress=progress)
    correct = [is_correct(c.text, i.answer) for c, i in zip(completions, items, strict=True)]
    conversations = [item.messages for item in items]
    scores, skipped = asyncio.run(
        score_answers(scorers, conversations, completions, engine_probe(engine), progress=progress)
    )
    return correct, scores, skipped
