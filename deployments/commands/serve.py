"""``thinkgate serve``: run the Ray Serve application on local Ray (or join a cluster).

Example::

    $ thinkgate serve                        # embedded default on 127.0.0.1:8000
    $ thinkgate serve --config prod.yaml --host 0.0.0.0 --port 8000
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.config import ThinkgateConfig


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (default: $THINKGATE_CONFIG or built-in)")
    parser.add_argument("--host", help="bind address (default: gateway.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="bind port (default: gateway.port, 8000)")
    parser.add_argument(
        "--address", help="Ray cluster address to join (default: start a local Ray)"
    )


def _cpus_requested(config: ThinkgateConfig) -> int:
    total = 1.0  # the gateway ingress and Serve's own actors
    for tier in (config.small, config.strong):
        d = tier.deployment
        replicas = d.autoscaling.max_replicas if d.autoscaling else d.num_replicas
        total += d.num_cpus * replicas
    return math.ceil(total)


def run(args: argparse.Namespace) -> int:
    from router._exceptions import ConfigError
    from router.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("thinkgate.serve")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"thinkgate: {exc.message}", file=sys.stderr)
        return 2
    host = args.host or config.gateway.host
    port = args.port or config.gateway.port
    # The command line wins over the file; the ingress sees the same host it is bound to.
    config = config.model_copy(
        update={"gateway": config.gateway.model_copy(update={"host": host, "port": port})}
    )
    from router.gateway.security import ApiKeys

    try:
        ApiKeys.from_config(config.security, os.environ).check_bind(host, config.security)
    except ConfigError as exc:
        print(f"thinkgate: {exc.message}", file=sys.stderr)
        return 2

    import ray
    from ray import serve

    from deployments.app import build_from_config

    log.info("starting Ray%s", f" at {args.address}" if args.address else " locally")
    if args.address:
        ray.init(address=args.address, include_dashboard=False, log_to_driver=True)
    else:
        # Logical CPUs for local Ray: at least what the deployments ask for, so a small
        # machine can still place both tiers and the gateway (they share the cores).
        ray.init(
            num_cpus=max(os.cpu_count() or 1, _cpus_requested(config)),
            include_dashboard=False,
            log_to_driver=True,
        )
    serve.start(http_options={"host": host, "port": port})
    log.info(
        "deploying: small=%s strong=%s (first start converts and caches the embedded model)",
        config.small.engine.display_name,
        config.strong.engine.display_name,
    )
    serve.run(build_from_config(config), name="thinkgate", route_prefix="/", blocking=False)
    log.info("thinkgate is serving on http://%s:%d/v1 (ready: GET /ready)", host, port)
    stop = {"now": False}

    def _stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop["now"]:
        time.sleep(0.5)
    log.info("shutting down (draining in-flight requests)")
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()
    return 0
