"""Render the key panels of the Grafana dashboard as a PNG, from a real Prometheus.

Grafana is not needed: the panels' PromQL is read from ``grafana-dashboard.json``, run
through Prometheus's HTTP API (``/api/v1/query_range``; the difficulty histogram through
``/api/v1/query``) and drawn with matplotlib, so the picture shows exactly what the
dashboard queries return.

Example::

    python k8s/render_dashboard.py --prometheus http://127.0.0.1:9090 \\
        --minutes 10 --out dashboard.png
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

KEY_PANELS = (
    "Requests/s by route",
    "Error ratio (4xx and 5xx)",
    "Routing share by tier",
    "Difficulty score distribution (p_strong)",
    "Escalation rate by scorer",
    "Router latency",
    "Tier latency p50 / p95",
    "Time to first token p50 / p95",
    "Tokens/s by tier and kind",
    "Thinking budget: assigned vs used (mean)",
    "Forced-close share",
    "Estimated cost saved per hour",
    "Queue depth (Ray Serve)",
    "Healthy replicas by deployment",
    "Requests in flight (all gateway replicas)",
    "Tier up (last call or health check)",
)
HERE = Path(__file__).resolve().parent
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _queries() -> Any:
    """``dashboard_queries`` beside this file (``k8s/`` is a folder of scripts, not a package)."""
    import importlib.util

    name = "thinkgate_k8s_dashboard_queries"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "dashboard_queries.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {HERE / 'dashboard_queries.py'}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def expand(expr: str, **variables: str) -> str:
    result: str = _queries().expand(expr, **variables)
    return result


@dataclass
class Series:
    label: str
    times: list[float]
    values: list[float]


class PrometheusAPI:
    """The two query endpoints of Prometheus's HTTP API."""

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def _get(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.client.get(path, params=params)
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{params['query']!r}: {body.get('error', response.text)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        return self._get("/api/v1/query", params)

    def query_range(
        self, expr: str, start: float, end: float, step_s: float
    ) -> list[dict[str, Any]]:
        return self._get(
            "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step_s}
        )


def _legend(template: str, metric: dict[str, str]) -> str:
    text = _LEGEND.sub(lambda m: metric.get(m.group(1), ""), template).strip()
    return text or ",".join(f"{k}={v}" for k, v in sorted(metric.items())) or "value"


def panel_series(
    api: PrometheusAPI, panel: dict[str, Any], start: float, end: float, step_s: float, **var: str
) -> list[Series]:
    out: list[Series] = []
    for target in panel["targets"]:
        for item in api.query_range(expand(target["expr"], **var), start, end, step_s):
            points = [(float(t), float(v)) for t, v in item["values"]]
            points = [(t, v) for t, v in points if math.isfinite(v)]
            if points:
                times, values = zip(*points, strict=True)
                label = _legend(target.get("legendFormat", ""), item["metric"])
                out.append(Series(label, list(times), list(values)))
    return out


def histogram_bars(
    api: PrometheusAPI, panel: dict[str, Any], at: float, window: str, **var: str
) -> list[tuple[str, float]]:
    """Per-bucket counts over ``window`` (cumulative ``le`` buckets made disjoint)."""
    [target] = panel["targets"]
    expr = expand(target["expr"], rate_interval=window, **var)
    cumulative = sorted(
        (float(item["metric"]["le"]), float(item["value"][1])) for item in api.query(expr, at)
    )
    bars, previous = [], 0.0
    for le, count in cumulative:
        bars.append(("+Inf" if math.isinf(le) else f"≤{le:g}", max(0.0, count - previous)))
        previous = count
    return bars


def render(
    prometheus_url: str,
    out: Path,
    *,
    start: float,
    end: float,
    step_s: float = 5.0,
    rate_interval: str = "1m",
    namespace: str = ".*",
    title_note: str = "",
) -> Path:
    """Draw the key panels between ``start`` and ``end`` (unix seconds) into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    api = PrometheusAPI(prometheus_url)
    panels = {p["title"]: p for p in _queries().load_dashboard()["panels"] if p["type"] != "row"}
    chosen = [panels[t] for t in KEY_PANELS if t in panels]
    variables = {"namespace": namespace, "rate_interval": rate_interval}
    cols = 4
    rows = math.ceil(len(chosen) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, chosen, strict=False):
        ax.set_title(panel["title"], fontsize=10)
        ax.tick_params(labelsize=7)
        unit = panel["fieldConfig"]["defaults"].get("unit", "")
        if panel["type"] == "heatmap":
            window = f"{max(60, int(end - start))}s"
            bars = histogram_bars(api, panel, end, window, namespace=namespace)
            if bars:
                ax.bar([b[0] for b in bars], [b[1] for b in bars], color="tab:orange")
                ax.set_ylabel("requests", fontsize=8)
                ax.tick_params(axis="x", labelrotation=45)
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        series = panel_series(api, panel, start, end, step_s, **variables)
        if not series:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        for s in series:
            ax.plot([datetime.fromtimestamp(t) for t in s.times], s.values, label=s.label)
        formatter = mdates.DateFormatter("%H:%M:%S")  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(formatter)
        if unit:
            ax.set_ylabel(unit, fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    fig.suptitle(f"thinkgate dashboard — key panels {title_note}".strip(), fontsize=13)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Base URL.")
    parser.add_argument("--out", type=Path, default=Path("thinkgate-dashboard.png"))
    parser.add_argument("--minutes", type=float, default=15.0, help="Time range to draw.")
    parser.add_argument("--step", type=float, default=5.0, help="Query step in seconds.")
    parser.add_argument("--rate-interval", default="1m", help="Value of $__rate_interval.")
    parser.add_argument("--namespace", default=".*", help="Value of $namespace (a regex).")
    args = parser.parse_args(argv)
    end = time.time()
    path = render(
        args.prometheus,
        args.out,
        start=end - args.minutes * 60,
        end=end,
        step_s=args.step,
        rate_interval=args.rate_interval,
        namespace=args.namespace,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
