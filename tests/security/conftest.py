"""Fixtures of the security tests: gateways over the tiny models with keys and limits.

``secured_gateway(**security)`` (the ``secured_gateway`` fixture) serves the in-process
gateway with a `SecurityConfig` and yields its base URL; ``CHAT`` is a minimal valid
request body for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.configs import tiny_config
from tests.servers import running_gateway

CHAT: dict[str, Any] = {
    "model": "small",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 2,
}

SecuredGateway = Callable[..., contextlib.AbstractContextManager[str]]


@pytest.fixture(scope="session")
def secured_gateway(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path, never_close_thinking_dir: Path
) -> SecuredGateway:
    """``with secured_gateway(env={...}, gateway={...}, **security) as base_url: ...``

    ``tiers={...}`` overrides fields of both tier sections; ``endless_small=True`` makes
    the small tier a model that never stops before max_tokens (for requests that must last)."""

    @contextlib.contextmanager
    def serve(
        env: dict[str, str] | None = None,
        gateway: dict[str, Any] | None = None,
        endless_small: bool = False,
        tiers: dict[str, Any] | None = None,
        **security: Any,
    ) -> Iterator[str]:
        small = never_close_thinking_dir if endless_small else tiny_qwen3_dir
        config = tiny_config(
            small,
            tiny_gemma3_dir,
            security=security,
            gateway=gateway or {},
            small=tiers or {},
            strong=tiers or {},
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("THINKGATE_API_KEYS", raising=False)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            with running_gateway(config) as base_url:
                yield base_url

    return serve
