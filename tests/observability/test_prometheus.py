"""A real Prometheus scrapes a real thinkgate; every dashboard and alert query is evaluated.

Two topologies, one module-scoped fixture each:

- ``in_process``: the gateway in-process with tiny models (``tests.servers.running_gateway``);
  Prometheus scrapes its ``/metrics``.
- ``ray_serve``: the real Serve application (``deployments.app.build_from_config``) on local
  Ray started with a metrics export port, scraped as in the cluster (``k8s/monitoring.yaml``):
  the gateway's ``/metrics`` through the Serve proxy, and Ray's port for ``ray_serve_*``.

The config makes every code path that feeds a metric run: escalation fires (tau = 0), the
strong tier thinks under a budget it cannot meet (forced closes), both tiers stream (time to
first token), and one request per round is invalid (errors). Targets carry the label
``namespace`` that the PodMonitor/ServiceMonitor attach in a cluster. Prometheus also loads
the alert and recording rules. Then each PromQL expression of ``k8s/`` goes through
``/api/v1/query``: it must parse, and each dashboard query must return data when its metrics
can exist in the topology (``thinkgate_*`` always, ``ray_serve_*`` under Ray), except the
small allow-list below, each with its reason.

Needs the ``prometheus`` binary (Debian: ``apt-get install -y prometheus``); skipped without.
Set ``THINKGATE_DASHBOARD_PNG_DIR=dir`` to keep the rendered key panels
(``dir/dashboard-<topology>.png``).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.configs import tiny_config
from tests.observability.k8s_files import k8s_module
from tests.servers import free_port, running_gateway

pytestmark = pytest.mark.prometheus

NAMESPACE = "thinkgate-test"
RATE_INTERVAL = "1m"
LONG_PROMPT = " ".join(["explain the proof step by step"] * 20)
# Metrics whose dashboard queries may stay empty here, with the reason.
NEEDS_EVENTS_WE_CANNOT_PRODUCE = {
    **{
        name: "set by vllm tiers only; this test serves tiny transformers models "
        "(tests/serve/test_vllm_serve.py reads them from a vLLM gateway's /metrics)"
        for name in (
            "thinkgate_engine_kv_cache_usage",
            "thinkgate_engine_requests",
            "thinkgate_engine_prefix_cache_hit_ratio",
        )
    },
    "thinkgate_fallbacks_total": "needs a tier to fail mid-request; the cascade fault "
    "tests cover fallbacks",
    "thinkgate_strong_share_target": "set only when routing.strong_share is configured; "
    "the test config routes by a fixed threshold",
    "ray_serve_deployment_error_counter_total": "counts exceptions raised in replicas; "
    "thinkgate returns errors as values, so healthy traffic raises none",
}
TOPOLOGIES = ["in_process", pytest.param("ray_serve", marks=pytest.mark.serve)]


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    started: float

    def query(self, expr: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=30)
        body: dict[str, Any] = response.json()
        return body


def _prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip("prometheus binary not installed (apt-get install -y prometheus)")
    return path


@contextlib.contextmanager
def running_prometheus(targets: dict[str, str], rules: Path, workdir: Path) -> Iterator[Prometheus]:
    """Prometheus on a free loopback port scraping every ``job: host:port``.

    Short intervals keep the test quick; the timeouts are generous because a failed scrape
    marks every series of the target stale at once (Ray's port answers in ~1 s on a
    loaded 2-CPU runner)."""
    binary = _prometheus_binary()
    port = free_port()
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                **(
                    {"scrape_interval": "5s", "scrape_timeout": "5s"}
                    if job == "thinkgate-ray"
                    else {}
                ),
                "static_configs": [
                    {"targets": [target], "labels": {"namespace": NAMESPACE, "pod": f"{job}-0"}}
                ],
            }
            for job, target in targets.items()
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"prometheus did not start: {(workdir / 'prometheus.log').read_text()}"
                )
            time.sleep(0.2)
        yield Prometheus(url, process, time.time())
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def send_round(client: OpenAI) -> int:
    """One round of traffic touching every metric family; returns requests sent."""
    msg: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is 2+2?"}]
    long_msg: list[ChatCompletionMessageParam] = [{"role": "user", "content": LONG_PROMPT}]
    # Strong, thinking under a budget it cannot meet -> budget assigned/used, forced close.
    client.chat.completions.create(
        model="strong", messages=msg, max_tokens=24, extra_body={"max_thinking_tokens": 4}
    )
    # Auto, short -> small, then escalated (tau = 0): difficulty, router latency, escalation.
    client.chat.completions.create(model="auto", messages=msg, max_tokens=8)
    # Auto, short, no escalation -> small answer stands: strong call avoided, cost saved.
    client.chat.completions.create(
        model="auto", messages=msg, max_tokens=8, extra_body={"routing": {"escalate": False}}
    )
    # Auto, long -> strong by the router.
    client.chat.completions.create(model="auto", messages=long_msg, max_tokens=16)
    # Streaming on both tiers -> time to first token.
    for model in ("small", "strong"):
        for _ in client.chat.completions.create(
            model=model, messages=msg, max_tokens=8, stream=True
        ):
            pass
    # Invalid -> 400 and an error by type.
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="small", messages=msg, top_p=1.5)
    return 7


def fast_rule_groups() -> dict[str, Any]:
    """The PrometheusRule's groups, evaluated every second (the real interval is 1m)."""
    groups: dict[str, Any] = k8s_module("dashboard_queries").load_rule_groups()
    for group in groups["groups"]:
        group["interval"] = "1s"
    return groups


