"""API keys of the gateway: ``Authorization: Bearer <key>``, checked against SHA-256 digests.

Keys come from three places, all read once at start (`ApiKeys.from_config`):
``security.api_key_hashes`` (hex digests in the config), ``security.api_key_hashes_file``
(a mounted secret, one digest per line) and the environment variable named by
``security.api_keys_env`` (``THINKGATE_API_KEYS``: plain keys, comma-separated, for local
use; they are hashed at once and the plain text is not kept). The presented key is hashed
and compared with every stored digest by `hmac.compare_digest`, so neither the match nor
its position leaks through timing. A key is named in logs by its `key_id` (a short prefix
of its digest), never by the key itself.

With no key configured the gateway is open, and `ApiKeys.check_bind` refuses to start it on
a non-loopback host unless ``security.allow_unauthenticated`` is set.

Example::

    keys = ApiKeys.from_config(config.security, os.environ)
    keys.check_bind(config.gateway.host, config.security)
    key_id = keys.authenticate("Bearer k1")       # "key-2a0f6e1b" or AuthenticationError
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from router._exceptions import AuthenticationError, ConfigError
from router.config import SecurityConfig

ANONYMOUS = "anonymous"
"""Key id of requests to an open gateway (no keys configured)."""

_HEX = frozenset("0123456789abcdef")
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def hash_key(key: str) -> str:
    """SHA-256 hex digest of a plain key: what the config and the secret file hold."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(digest: str) -> str:
    """Name of a key in logs and rate-limit buckets: a short prefix of its digest."""
    return f"key-{digest[:8]}"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for 0.0.0.0, :: and real addresses."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _read_digests(path: str) -> list[str]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"security.api_key_hashes_file: cannot read {file}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"security.api_key_hashes_file: {file} is not UTF-8 text") from None
    digests = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lower()
        if not line or line.startswith("#"):
            continue
        if len(line) != 64 or not set(line) <= _HEX:
            raise ConfigError(
                f"security.api_key_hashes_file: line {number} of {file} is not a SHA-256 "
                "hex digest (64 hex characters)"
            )
        digests.append(line)
    return digests


@dataclass(frozen=True)
class ApiKeys:
    """The accepted keys, as SHA-256 digests. Empty = the gateway is open."""

    digests: tuple[bytes, ...] = ()

    @classmethod
    def from_digests(cls, digests: Iterable[str]) -> ApiKeys:
        unique = dict.fromkeys(d.strip().lower() for d in digests)
        return cls(tuple(bytes.fromhex(d) for d in unique))

    @classmethod
    def from_config(cls, security: SecurityConfig, environ: Mapping[str, str]) -> ApiKeys:
        """All keys of ``security`` plus the plain keys in ``environ[security.api_keys_env]``.

        Raises `ConfigError` naming the field when the secret file is unreadable or holds
        something other than digests.
        """
        digests = list(security.api_key_hashes)
        if security.api_key_hashes_file:
            digests.extend(_read_digests(security.api_key_hashes_file))
        plain = environ.get(security.api_keys_env, "")
        digests.extend(hash_key(k.strip()) for k in plain.split(",") if k.strip())
        return cls.from_digests(digests)

    @property
    def open(self) -> bool:
        """True when no key is configured: every request is let in as `ANONYMOUS`."""
        return not self.digests

    def check_bind(self, host: str, security: SecurityConfig) -> None:
        """Refuse an open gateway on a non-loopback host unless explicitly allowed."""
        if self.open and not is_loopback(host) and not security.allow_unauthenticated:
            raise ConfigError(
                f"gateway.host is {host!r} (not loopback) and no API key is configured: set "
                f"security.api_key_hashes, security.api_key_hashes_file or "
                f"${security.api_keys_env}, or security.allow_unauthenticated: true"
            )

    def authenticate(self, authorization: str | None) -> str:
        """The key id for an ``Authorization`` header value; `AuthenticationError` if the
        key is missing or unknown. An open gateway answers `ANONYMOUS` for anything."""
        if self.open:
            return ANONYMOUS
        if not authorization:
            raise AuthenticationError(
                "missing API key: send it as 'Authorization: Bearer <key>'",
                code="missing_api_key",
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError(
                "malformed Authorization header: expected 'Bearer <key>'",
                code="invalid_api_key",
            )
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        matched: bytes | None = None
        for digest in self.digests:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(presented, digest):
                matched = digest
        if matched is None:
            raise AuthenticationError("incorrect API key provided", code="invalid_api_key")
        return key_id(matched.hex())
