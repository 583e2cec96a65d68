"""Which engine a config builds, and where a transformers engine loads its model from."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import EMBEDDED_GEMMA, EngineConfig
from router.engines.embedded import cache_root, embedded_model_dir
from router.engines.factory import create_engine
from router.engines.transformers_engine import TransformersEngine, _source


def test_openai_configs_get_the_openai_engine() -> None:
    from router.engines.openai_engine import OpenAIEngine

    config = EngineConfig(kind="openai", model="m", base_url="http://127.0.0.1:9/v1")
    assert isinstance(create_engine(config), OpenAIEngine)


def test_the_default_engine_is_vllm_and_not_started_by_the_factory() -> None:
    from router.engines.vllm_engine import VLLMEngine

    engine = create_engine(EngineConfig())
    assert isinstance(engine, VLLMEngine)
    assert engine.model_name == "gemma3-270m"
    with pytest.raises(RuntimeError, match="not loaded"):
        engine.count_prompt_tokens([], thinking=False)


def test_a_gguf_path_splits_into_folder_and_file(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"")
    assert _source(EngineConfig(kind="transformers", model=str(gguf))) == (
        str(tmp_path),
        "model.gguf",
    )
    in_folder = EngineConfig(kind="transformers", model=str(tmp_path), gguf_file="model.gguf")
    assert _source(in_folder) == (str(tmp_path), "model.gguf")
    assert _source(EngineConfig(kind="transformers", model="org/some-model")) == (
        "org/some-model",
        None,
    )
    assert (
        TransformersEngine(EngineConfig(kind="transformers", model=str(gguf))).model_name == "model"
    )
    assert (
        TransformersEngine(EngineConfig(kind="transformers", model=EMBEDDED_GEMMA)).model_name
        == "gemma3-270m"
    )


def test_the_embedded_cache_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THINKGATE_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    assert embedded_model_dir() == tmp_path / "models" / "gemma3-270m"


def test_engines_are_not_loaded_by_the_factory(tiny_qwen3_dir: Path) -> None:
    engine = create_engine(
        EngineConfig(kind="transformers", model=str(tiny_qwen3_dir), device="cpu")
    )
    assert isinstance(engine, TransformersEngine)
    assert engine.model_name == tiny_qwen3_dir.name
    with pytest.raises(RuntimeError, match="not loaded"):
        engine.check_health()