@dataclass
class Scraped:
    topology: str
    prometheus: Prometheus
    workdir: Path
    sent: int


@contextlib.contextmanager
def _gateway_targets(
    topology: str, small: Path, strong: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """Start thinkgate in ``topology``; yields its base URL and the scrape targets."""
    sections: dict[str, Any] = {
        "routing": {"scorer": "length_baseline", "threshold": 0.2},
        "escalation": {"enabled": True, "scorer": "mean_logprob", "tau": 0.0},
    }
    if topology == "in_process":
        with running_gateway(tiny_config(small, strong, **sections)) as base_url:
            yield base_url, {"thinkgate-gateway": base_url.removeprefix("http://")}
        return
    ray = pytest.importorskip("ray")
    from ray import serve

    from tests.serve.conftest import serve_tiny_config, start_app

    metrics_port = free_port()
    ray.init(
        num_cpus=8,
        include_dashboard=False,
        log_to_driver=False,
        _metrics_export_port=metrics_port,
    )
    try:
        base_url = start_app(serve_tiny_config(small, strong, **sections))
        yield (
            base_url,
            {
                "thinkgate-gateway": base_url.removeprefix("http://"),
                "thinkgate-ray": f"127.0.0.1:{metrics_port}",
            },
        )
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
        ray.shutdown()


@pytest.fixture(scope="module", params=TOPOLOGIES)
def scraped(
    request: pytest.FixtureRequest,
    tiny_qwen3_dir: Path,
    tiny_gemma3_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scraped]:
    """thinkgate with traffic, and a Prometheus that has scraped it (and run the rules)."""
    topology: str = request.param
    workdir = tmp_path_factory.mktemp(f"prometheus-{topology}")
    rules = workdir / "thinkgate-rules.yml"
    rules.write_text(yaml.safe_dump(fast_rule_groups()))
    ns = f'namespace="{NAMESPACE}"'
    with (
        _gateway_targets(topology, tiny_qwen3_dir, tiny_gemma3_dir) as (base_url, targets),
        running_prometheus(targets, rules, workdir) as prometheus,
    ):
        client = OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0)
        sent = 0
        # Several rounds a few seconds apart, so rates and quantiles are non-zero.
        for _ in range(4):
            sent += send_round(client)
            time.sleep(3)
        _wait_for(prometheus, f"sum(thinkgate_requests_total{{{ns}}})", sent)
        if topology == "ray_serve":
            # Ray's agent exports every few seconds: wait until the traffic shows there too.
            _wait_for(prometheus, f"count(ray_serve_deployment_replica_healthy{{{ns}}})", 3)
            _wait_for(prometheus, f"sum(ray_serve_deployment_request_counter_total{{{ns}}})", sent)
        time.sleep(5)  # a few more scrapes and rule evaluations
        _wait_for(prometheus, f"min(up{{{ns}}})", 1)
        yield Scraped(topology, prometheus, workdir, sent)


