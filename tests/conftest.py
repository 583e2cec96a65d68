"""Shared fixtures: tiny real models (built once, cached by version) and their configs.

Fixtures (session-scoped, paths to ``save_pretrained`` folders):

- ``tiny_qwen3_dir``: Qwen3 architecture, ChatML chat template.
- ``tiny_gemma3_dir``: Gemma3 architecture, Gemma-style chat template.
- ``tiny_base_dir``: Qwen3 without a chat template (the engine's fallback applies).
- ``never_close_thinking_dir``: Qwen3 that always emits ``" ok"`` and never ``</think>``.

``tiny_engine_config(path)`` (from ``tests.tiny_models``) turns a path into an
`EngineConfig`; the ``tiny_engine_config`` fixture returns that helper.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tiny_models import cached_tiny_model
from tests.tiny_models import tiny_engine_config as _tiny_engine_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One intra-op thread: on a small, shared CPU, torch's default thread pool spins against
# the other processes (test workers, Ray replicas) and runs 2-10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Ray Serve's controller kills a proxy that is not ready within 5 s, and serve.start then
# fails with ActorDiedError: on a loaded 2-core runner (4 test workers) a proxy took longer
# to start. The local Ray clusters of the tests inherit these; production keeps Ray's values.
os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
os.environ.setdefault("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "30")


@pytest.fixture(scope="session")
def tiny_qwen3_dir() -> Path:
    return cached_tiny_model("qwen3", "qwen3")


@pytest.fixture(scope="session")
def tiny_gemma3_dir() -> Path:
    return cached_tiny_model("gemma3", "gemma3")


@pytest.fixture(scope="session")
def tiny_base_dir() -> Path:
    return cached_tiny_model("qwen3-base", "qwen3", chat_template=False)


@pytest.fixture(scope="session")
def never_close_thinking_dir() -> Path:
    return cached_tiny_model("qwen3-never-close", "qwen3", never_close_thinking=True)


@pytest.fixture(scope="session")
def tiny_engine_config() -> Callable[..., object]:
    return _tiny_engine_config


# Markers of tests that start servers, load real models or run for minutes.
_HEAVY_MARKERS = frozenset({"slow", "serve", "prometheus", "fault"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Collect heavy modules first, keeping the order otherwise.

    `make test` runs the suite on several pytest-xdist workers with ``--dist loadfile``,
    which hands out whole files in collection order: starting the long files first keeps
    one worker from picking up a several-minute file at the end while the others idle.
    The order is a pure function of the collected items, so every worker agrees on it.
    """
    heavy_files = {
        item.path
        for item in items
        if any(marker.name in _HEAVY_MARKERS for marker in item.iter_markers())
    }
    items.sort(key=lambda item: item.path not in heavy_files)
