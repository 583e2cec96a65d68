"""Build the thinkgate Grafana dashboard and its sidecar ConfigMap from one definition.

The JSON (``grafana-dashboard.json``) and the ConfigMap (``grafana-dashboard-configmap.yaml``)
are both written from `build_dashboard()`, so they cannot drift; ``--check`` fails when the
committed files differ from what this script would write (the manifest tests run it).

Every query aggregates with ``sum by (...)``: with several gateway replicas or Ray nodes each
target exports its own series, and the dashboard shows the sum. Template variables:
``namespace`` (attached by the PodMonitor/ServiceMonitor, see ``monitoring.yaml``) and
``deployment`` (the Ray Serve deployment label of ``ray_serve_*`` metrics).

Example::

    python k8s/build_dashboard.py           # rewrite both files
    python k8s/build_dashboard.py --check   # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
JSON_PATH = HERE / "grafana-dashboard.json"
CONFIGMAP_PATH = HERE / "grafana-dashboard-configmap.yaml"
DASHBOARD_UID = "thinkgate-overview"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Selectors used by every query; the test substitutes the variables before evaluating.
NS = 'namespace=~"$namespace"'
RAY = 'namespace=~"$namespace", deployment=~"$deployment"'
RI = "$__rate_interval"
DEPLOYMENT_VALUES = (
    'label_values(ray_serve_deployment_replica_healthy{namespace=~"$namespace"}, deployment)'
)


@dataclass
class Target:
    expr: str
    legend: str = ""
    fmt: str = "time_series"


@dataclass
class Panel:
    title: str
    targets: list[Target]
    kind: str = "timeseries"
    unit: str = "short"
    description: str = ""
    width: int = 8
    height: int = 8
    options: dict[str, Any] = field(default_factory=dict)
    stacked: bool = False


def _q(expr: str, legend: str = "", fmt: str = "time_series") -> Target:
    return Target(expr=expr, legend=legend, fmt=fmt)


def _quantile(q: float, metric: str, by: str, selector: str = NS) -> str:
    by_le = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({by_le}) (rate({metric}_bucket{{{selector}}}[{RI}])))"


def _mean(metric: str, by: str = "", selector: str = NS) -> str:
    grouping = f" by ({by})" if by else ""
    return (
        f"sum{grouping} (rate({metric}_sum{{{selector}}}[{RI}]))"
        f" / sum{grouping} (rate({metric}_count{{{selector}}}[{RI}]))"
    )


def _status_ratio(status: str) -> str:
    req = "thinkgate_requests_total"
    # `or vector(0)`: no series with that status yet means a ratio of 0, not "no data".
    numerator = f'sum(rate({req}{{{NS}, status=~"{status}"}}[{RI}]))'
    return f"({numerator} or vector(0)) / sum(rate({req}{{{NS}}}[{RI}]))"


def traffic_panels() -> list[Panel]:
    req = "thinkgate_requests_total"
    return [
        Panel(
            "Requests/s by route",
            [_q(f"sum by (route) (rate({req}{{{NS}}}[{RI}]))", "{{route}}")],
            unit="reqps",
            stacked=True,
            description="Answered requests; route=none are requests rejected before routing.",
        ),
        Panel(
            "Requests/s by HTTP status",
            [_q(f"sum by (status) (rate({req}{{{NS}}}[{RI}]))", "{{status}}")],
            unit="reqps",
            stacked=True,
        ),
        Panel(
            "Error ratio (4xx and 5xx)",
            [
                _q(_status_ratio("5.."), "5xx"),
                _q(_status_ratio("4.."), "4xx"),
            ],
            unit="percentunit",
            description="Server errors page someone (see alerts); client errors are shown "
            "for context.",
        ),
        Panel(
            "Errors/s by OpenAI error type",
            [
                _q(
                    f"sum by (error_type) (rate(thinkgate_errors_total{{{NS}}}[{RI}]))",
                    "{{error_type}}",
                )
            ],
            unit="reqps",
            stacked=True,
        ),
        Panel(
            "Requests in flight (all gateway replicas)",
            [_q(f"sum(thinkgate_requests_in_flight{{{NS}}})", "in flight")],
        ),
        Panel(
            "Queued and rejected requests",
            [
                _q(f"sum(thinkgate_requests_queued{{{NS}}})", "queued"),
                _q(
                    f"sum by (reason) (rate(thinkgate_requests_rejected_total{{{NS}}}[{RI}]))",
                    "rejected/s {{reason}}",
                ),
            ],
            description="Waiting for a gateway concurrency slot; refused before reaching a "
            "tier (auth 401, rate_limit 429, overload 503).",
        ),
        Panel(
            "Tier up (last call or health check)",
            [_q(f"min by (tier) (thinkgate_tier_up{{{NS}}})", "{{tier}}")],
            description="1 when the tier answered its last call; the minimum over gateway "
            "replicas, so one replica seeing the tier down shows 0.",
        ),
    ]


def routing_panels() -> list[Panel]:
    dec = "thinkgate_routing_decisions_total"
    return [
        Panel(
            "Routing share by tier",
            [
                _q(
                    f"sum by (tier) (rate({dec}{{{NS}}}[{RI}]))"
                    f" / ignoring (tier) group_left sum(rate({dec}{{{NS}}}[{RI}]))",
                    "{{tier}}",
                )
            ],
            unit="percentunit",
            stacked=True,
            description="Share of tier decisions (router, forced, fallback; an escalation "
            "counts one more strong decision).",
        ),
        Panel(
            "Strong share vs target, and the threshold in force",
            [
                _q(
                    f'sum(rate({dec}{{{NS}, tier="strong"}}[{RI}]))'
                    f" / sum(rate({dec}{{{NS}}}[{RI}]))",
                    "strong share",
                ),
                _q(f"max(thinkgate_strong_share_target{{{NS}}})", "target share"),
                _q(
                    f"min(thinkgate_strong_share_realised{{{NS}}})",
                    "realised share, lowest replica",
                ),
                _q(
                    f"max(thinkgate_strong_share_realised{{{NS}}})",
                    "realised share, highest replica",
                ),
                _q(f"max(thinkgate_routing_threshold{{{NS}}})", "live threshold"),
            ],
            unit="percentunit",
            description="The target is shown when routing.strong_share is configured: each "
            "gateway replica's threshold then follows the running quantile of its recent auto "
            "scores (routing.share_window), so its realised share (last share_window router "
            "decisions) stays at the target whatever the mix of prompts.",
        ),
        Panel(
            "Routing decisions/s by tier and reason",
            [_q(f"sum by (tier, reason) (rate({dec}{{{NS}}}[{RI}]))", "{{tier}} / {{reason}}")],
            unit="reqps",
        ),
        Panel(
            "Difficulty score distribution (p_strong)",
            [
                _q(
                    f"sum by (le) (increase(thinkgate_difficulty_score_bucket{{{NS}}}[{RI}]))",
                    "{{le}}",
                    "heatmap",
                )
            ],
            kind="heatmap",
            description="Router difficulty score of auto requests (RouteLLM-style p_strong).",
        ),
        Panel(
            "Difficulty score quantiles",
            [
                _q(_quantile(0.5, "thinkgate_difficulty_score", ""), "p50"),
                _q(_quantile(0.9, "thinkgate_difficulty_score", ""), "p90"),
                _q(_mean("thinkgate_difficulty_score"), "mean"),
            ],
            unit="percentunit",
        ),
        Panel(
            "Escalation rate by scorer",
            [
                _q(
                    f"sum by (scorer) (rate(thinkgate_escalations_total{{{NS}}}[{RI}]))"
                    f" / sum by (scorer) (rate(thinkgate_escalation_checks_total{{{NS}}}[{RI}]))",
                    "{{scorer}}",
                )
            ],
            unit="percentunit",
            description="Escalated small answers / small answers checked (Self-Ref).",
        ),
        Panel(
            "Small-model uncertainty distribution",
            [
                _q(
                    f"sum by (le) (increase(thinkgate_uncertainty_bucket{{{NS}}}[{RI}]))",
                    "{{le}}",
                    "heatmap",
                )
            ],
            kind="heatmap",
        ),
        Panel(
            "Router latency",
            [
                _q(_quantile(0.5, "thinkgate_router_latency_seconds", ""), "p50"),
                _q(_quantile(0.99, "thinkgate_router_latency_seconds", ""), "p99"),
            ],
            unit="s",
        ),
        Panel(
            "Latency added by escalation",
            [
                _q(_quantile(0.5, "thinkgate_escalation_extra_seconds", ""), "p50"),
                _q(_quantile(0.95, "thinkgate_escalation_extra_seconds", ""), "p95"),
            ],
            unit="s",
            description="Time of the discarded small attempt plus scoring.",
        ),
        Panel(
            "Fallbacks/s (tier unavailable)",
            [
                _q(
                    f"sum by (from_tier, to_tier) (rate(thinkgate_fallbacks_total{{{NS}}}[{RI}]))",
                    "{{from_tier}} -> {{to_tier}}",
                ),
                _q(
                    f"sum by (tier) (rate(thinkgate_tier_retries_total{{{NS}}}[{RI}]))",
                    "{{tier}} retried (replica died)",
                ),
            ],
            unit="reqps",
            description="Answers from the other tier, and calls sent again after a replica died.",
        ),
    ]


def tier_panels() -> list[Panel]:
    return [
        Panel(
            "Tier latency p50 / p95",
            [
                _q(_quantile(0.5, "thinkgate_tier_latency_seconds", "tier"), "{{tier}} p50"),
                _q(_quantile(0.95, "thinkgate_tier_latency_seconds", "tier"), "{{tier}} p95"),
            ],
            unit="s",
        ),
        Panel(
            "Time to first token p50 / p95",
            [
                _q(
                    _quantile(0.5, "thinkgate_time_to_first_token_seconds", "tier"),
                    "{{tier}} p50",
                ),
                _q(
                    _quantile(0.95, "thinkgate_time_to_first_token_seconds", "tier"),
                    "{{tier}} p95",
                ),
            ],
            unit="s",
            description="Streamed requests only.",
        ),
        Panel(
            "Tokens/s by tier and kind",
            [
                _q(
                    f"sum by (tier, kind) (rate(thinkgate_tokens_total{{{NS}}}[{RI}]))",
                    "{{tier}} {{kind}}",
                )
            ],
            unit="short",
            description="Aggregate throughput: prompt, completion and reasoning tokens.",
        ),
        Panel(
            "Per-call decode speed (completion tokens/s)",
            [
                _q(_quantile(0.5, "thinkgate_tier_tokens_per_second", "tier"), "{{tier}} p50"),
                _q(_mean("thinkgate_tier_tokens_per_second", "tier"), "{{tier}} mean"),
            ],
            unit="short",
        ),
        Panel(
            "Queue depth (Ray Serve)",
            [
                _q(
                    f"sum by (deployment) (ray_serve_deployment_queued_queries{{{RAY}}})",
                    "{{deployment}} queued",
                ),
                _q(
                    f"sum by (deployment) (ray_serve_replica_processing_queries{{{RAY}}})",
                    "{{deployment}} processing",
                ),
            ],
            description="Queued: waiting in a handle for a replica. Processing: running in "
            "replicas (bounded by max_ongoing_requests).",
        ),
        Panel(
            "Tier calls/s",
            [
                _q(
                    f"sum by (tier) (rate(thinkgate_tier_latency_seconds_count{{{NS}}}[{RI}]))",
                    "{{tier}}",
                )
            ],
            unit="reqps",
        ),
    ]


def engine_panels() -> list[Panel]:
    """vLLM's scheduler state per tier, read from one replica's engine at each scrape."""
    return [
        Panel(
            "KV-cache usage",
            [_q(f"max by (tier) (thinkgate_engine_kv_cache_usage{{{NS}}})", "{{tier}}")],
            unit="percentunit",
            description="Share of the tier engine's KV cache in use (vLLM). Near 1, new "
            "requests wait and long ones are preempted.",
        ),
        Panel(
            "Engine requests running / waiting",
            [
                _q(
                    f"sum by (tier, state) (thinkgate_engine_requests{{{NS}}})",
                    "{{tier}} {{state}}",
                )
            ],
            description="Requests in vLLM's scheduler: running in the batch, waiting for "
            "KV-cache room or a batch slot.",
        ),
        Panel(
            "Prefix-cache hit ratio",
            [
                _q(
                    f"max by (tier) (thinkgate_engine_prefix_cache_hit_ratio{{{NS}}})",
                    "{{tier}}",
                )
            ],
            unit="percentunit",
            description="Prompt tokens served from vLLM's prefix cache since the engine "
            "started: escalations, continuations and thinking probes reuse the prompt's KV.",
        ),
    ]


def budget_panels() -> list[Panel]:
    assigned = "thinkgate_thinking_budget_assigned_tokens"
    used = "thinkgate_thinking_tokens_used"
    return [
        Panel(
            "Thinking budget: assigned vs used (mean)",
            [_q(_mean(assigned), "assigned"), _q(_mean(used), "used")],
            unit="short",
        ),
        Panel(
            "Thinking budget: assigned vs used (p90)",
            [
                _q(_quantile(0.9, assigned, ""), "assigned p90"),
                _q(_quantile(0.9, used, ""), "used p90"),
            ],
            unit="short",
        ),
        Panel(
            "Forced-close share",
            [
                _q(
                    f"sum(rate(thinkgate_budget_forced_closes_total{{{NS}}}[{RI}]))"
                    f" / sum(rate({used}_count{{{NS}}}[{RI}]))",
                    "forced closes / strong answers",
                )
            ],
            unit="percentunit",
            description="Strong answers whose thinking hit the budget and was closed "
            "(budget forcing).",
        ),
        Panel(
            "Reasoning tokens/s",
            [
                _q(
                    f'sum by (tier) (rate(thinkgate_tokens_total{{{NS}, kind="reasoning"}}[{RI}]))',
                    "{{tier}}",
                )
            ],
            unit="short",
        ),
        Panel(
            "Thinking stops/s by reason",
            [
                _q(
                    f"sum by (reason) (rate(thinkgate_thinking_stops_total{{{NS}}}[{RI}]))",
                    "{{reason}}",
                )
            ],
            unit="ops",
            stacked=True,
            description="How strong-tier thinking ended: natural (the model closed it), "
            "budget (cut at the cap) or probe (the answer probes agreed, budget.probe).",
        ),
        Panel(
            "Answer probes/s",
            [_q(f"sum(rate(thinkgate_thinking_probes_total{{{NS}}}[{RI}]))", "probes")],
            unit="ops",
            description="Side continuations asking for the answer so far, one every "
            "budget.probe.interval thinking tokens.",
        ),
        Panel(
            "Probe tokens/s",
            [_q(f"sum(rate(thinkgate_thinking_probe_tokens_total{{{NS}}}[{RI}]))", "probe tokens")],
            unit="short",
            description="Tokens the probes decoded (never sent to clients); the prompt and "
            "thinking they extend come from the prefix cache.",
        ),
        Panel(
            "Thinking tokens saved/s by probes",
            [_q(f"sum(rate(thinkgate_thinking_tokens_saved_total{{{NS}}}[{RI}]))", "saved")],
            unit="short",
            description="Thinking tokens left under the budget (the cap) when the probes "
            "stopped early; compare with probe tokens/s for the net saving.",
        ),
    ]


def savings_panels() -> list[Panel]:
    return [
        Panel(
            "Estimated cost saved (dashboard range)",
            [_q(f"sum(increase(thinkgate_estimated_cost_saved_total{{{NS}}}[$__range]))", "saved")],
            kind="stat",
            unit="currencyUSD",
            width=6,
            description="Configured price per token x tokens not sent to the strong tier.",
        ),
        Panel(
            "Estimated cost saved per hour",
            [
                _q(
                    f"sum(rate(thinkgate_estimated_cost_saved_total{{{NS}}}[{RI}])) * 3600",
                    "per hour",
                )
            ],
            unit="currencyUSD",
            width=6,
        ),
        Panel(
            "Strong calls avoided/s",
            [
                _q(
                    f"sum(rate(thinkgate_strong_calls_avoided_total{{{NS}}}[{RI}]))",
                    "avoided",
                )
            ],
            unit="reqps",
            width=6,
        ),
        Panel(
            "Share of auto requests answered by the small tier",
            [
                _q(
                    f"sum(rate(thinkgate_strong_calls_avoided_total{{{NS}}}[{RI}]))"
                    " / sum(rate(thinkgate_routing_decisions_total"
                    f'{{{NS}, reason="router"}}[{RI}]))',
                    "small share",
                )
            ],
            unit="percentunit",
            width=6,
        ),
    ]


def learning_panels() -> list[Panel]:
    """The learning loop (``router.learning``): labels, shadow cost, live APGR, the log."""
    return [
        Panel(
            "Labelled requests",
            [_q(f"max(thinkgate_learning_labelled_records{{{NS}}})", "labelled")],
            kind="stat",
            width=4,
            description="Requests with a judge or feedback label in the learning database.",
        ),
        Panel(
            "Live APGR (held-out labelled requests)",
            [_q(f"max(thinkgate_learning_live_apgr{{{NS}}})", "APGR")],
            kind="stat",
            unit="percentunit",
            width=4,
            description="APGR of the router in force on the held-out judge-labelled requests "
            "(random routing: about 0.5); empty until enough labels exist.",
        ),
        Panel(
            "Labels written/s by source",
            [
                _q(
                    "sum by (source) "
                    f"(rate(thinkgate_learning_labels_written_total{{{NS}}}[{RI}]))",
                    "{{source}}",
                )
            ],
            unit="ops",
            width=8,
        ),
        Panel(
            "Active versions",
            [
                _q(
                    f"max by (kind, version) (thinkgate_learning_active_version_info{{{NS}}})",
                    "{{kind}} {{version}}",
                )
            ],
            kind="stat",
            width=8,
            description="Router, budget model and tau each gateway serves with (1 = active).",
        ),
        Panel(
            "Shadow and judge calls/s",
            [
                _q(
                    "sum by (tier, outcome) "
                    f"(rate(thinkgate_learning_shadow_calls_total{{{NS}}}[{RI}]))",
                    "shadow {{tier}} {{outcome}}",
                ),
                _q(
                    f"sum by (outcome) (rate(thinkgate_learning_judge_calls_total{{{NS}}}[{RI}]))",
                    "judge {{outcome}}",
                ),
            ],
            unit="ops",
            width=8,
        ),
        Panel(
            "Shadow cost: tokens/s spent on learning",
            [
                _q(
                    f"sum by (purpose, tier) (rate(thinkgate_learning_tokens_total{{{NS}}}[{RI}]))",
                    "{{purpose}} on {{tier}}",
                )
            ],
            unit="short",
            width=8,
            stacked=True,
        ),
        Panel(
            "Decision log: records written, dropped/s, queue",
            [
                _q(
                    f"sum(rate(thinkgate_learning_records_written_total{{{NS}}}[{RI}]))",
                    "written",
                ),
                _q(
                    "sum by (reason) "
                    f"(rate(thinkgate_learning_records_dropped_total{{{NS}}}[{RI}]))",
                    "dropped {{reason}}",
                ),
                _q(f"sum(thinkgate_learning_queue_depth{{{NS}}})", "queued"),
                _q(
                    "sum by (kind, outcome) "
                    f"(rate(thinkgate_learning_reloads_total{{{NS}}}[{RI}]))",
                    "reload {{kind}} {{outcome}}",
                ),
            ],
            unit="short",
            width=8,
        ),
    ]


def ray_panels() -> list[Panel]:
    return [
        Panel(
            "Healthy replicas by deployment",
            [
                _q(
                    f"sum by (deployment) (ray_serve_deployment_replica_healthy{{{RAY}}})",
                    "{{deployment}} healthy",
                ),
                _q(
                    f"sum by (deployment) (ray_serve_autoscaling_target_replicas{{{RAY}}})",
                    "{{deployment}} target",
                ),
            ],
        ),
        Panel(
            "Replica requests/s by deployment",
            [
                _q(
                    "sum by (deployment) (rate(ray_serve_deployment_request_counter_total"
                    f"{{{RAY}}}[{RI}]))",
                    "{{deployment}}",
                )
            ],
            unit="reqps",
        ),
        Panel(
            "Replica processing latency p95",
            [
                _q(
                    _quantile(
                        0.95, "ray_serve_deployment_processing_latency_ms", "deployment", RAY
                    ),
                    "{{deployment}}",
                )
            ],
            unit="ms",
        ),
        Panel(
            "Replica errors/s and restarts",
            [
                _q(
                    "sum by (deployment) (rate(ray_serve_deployment_error_counter_total"
                    f"{{{RAY}}}[{RI}]))",
                    "{{deployment}} errors/s",
                ),
                _q(
                    "sum by (deployment) (increase(ray_serve_deployment_replica_starts_total"
                    f"{{{RAY}}}[{RI}]))",
                    "{{deployment}} starts",
                ),
            ],
        ),
        Panel(
            "Serve HTTP proxy: requests/s by status, ongoing",
            [
                _q(
                    f"sum by (status_code) (rate(ray_serve_num_http_requests_total{{{NS}}}[{RI}]))",
                    "{{status_code}}",
                ),
                _q(f"sum(ray_serve_num_ongoing_http_requests{{{NS}}})", "ongoing"),
            ],
        ),
        Panel(
            "Replica utilization %",
            [
                _q(
                    f"avg by (deployment) (ray_serve_replica_utilization_percent{{{RAY}}})",
                    "{{deployment}}",
                )
            ],
            unit="percent",
        ),
    ]


ROWS: list[tuple[str, Any]] = [
    ("Traffic and errors", traffic_panels),
    ("Routing and escalation", routing_panels),
    ("Tiers: latency, TTFT, throughput, queues", tier_panels),
    ("Engines (vLLM): KV cache, scheduler, prefix cache", engine_panels),
    ("Thinking budgets", budget_panels),
    ("Savings", savings_panels),
    ("Learning from traffic", learning_panels),
    ("Ray Serve replicas and health", ray_panels),
]


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets = []
    for i, target in enumerate(panel.targets):
        item: dict[str, Any] = {
            "datasource": DATASOURCE,
            "expr": target.expr,
            "legendFormat": target.legend,
            "refId": chr(ord("A") + i),
        }
        if target.fmt != "time_series":
            item["format"] = target.fmt
        targets.append(item)
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 20 if panel.stacked else 5,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
            "spanNulls": True,
        }
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": targets,
    }
    if panel.description:
        out["description"] = panel.description
    if panel.kind == "heatmap":
        out["options"] = {
            "calculate": False,
            "yAxis": {"unit": panel.unit},
            "color": {"scheme": "Oranges", "mode": "scheme"},
            "cellGap": 1,
        }
    elif panel.kind == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "graphMode": "none"}
    else:
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}}
    out["options"].update(panel.options)
    return out


def _templating() -> dict[str, Any]:
    return {
        "list": [
            {
                "name": "datasource",
                "label": "Prometheus",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
            },
            {
                "name": "namespace",
                "label": "Namespace",
                "type": "query",
                "datasource": DATASOURCE,
                "query": {
                    "query": "label_values(thinkgate_requests_total, namespace)",
                    "refId": "namespace",
                },
                "definition": "label_values(thinkgate_requests_total, namespace)",
                "includeAll": True,
                "multi": True,
                "allValue": ".*",
                "refresh": 2,
                "current": {},
            },
            {
                "name": "deployment",
                "label": "Ray Serve deployment",
                "type": "query",
                "datasource": DATASOURCE,
                "query": {"query": DEPLOYMENT_VALUES, "refId": "deployment"},
                "definition": DEPLOYMENT_VALUES,
                "includeAll": True,
                "multi": True,
                "allValue": ".*",
                "refresh": 2,
                "current": {},
            },
        ]
    }


def build_dashboard() -> dict[str, Any]:
    """The dashboard JSON model (Grafana 10+/11, schemaVersion 39)."""
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for title, make in ROWS:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid, y = pid + 1, y + 1
        x, row_height = 0, 0
        for panel in make():
            if x + panel.width > 24:
                x, y = 0, y + row_height
                row_height = 0
            panels.append(_panel_json(panel, pid, x, y))
            pid, x = pid + 1, x + panel.width
            row_height = max(row_height, panel.height)
        y += row_height
    return {
        "uid": DASHBOARD_UID,
        "title": "thinkgate — routing, cascade and serving",
        "description": "Adaptive LLM router/cascade on Ray Serve: traffic, routing share, "
        "escalation, per-tier latency, thinking budgets, savings, Ray Serve health.",
        "tags": ["thinkgate", "ray-serve", "llm"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": _templating(),
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def dashboard_text(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def configmap_text(dashboard: dict[str, Any]) -> str:
    """The ConfigMap for the Grafana sidecar (label ``grafana_dashboard: "1"``)."""
    body = dashboard_text(dashboard)
    indented = "".join(f"    {line}\n" if line else "\n" for line in body.splitlines())
    return (
        "# Generated by k8s/build_dashboard.py from the same definition as\n"
        "# grafana-dashboard.json; do not edit by hand.\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: thinkgate-grafana-dashboard\n"
        "  labels:\n"
        "    app.kubernetes.io/name: thinkgate\n"
        "    app.kubernetes.io/component: monitoring\n"
        '    grafana_dashboard: "1"\n'
        "  annotations:\n"
        "    grafana_folder: thinkgate\n"
        "data:\n"
        "  thinkgate-dashboard.json: |\n"
        f"{indented}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Fail if the files are stale.")
    args = parser.parse_args(argv)
    dashboard = build_dashboard()
    wanted = {JSON_PATH: dashboard_text(dashboard), CONFIGMAP_PATH: configmap_text(dashboard)}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"stale: {path} (run python k8s/build_dashboard.py)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
