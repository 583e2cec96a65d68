"""The Kubernetes manifests, the dashboard and the alert rules, checked without a cluster.

Core kinds validate with `kubernetes-validate` (strict: unknown fields fail), the RayService
against the KubeRay CRD's openAPIV3Schema with `jsonschema` (plus a walk that rejects
fields the CRD does not declare, which the API server would silently prune), and every
metric the dashboard and rules name is one the gateway or Ray Serve really exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.observability.k8s_files import (
    K8S_DIR,
    exported_sample_names,
    k8s_module,
    load_docs,
    ray_serve_metric_names,
)

KUBERNETES_VERSION = "1.30"
# The KubeRay CRD lives beside the repository (DESIGN.md: ../shared/k8s-schemas/).
CRD_PATH = Path(__file__).resolve().parents[3] / "shared/k8s-schemas/ray.io_rayservices.yaml"
MANIFESTS = [
    "rayservice.yaml",
    "service.yaml",
    "monitoring.yaml",
    "prometheus-rules.yaml",
    "grafana-dashboard-configmap.yaml",
    "learning-db-secret.yaml",
]
CORE_KINDS = {"ConfigMap", "Secret", "Service"}
REQUIRED_ALERTS = {
    "ThinkgateHighErrorRate",
    "ThinkgateEscalationRateDrift",
    "ThinkgateRouterLatencyP99High",
    "ThinkgateTierUnavailable",
    "ThinkgateForcedCloseShareHigh",
}


def _all_docs() -> list[dict[str, Any]]:
    return [doc for name in MANIFESTS for doc in load_docs(name)]


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _all_docs() if d["kind"] == kind]


def _rayservice() -> dict[str, Any]:
    [rs] = _by_kind("RayService")
    return rs


def _groups(rs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cluster = rs["spec"]["rayClusterConfig"]
    groups = {"head": cluster["headGroupSpec"]}
    groups.update({g["groupName"]: g for g in cluster["workerGroupSpecs"]})
    return groups


# ----- Kubernetes objects ---------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(MANIFESTS)
    for name in kustomization["resources"]:
        assert (K8S_DIR / name).is_file(), name


@pytest.mark.parametrize("kind", sorted(CORE_KINDS))
def test_core_kinds_validate_strictly(kind: str) -> None:
    docs = _by_kind(kind)
    assert docs, f"no {kind} in {MANIFESTS}"
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_ray_pod_templates_validate_as_pods() -> None:
    for name, group in _groups(_rayservice()).items():
        template = group["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"thinkgate-{name}", **template["metadata"]},
            "spec": template["spec"],
        }
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def _crd_schema() -> dict[str, Any]:
    if not CRD_PATH.is_file():
        pytest.skip(f"KubeRay CRD not found at {CRD_PATH}")
    crd = yaml.safe_load(CRD_PATH.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _undeclared_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields the structural schema does not declare (the API server would prune them).
    Embedded core objects (``x-kubernetes-preserve-unknown-fields``) are left to
    `kubernetes-validate`, which `test_ray_pod_templates_validate_as_pods` runs."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                out.append(f"{path}.{key}")
            else:
                out += _undeclared_fields(item, schema["properties"][key], f"{path}.{key}")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            out += _undeclared_fields(item, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += _undeclared_fields(item, schema["items"], f"{path}[{i}]")
    return out


def test_rayservice_validates_against_the_kuberay_crd() -> None:
    rs = _rayservice()
    assert rs["apiVersion"] == "ray.io/v1"
    schema = _crd_schema()
    jsonschema.validate(rs, schema, cls=jsonschema.Draft7Validator)
    top = {k: v for k, v in rs.items() if k not in {"apiVersion", "kind", "metadata"}}
    assert _undeclared_fields(top, schema, "RayService") == []


def test_rayservice_imports_build_app_with_valid_args_and_config() -> None:
    from deployments.app import AppArgs
    from router.config import config_from_mapping

    serve_config = yaml.safe_load(_rayservice()["spec"]["serveConfigV2"])
    [app] = serve_config["applications"]
    assert app["import_path"] == "deployments.app:build_app"
    args = AppArgs.model_validate(app["args"])
    assert serve_config["http_options"]["port"] == 8000

    [configmap] = [d for d in _by_kind("ConfigMap") if d["metadata"]["name"] == "thinkgate-config"]
    config_path = Path(str(args.config))
    mounts = {
        m["mountPath"]: m["name"]
        for group in _groups(_rayservice()).values()
        for m in group["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts[str(config_path.parent)] == "thinkgate-config"
    config = config_from_mapping(
        yaml.safe_load(configmap["data"][config_path.name]), source="thinkgate-config"
    )
    assert config.small.deployment.num_gpus >= 1 and config.strong.deployment.num_gpus >= 1
    assert config.strong.thinking


def test_gpu_groups_request_gpus_and_tolerate_gpu_taints() -> None:
    groups = _groups(_rayservice())
    for name in ("small-gpu", "strong-gpu"):
        spec = groups[name]["template"]["spec"]
        [container] = spec["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert groups[name]["rayStartParams"]["num-gpus"] == "1"
        assert spec["nodeSelector"]
        assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    for name in ("head", "gateway"):
        [container] = groups[name]["template"]["spec"]["containers"]
        assert "nvidia.com/gpu" not in container["resources"].get("limits", {})


def test_every_ray_pod_has_probes_and_a_metrics_port() -> None:
    for name, group in _groups(_rayservice()).items():
        [container] = group["template"]["spec"]["containers"]
        assert container.get("livenessProbe") and container.get("readinessProbe"), name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 8080, name
        assert group["rayStartParams"]["metrics-export-port"] == "8080", name


def _pod_labels() -> list[dict[str, str]]:
    return [g["template"]["metadata"]["labels"] for g in _groups(_rayservice()).values()]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_services_and_monitors_select_what_exists() -> None:
    services = {s["metadata"]["name"]: s for s in _by_kind("Service")}
    # `ray.io/serve` is set by KubeRay on pods whose Serve proxy is ready.
    gateway_selector = dict(services["thinkgate-gateway"]["spec"]["selector"])
    assert gateway_selector.pop("ray.io/serve") == "true"
    assert any(_selects(gateway_selector, labels) for labels in _pod_labels())
    metrics_selector = services["thinkgate-gateway-metrics"]["spec"]["selector"]
    assert sum(_selects(metrics_selector, labels) for labels in _pod_labels()) == 1  # head

    [pod_monitor] = _by_kind("PodMonitor")
    selector = pod_monitor["spec"]["selector"]["matchLabels"]
    assert all(_selects(selector, labels) for labels in _pod_labels())
    assert {e["port"] for e in pod_monitor["spec"]["podMetricsEndpoints"]} == {"metrics"}

    [service_monitor] = _by_kind("ServiceMonitor")
    selector = service_monitor["spec"]["selector"]["matchLabels"]
    matched = [s for s in services.values() if _selects(selector, s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in matched] == ["thinkgate-gateway-metrics"]
    port_names = {p["name"] for p in matched[0]["spec"]["ports"]}
    for endpoint in service_monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"


# ----- dashboard and rules ----------------------------------------------------------------


def test_dashboard_files_are_generated_and_equal() -> None:
    build = k8s_module("build_dashboard")
    assert build.main(["--check"]) == 0, "run: python k8s/build_dashboard.py"
    [configmap] = load_docs("grafana-dashboard-configmap.yaml")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    [embedded] = configmap["data"].values()
    assert json.loads(embedded) == json.loads((K8S_DIR / "grafana-dashboard.json").read_text())


def test_dashboard_has_the_variables_and_sections() -> None:
    queries = k8s_module("dashboard_queries")
    dashboard = queries.load_dashboard()
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "deployment"} <= variables
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert len(rows) == 8
    assert any(title.startswith("Engines (vLLM)") for title in rows)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for title, expr in queries.dashboard_exprs(dashboard):
        if "thinkgate_" in expr:
            assert 'namespace=~"$namespace"' in expr, title


def _all_exprs() -> list[tuple[str, str]]:
    queries = k8s_module("dashboard_queries")
    dashboard, groups = queries.load_dashboard(), queries.load_rule_groups()
    exprs: list[tuple[str, str]] = (
        queries.dashboard_exprs(dashboard)
        + queries.variable_exprs(dashboard)
        + queries.rule_exprs(groups)
    )
    return exprs


def test_every_query_names_only_exported_metrics() -> None:
    queries = k8s_module("dashboard_queries")
    allowed = (
        exported_sample_names()
        | ray_serve_metric_names_with_suffixes()
        | queries.recorded_names(queries.load_rule_groups())
    )
    unknown: list[str] = []
    seen: set[str] = set()
    for title, expr in _all_exprs():
        names = queries.metric_names(queries.expand(expr))
        assert names, f"{title}: no metric in {expr!r}"
        seen |= names
        unknown += [f"{title}: {n}" for n in sorted(names - allowed)]
    assert unknown == []
    # Every gateway metric family appears somewhere (the dashboard tells the whole story).
    families = {n.rsplit("_", 1)[0] if n.endswith(_SUFFIXES) else n for n in seen}
    from router.metrics import GatewayMetrics

    missing = {f.name for f in GatewayMetrics().registry.collect()} - {
        f.removesuffix("_total") for f in families
    }
    assert missing == set()


_SUFFIXES = ("_bucket", "_sum", "_count")


def ray_serve_metric_names_with_suffixes() -> set[str]:
    out: set[str] = set()
    for name in ray_serve_metric_names():
        out |= {name, f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return out


def test_metric_name_extraction() -> None:
    queries = k8s_module("dashboard_queries")
    expr = (
        'histogram_quantile(0.99, sum by (namespace, le) (rate(a_bucket{x="b c", y=~"$n"}[5m])))'
        " > 0.05 and on (namespace) sum without (pod) (b_total offset 1h) / ignoring (tier)"
        " group_left c:rec:rate5m or vector(0)"
    )
    assert queries.metric_names(queries.expand(expr)) == {"a_bucket", "b_total", "c:rec:rate5m"}


def test_rules_define_the_required_alerts() -> None:
    queries = k8s_module("dashboard_queries")
    names = {name for name, _ in queries.rule_exprs(queries.load_rule_groups())}
    assert names >= REQUIRED_ALERTS
    for group in queries.load_rule_groups()["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["severity"] in {"warning", "critical"}
                assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (apt-get install -y prometheus)")
    return path


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = tmp_path / "thinkgate-rules.yml"
    rules.write_text(yaml.safe_dump(k8s_module("dashboard_queries").load_rule_groups()))
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"SUCCESS: \d+ rules found", done.stdout)


def test_plain_prometheus_scrape_config(tmp_path: Path) -> None:
    promtool = _promtool()
    config = yaml.safe_load((K8S_DIR / "prometheus-scrape.yaml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"thinkgate-ray", "thinkgate-gateway"}
    rules = tmp_path / "thinkgate-rules.yml"
    rules.write_text(yaml.safe_dump(k8s_module("dashboard_queries").load_rule_groups()))
    config["rule_files"] = [str(rules)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    if "kubernetes_sd_configs not found" in done.stdout + done.stderr:
        # Debian's build has no Kubernetes discovery: check everything else (relabelings,
        # rules) with a static target in its place.
        for job in config["scrape_configs"]:
            del job["kubernetes_sd_configs"]
            job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
        path.write_text(yaml.safe_dump(config))
        done = subprocess.run(
            [promtool, "check", "config", str(path)], capture_output=True, text=True, check=False
        )
    assert done.returncode == 0, done.stdout + done.stderr
