"""Build the engine an `EngineConfig` names; engine modules are imported only when needed.

Example::

    engine = create_engine(EngineConfig(kind="vllm", model="embedded:gemma3-270m"))
    engine.load()
"""

from __future__ import annotations

from router._exceptions import ConfigError
from router.config import EngineConfig
from router.engines.base import Engine


def create_engine(config: EngineConfig) -> Engine:
    """A `VLLMEngine`, `TransformersEngine` or `OpenAIEngine` for ``config`` (not loaded
    yet)."""
    if config.kind == "vllm":
        from router.engines.vllm_engine import VLLMEngine

        vllm_engine: Engine = VLLMEngine(config)
        return vllm_engine
    if config.kind == "transformers":
        from router.engines.transformers_engine import TransformersEngine

        return TransformersEngine(config)
    if config.kind == "openai":
        from router.engines.openai_engine import OpenAIEngine

        engine: Engine = OpenAIEngine(config)
        return engine
    raise ConfigError(f"engine.kind: unknown engine kind {config.kind!r}")
