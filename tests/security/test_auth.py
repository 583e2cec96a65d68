"""API keys: Bearer auth against SHA-256 digests from config, a secret file and the env."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from openai import AuthenticationError as OpenAIAuthError
from openai import OpenAI

from router._exceptions import AuthenticationError, ConfigError
from router.config import SecurityConfig, ThinkgateConfig, config_from_mapping
from router.gateway.security import ANONYMOUS, ApiKeys, hash_key, is_loopback, key_id
from tests.security.conftest import CHAT, SecuredGateway

K1, K2 = "k1", "sk-second-key"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# ----- the key store, without HTTP -------------------------------------------------------
def test_hash_key_is_sha256_hex() -> None:
    assert hash_key(K1) == sha(K1)
    assert key_id(sha(K1)) == f"key-{sha(K1)[:8]}"


def test_keys_from_config_file_and_env_are_merged(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text(f"# mounted secret\n\n{sha(K2).upper()}\n")
    security = SecurityConfig(api_key_hashes=(sha("from-config"),), api_key_hashes_file=str(secret))
    keys = ApiKeys.from_config(security, {"THINKGATE_API_KEYS": f" {K1} ,, k3 "})
    assert len(keys.digests) == 4
    for key in ("from-config", K2, K1, "k3"):
        assert keys.authenticate(f"Bearer {key}") == key_id(sha(key))


def test_env_variable_name_is_configurable() -> None:
    keys = ApiKeys.from_config(SecurityConfig(api_keys_env="MY_KEYS"), {"MY_KEYS": K1})
    assert keys.authenticate(f"Bearer {K1}") == key_id(sha(K1))


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Bearer", "invalid_api_key"),
        ("Basic azE6", "invalid_api_key"),
        (f"Bearer {K1}x", "invalid_api_key"),
        ("Bearer " + "a" * 10_000, "invalid_api_key"),
    ],
)
def test_wrong_or_missing_keys_are_refused(header: str | None, code: str) -> None:
    keys = ApiKeys.from_digests([sha(K1)])
    with pytest.raises(AuthenticationError) as info:
        keys.authenticate(header)
    assert info.value.status_code == 401 and info.value.code == code
    assert K1 not in info.value.message


def test_scheme_is_case_insensitive_and_spaces_are_tolerated() -> None:
    keys = ApiKeys.from_digests([sha(K1)])
    assert keys.authenticate(f"bearer   {K1} ") == key_id(sha(K1))


def test_open_gateway_lets_anyone_in_as_anonymous() -> None:
    keys = ApiKeys.from_config(SecurityConfig(), {})
    assert keys.open and keys.authenticate(None) == ANONYMOUS


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_open_gateway_refuses_a_public_bind_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="allow_unauthenticated"):
        ApiKeys().check_bind("0.0.0.0", SecurityConfig())
    ApiKeys().check_bind("0.0.0.0", SecurityConfig(allow_unauthenticated=True))
    ApiKeys().check_bind("127.0.0.1", SecurityConfig())
    ApiKeys.from_digests([sha(K1)]).check_bind("0.0.0.0", SecurityConfig())


def test_create_app_refuses_an_open_public_gateway(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.gateway.app import build_local
    from tests.configs import tiny_config

    monkeypatch.delenv("THINKGATE_API_KEYS", raising=False)
    config = tiny_config(tiny_qwen3_dir, tiny_gemma3_dir, gateway={"host": "0.0.0.0"})
    with pytest.raises(ConfigError, match="not loopback"):
        build_local(config)
    monkeypatch.setenv("THINKGATE_API_KEYS", K1)
    build_local(config)  # a key makes the public bind acceptable


def test_config_rejects_malformed_digests() -> None:
    with pytest.raises(ConfigError, match=r"api_key_hashes\[1\]"):
        config_from_mapping({"security": {"api_key_hashes": [sha(K1), "k1"]}})
    assert ThinkgateConfig().security.api_key_hashes == ()


@pytest.mark.parametrize("content", ["not-a-digest\n", "ab" * 31 + "zz\n"])
def test_bad_secret_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    secret = tmp_path / "keys"
    secret.write_text(content)
    with pytest.raises(ConfigError, match="line 1"):
        ApiKeys.from_config(SecurityConfig(api_key_hashes_file=str(secret)), {})
    with pytest.raises(ConfigError, match="cannot read"):
        ApiKeys.from_config(SecurityConfig(api_key_hashes_file=str(tmp_path / "missing")), {})


# ----- over HTTP ---------------------------------------------------------------------------
def _chat(base_url: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.post(f"{base_url}/v1/chat/completions", json=CHAT, headers=headers, timeout=60)


def _assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "authentication_error"


@pytest.mark.parametrize("source", ["env", "config", "file"])
def test_no_key_and_wrong_key_get_401_right_key_200(
    secured_gateway: SecuredGateway, tmp_path: Path, source: str
) -> None:
    secret = tmp_path / "api-keys"
    secret.write_text(sha(K1) + "\n")
    kwargs: dict[str, object] = {
        "env": {"env": {"THINKGATE_API_KEYS": K1}},
        "config": {"api_key_hashes": [sha(K1)]},
        "file": {"api_key_hashes_file": str(secret)},
    }[source]
    with secured_gateway(**kwargs) as base_url:
        _assert_401(_chat(base_url, None))
        _assert_401(_chat(base_url, "k2"))
        _assert_401(httpx.get(f"{base_url}/v1/models"))
        ok = _chat(base_url, K1)
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"]
        assert httpx.get(
            f"{base_url}/v1/models", headers={"Authorization": f"Bearer {K1}"}
        ).is_success
        # probes stay open for the orchestrator
        assert httpx.get(f"{base_url}/health").status_code == 200
        assert httpx.get(f"{base_url}/ready").status_code == 200


def test_openai_client_with_and_without_the_key(secured_gateway: SecuredGateway) -> None:
    with secured_gateway(env={"THINKGATE_API_KEYS": f"{K1},{K2}"}) as base_url:
        good = OpenAI(base_url=f"{base_url}/v1", api_key=K2, max_retries=0)
        assert good.chat.completions.create(**CHAT).choices  # type: ignore[call-overload]
        bad = OpenAI(base_url=f"{base_url}/v1", api_key="nope", max_retries=0)
        with pytest.raises(OpenAIAuthError):
            bad.chat.completions.create(**CHAT)  # type: ignore[call-overload]