def _wait_for(prometheus: Prometheus, expr: str, value: float, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = prometheus.query(expr)["data"]["result"]
        if result and float(result[0]["value"][1]) >= value:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{expr} did not reach {value} in {timeout_s}s")


def _evaluate(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    body = prometheus.query(expr)
    assert body["status"] == "success", f"{expr!r}: {body.get('errorType')}: {body.get('error')}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _must_have_data(scraped: Scraped, names: set[str]) -> bool:
    if names & NEEDS_EVENTS_WE_CANNOT_PRODUCE.keys():
        return False
    if scraped.topology == "ray_serve":
        return True
    return all(n.startswith("thinkgate_") for n in names)


def test_every_dashboard_and_rule_expression_evaluates(
    scraped: Scraped, capsys: pytest.CaptureFixture[str]
) -> None:
    prometheus = scraped.prometheus
    queries = k8s_module("dashboard_queries")
    dashboard, groups = queries.load_dashboard(), queries.load_rule_groups()
    variables = {"namespace": NAMESPACE, "deployment": ".*", "rate_interval": RATE_INTERVAL}
    counts = {"dashboard": 0, "variables": 0, "rules": 0}
    empty: list[str] = []

    for title, expr in queries.dashboard_exprs(dashboard):
        expanded = queries.expand(expr, **variables)
        result = _evaluate(prometheus, expanded)
        counts["dashboard"] += 1
        if not result and _must_have_data(scraped, queries.metric_names(expanded)):
            empty.append(f"{title}: {expanded}")

    for name, expr in queries.variable_exprs(dashboard):
        result = _evaluate(prometheus, queries.expand(expr, **variables))
        counts["variables"] += 1
        if name == "namespace":
            assert {r["metric"]["namespace"] for r in result} == {NAMESPACE}

    for _name, expr in queries.rule_exprs(groups):
        _evaluate(prometheus, expr)
        counts["rules"] += 1

    total = sum(counts.values())
    with capsys.disabled():
        print(
            f"\n[prometheus/{scraped.topology}] evaluated {total} PromQL expressions through "
            "/api/v1/query: "
            f"{counts['dashboard']} dashboard targets, {counts['variables']} template "
            f"variables, {counts['rules']} alert/recording rules; may be empty: "
            f"{sorted(NEEDS_EVENTS_WE_CANNOT_PRODUCE)}"
        )
    assert empty == [], "dashboard queries returned no data"


def test_key_values_match_the_traffic(scraped: Scraped) -> None:
    prometheus = scraped.prometheus
    ns = f'namespace="{NAMESPACE}"'

    def value(expr: str) -> float:
        [item] = _evaluate(prometheus, expr)
        return float(item["value"][1])

    assert value(f'sum(thinkgate_requests_total{{{ns}, status="400"}})') == 4
    assert value(f'sum(thinkgate_errors_total{{{ns}, error_type="invalid_request_error"}})') == 4
    assert value(f"sum(thinkgate_escalations_total{{{ns}}})") >= 4
    assert value(f"sum(thinkgate_budget_forced_closes_total{{{ns}}})") >= 4
    assert value(f"sum(thinkgate_strong_calls_avoided_total{{{ns}}})") >= 4
    share = value(
        f'sum(rate(thinkgate_routing_decisions_total{{{ns}, tier="strong"}}[{RATE_INTERVAL}]))'
        f" / sum(rate(thinkgate_routing_decisions_total{{{ns}}}[{RATE_INTERVAL}]))"
    )
    assert 0 < share < 1


def test_prometheus_loaded_and_ran_every_rule(scraped: Scraped) -> None:
    prometheus, workdir = scraped.prometheus, scraped.workdir
    body = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=30).json()
    rules = [r for g in body["data"]["groups"] for r in g["rules"]]
    expected = k8s_module("dashboard_queries").rule_exprs(
        k8s_module("dashboard_queries").load_rule_groups()
    )
    assert len(rules) == len(expected)
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert bad == [], bad
    # Recording rules produced series from the scraped gateway.
    ratio = _evaluate(prometheus, f'thinkgate:escalation_ratio:rate30m{{namespace="{NAMESPACE}"}}')
    assert ratio and all(0 <= float(r["value"][1]) <= 1 for r in ratio)

    promtool = shutil.which("promtool")
    if promtool is not None:
        done = subprocess.run(
            [promtool, "check", "rules", str(workdir / "thinkgate-rules.yml")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_render_key_panels_png(scraped: Scraped, tmp_path: Path) -> None:
    prometheus = scraped.prometheus
    render = k8s_module("render_dashboard")
    folder = Path(os.environ.get("THINKGATE_DASHBOARD_PNG_DIR") or tmp_path)
    out = folder / f"dashboard-{scraped.topology.replace('_', '-')}.png"
    end = time.time()
    render.render(
        prometheus.url,
        out,
        start=prometheus.started,
        end=end,
        step_s=1.0,
        rate_interval="10s",
        namespace=NAMESPACE,
        title_note=f"({scraped.topology}, tiny models, "
        f"{math.ceil(end - prometheus.started)} s of test traffic)",
    )
    assert out.stat().st_size > 10_000
