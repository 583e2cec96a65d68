"""The PromQL of the dashboard and the alert rules, as data: load, expand, name the metrics.

Shared by ``render_dashboard.py`` and the observability tests, so both read the committed
``grafana-dashboard.json`` and ``prometheus-rules.yaml`` the same way.

Example::

    for title, expr in dashboard_exprs(load_dashboard()):
        print(title, metric_names(expand(expr, namespace="default")))
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DASHBOARD_PATH = HERE / "grafana-dashboard.json"
RULES_PATH = HERE / "prometheus-rules.yaml"

_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),)?\s*(\w+)\s*\)\s*$", re.S)


def load_dashboard(path: Path = DASHBOARD_PATH) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def load_rule_groups(path: Path = RULES_PATH) -> dict[str, Any]:
    """The ``spec`` of the PrometheusRule: a plain Prometheus rule file (``groups:``)."""
    doc = yaml.safe_load(path.read_text())
    if doc.get("kind") != "PrometheusRule":
        raise ValueError(f"{path} holds a {doc.get('kind')}, not a PrometheusRule")
    spec: dict[str, Any] = doc["spec"]
    return spec


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every panel target, in dashboard order."""
    out: list[tuple[str, str]] = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def variable_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(variable name, PromQL) for query variables: ``label_values(sel, label)`` becomes
    ``count by (label) (sel)``, which is what Grafana asks Prometheus for."""
    out: list[tuple[str, str]] = []
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = _LABEL_VALUES.match(query)
        if not match or not match.group(1):
            raise ValueError(f"variable {var['name']}: unsupported query {query!r}")
        out.append((var["name"], f"count by ({match.group(2)}) ({match.group(1).strip()})"))
    return out


def rule_exprs(groups: dict[str, Any]) -> list[tuple[str, str]]:
    """(alert or record name, PromQL) for every rule."""
    out: list[tuple[str, str]] = []
    for group in groups["groups"]:
        for rule in group["rules"]:
            out.append((rule.get("alert") or rule["record"], rule["expr"].strip()))
    return out


def recorded_names(groups: dict[str, Any]) -> set[str]:
    return {rule["record"] for g in groups["groups"] for rule in g["rules"] if "record" in rule}


def expand(
    expr: str,
    *,
    namespace: str = ".*",
    deployment: str = ".*",
    rate_interval: str = "1m",
    range_: str = "1h",
    interval: str = "15s",
) -> str:
    """Replace Grafana's variables the way Grafana would before sending the query."""
    values = {
        "$__rate_interval": rate_interval,
        "$__range": range_,
        "$__interval": interval,
        "${namespace}": namespace,
        "$namespace": namespace,
        "${deployment}": deployment,
        "$deployment": deployment,
    }
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (functions, keywords, label names in
    groupings and label matchers excluded)."""
    text = _STRING.sub('""', expr)
    while _BRACES.search(text):
        text = _BRACES.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names
