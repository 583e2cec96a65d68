"""Errors of thinkgate, as values inside the service; they become HTTP only at the edge.

Exception tree::

    ThinkgateError
     ├── InvalidRequestError        client mistake -> 400, names the parameter
     │    └── ContextLengthError    prompt + max_tokens beyond the model's context -> 400
     ├── AuthenticationError        missing / wrong API key -> 401
     ├── ModelNotFoundError         unknown `model` -> 404
     ├── RateLimitError             per-key limit hit -> 429 with Retry-After
     ├── OverloadedError            queue full / tier unavailable -> 503 with Retry-After
     │    └── TierUnavailableError  one model tier is down or timed out
     ├── UpstreamError              an upstream (OpenAI-compatible) server failed -> 502
     └── ConfigError                invalid configuration at start (names the field)
"""

from __future__ import annotations


class ThinkgateError(Exception):
    """Base of every error thinkgate raises on purpose."""

    status_code: int = 500
    error_type: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def to_dict(self) -> dict[str, dict[str, str | None]]:
        """The OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(ThinkgateError):
    """The client sent something invalid; ``param`` names the field."""

    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthError(InvalidRequestError):
    """Prompt tokens plus ``max_tokens`` exceed the model's context window."""

    def __init__(self, message: str, *, param: str | None = "max_tokens"):
        super().__init__(message, param=param, code="context_length_exceeded")


class AuthenticationError(ThinkgateError):
    status_code = 401
    error_type = "authentication_error"


class ModelNotFoundError(ThinkgateError):
    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = "model"):
        super().__init__(message, param=param, code="model_not_found")


class RateLimitError(ThinkgateError):
    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: float, param: str | None = None):
        super().__init__(message, param=param, code="rate_limit_exceeded")
        self.retry_after_s = retry_after_s


class OverloadedError(ThinkgateError):
    status_code = 503
    error_type = "service_unavailable"

    def __init__(self, message: str, *, retry_after_s: float = 1.0, code: str = "overloaded"):
        super().__init__(message, param=None, code=code)
        self.retry_after_s = retry_after_s


class TierUnavailableError(OverloadedError):
    """A model tier is down, timed out or failed; the cascade may fall back."""

    def __init__(self, tier: str, reason: str, *, retry_after_s: float = 2.0):
        super().__init__(
            f"model tier {tier!r} is unavailable: {reason}",
            retry_after_s=retry_after_s,
            code="tier_unavailable",
        )
        self.tier = tier


class UpstreamError(ThinkgateError):
    status_code = 502
    error_type = "upstream_error"


class ConfigError(ThinkgateError):
    """Invalid configuration, raised at start with the field named."""

    error_type = "config_error"
