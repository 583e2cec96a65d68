from pathlib import Path

import pytest

from router._exceptions import ConfigError
from router.config import EMBEDDED_GEMMA, load_config


def test_builtin_default_is_the_embedded_gemma_on_both_tiers() -> None:
    config = load_config(environ={})
    assert config.small.engine.model == EMBEDDED_GEMMA
    assert config.strong.engine.model == EMBEDDED_GEMMA
    assert config.small.engine.kind == config.strong.engine.kind == "vllm"
    assert config.strong.thinking and not config.small.thinking
    assert config.gateway.host == "127.0.0.1" and config.gateway.port == 8000


def test_yaml_then_env_overrides(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("gateway:\n  port: 9000\nrouting:\n  threshold: 0.4\n")
    config = load_config(file, environ={"THINKGATE__GATEWAY__PORT": "9100"})
    assert config.gateway.port == 9100
    assert config.routing.threshold == 0.4


def test_config_path_from_env(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("small:\n  thinking: true\n")
    assert load_config(environ={"THINKGATE_CONFIG": str(file)}).small.thinking


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("gateway:\n  port: 70000\n", "gateway.port"),
        ("routing:\n  threshold: 0.5\n  strong_share: 0.3\n", "routing"),
        ("small:\n  engine:\n    kind: openai\n", "small.engine"),
        ("strong:\n  engine:\n    tensor_parallel_size: 2\n", "strong"),
        ("small:\n  engine:\n    kv_cache_gib: 0\n", "small.engine.kv_cache_gib"),
        ("budget:\n  min_tokens: 10\n  max_tokens: 5\n", "budget"),
        ("gatway:\n  port: 1\n", "gatway"),
    ],
)
def test_invalid_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(file, environ={})
    assert field in info.value.message


def test_unreadable_and_non_mapping_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", environ={})
    file = tmp_path / "list.yaml"
    file.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(file, environ={})
