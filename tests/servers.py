"""Real servers for tests: the gateway in-process under uvicorn, on a free loopback port.

Example::

    with running_gateway(config) as base_url:
        client = OpenAI(base_url=f"{base_url}/v1", api_key="x")
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from router.config import ThinkgateConfig
from router.gateway.app import LocalGateway, build_local

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_samples(base_url: str, name: str, **labels: str) -> list[float]:
    """Values of the samples of metric ``name`` in ``GET {base_url}/metrics`` that carry
    every label given (``metric_samples(url, "thinkgate_errors_total", error_type="x")``),
    in exposition order; ``# HELP`` / ``# TYPE`` lines are never samples."""
    found: list[float] = []
    for line in httpx.get(f"{base_url}/metrics", timeout=30).text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        metric, _, rest = series.partition("{")
        if metric == name and labels.items() <= dict(_LABEL.findall(rest)).items():
            found.append(float(value))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_app(app: object, *, port: int | None = None, timeout_s: float = 60.0) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            # uvicorn closes a keep-alive connection idle for 5 s by default; on a loaded
            # 2-core runner its timer can fire as the client reuses the connection (seen
            # as 1 ReadError in 2,000 load-test requests). Clients here expire theirs first.
            timeout_keep_alive=30,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("gateway did not start")
        time.sleep(0.05)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def running_gateway(config: ThinkgateConfig) -> Iterator[str]:
    """Build the in-process gateway for ``config``, load its models, serve it; yields base URL.

    Models load before the server starts, so ``/ready`` is 200 on the first request.
    """
    gateway = build_local(config)
    asyncio.run(gateway.start())
    with serve_app(gateway.app) as base_url:
        yield base_url


def gateway_for(config: ThinkgateConfig) -> LocalGateway:
    """The gateway object itself (for tests that need the cascade or metrics)."""
    return build_local(config)


def wait_ready(base_url: str, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/ready", timeout=5).status_code == 200:
                return
        time.sleep(1)
    raise TimeoutError(f"{base_url} not ready after {timeout_s}s")
