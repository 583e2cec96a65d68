"""Access to the files under ``k8s/`` for the observability tests.

``k8s/`` is not a package (it holds manifests and two scripts), so its Python helpers are
loaded by path, once.

Example::

    queries = k8s_module("dashboard_queries")
    docs = load_docs("rayservice.yaml")
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

K8S_DIR = Path(__file__).resolve().parents[2] / "k8s"


def k8s_module(name: str) -> ModuleType:
    """Import ``k8s/<name>.py`` (cached in ``sys.modules`` as ``thinkgate_k8s_<name>``)."""
    key = f"thinkgate_k8s_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, K8S_DIR / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load k8s/{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


def load_docs(filename: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of ``k8s/<filename>``."""
    return [d for d in yaml.safe_load_all((K8S_DIR / filename).read_text()) if d]


def exported_sample_names() -> set[str]:
    """Every sample name the gateway's `GatewayMetrics` registry can export."""
    from router.learning.metrics import LearningMetrics
    from router.metrics import GatewayMetrics

    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    names: set[str] = set()
    metrics = GatewayMetrics()
    LearningMetrics(metrics.registry)  # the learning loop registers on the gateway's registry
    for family in metrics.registry.collect():
        for suffix in suffixes[family.type]:
            names.add(family.name + suffix)
    return names


def ray_serve_metric_names() -> set[str]:
    """``ray_serve_*`` family names that the installed Ray Serve defines (its source
    declares them as ``"serve_..."`` literals; Ray's exporter adds the ``ray_`` prefix)."""
    import re

    import ray.serve

    root = Path(ray.serve.__file__).parent
    literal = re.compile(r"[\"'](serve_[a-z0-9_]+)[\"']")
    found: set[str] = set()
    for path in root.rglob("*.py"):
        found.update(literal.findall(path.read_text(errors="replace")))
    # Metrics declared with f-strings per protocol (request_ingress_metrics.py).
    for protocol in ("http", "grpc"):
        found.update(
            {
                f"serve_num_{protocol}_requests",
                f"serve_num_{protocol}_error_requests",
                f"serve_num_deployment_{protocol}_error_requests",
                f"serve_{protocol}_request_latency_ms",
                f"serve_num_ongoing_{protocol}_requests",
            }
        )
    return {f"ray_{name}" for name in found}
