"""Thinkgate configs over the tiny test models, shared by gateway, Serve and metrics tests.

Example::

    config = tiny_config(tiny_qwen3_dir, tiny_gemma3_dir, routing={"threshold": 0.9})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from router.config import ThinkgateConfig, config_from_mapping
from tests.tiny_models import tiny_engine_config


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def tiny_config(small_dir: Path, strong_dir: Path, **sections: Any) -> ThinkgateConfig:
    """Small tier = ``small_dir`` ("tiny-small"), strong = ``strong_dir`` ("tiny-strong",
    thinking). Routing uses the transparent length baseline (short prompts go small) unless
    overridden; escalation never fires (tau=1) unless overridden."""
    small = tiny_engine_config(small_dir, served_name="tiny-small").model_dump(mode="json")
    strong = tiny_engine_config(strong_dir, served_name="tiny-strong").model_dump(mode="json")
    data: dict[str, Any] = {
        "small": {"engine": small, "max_tokens_default": 16, "max_tokens_limit": 4096},
        "strong": {
            "engine": strong,
            "thinking": True,
            "max_tokens_default": 16,
            "max_tokens_limit": 4096,
        },
        "routing": {"scorer": "length_baseline", "threshold": 0.5},
        "budget": {"enabled": False, "max_tokens": 24, "min_tokens": 0},
        "escalation": {"enabled": True, "scorer": "mean_logprob", "tau": 1.0},
    }
    return config_from_mapping(_merge(data, sections), source="tests")
