"""Errors of thinkgate, as values inside the service; they become HTTP only at the edge.

Exception tree::

    ThinkgateError                  base; as such an internal error -> 500
     ├── InvalidRequestError        client mistake -> 400, names the parameter
     │    ├── ContextLengthError    prompt + max_tokens beyond the model's context -> 400
     │    └── RequestTooLargeError  body over gateway.max_body_bytes -> 413
     ├── AuthenticationError        missing / wrong API key -> 401
     ├── ModelNotFoundError         unknown `model` -> 404
     ├── RouteError                 unknown path (404) / wrong method (405), from routing
     ├── RateLimitError             per-key limit hit -> 429 with Retry-After
     ├── OverloadedError            queue full / tier unavailable -> 503 with Retry-After
     │    ├── TierUnavailableError  one model tier is down or timed out
     │    └── NotReadyError         models still loading (`GET /ready`) -> 503
     ├── UpstreamError              an upstream (OpenAI-compatible) server failed -> 502
     ├── InternalError              a bug: 500 `internal_error` naming the request id
     └── ConfigError                invalid configuration at start (names the field)

Every body is built by `router.protocol.errors.ErrorResponse` (``to_dict``).
"""

from __future__ import annotations

from typing import Any

from router.protocol.errors import ErrorResponse


class ThinkgateError(Exception):
    """Base of every error thinkgate raises on purpose."""

    status_code: int = 500
    error_type: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def to_response(self) -> ErrorResponse:
        return ErrorResponse.of(
            self.message, type=self.error_type, param=self.param, code=self.code
        )

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
        return self.to_response().body()


class InvalidRequestError(ThinkgateError):
    """The client sent something invalid; ``param`` names the field."""

    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthError(InvalidRequestError):
    """Prompt tokens plus ``max_tokens`` exceed the model's context window."""

    def __init__(self, message: str, *, param: str | None = "max_tokens"):
        super().__init__(message, param=param, code="context_length_exceeded")


class RequestTooLargeError(InvalidRequestError):
    """The request body is over the gateway's byte limit (refused before parsing)."""

    status_code = 413

    def __init__(self, max_bytes: int):
        super().__init__(f"request body exceeds {max_bytes} bytes", code="request_too_large")


class AuthenticationError(ThinkgateError):
    status_code = 401
    error_type = "authentication_error"


class ModelNotFoundError(ThinkgateError):
    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = "model"):
        super().__init__(message, param=param, code="model_not_found")


class RouteError(ThinkgateError):
    """No such endpoint (404) or method (405): raised by the HTTP router, not by a model."""

    def __init__(self, message: str, *, status_code: int):
        super().__init__(message)
        self.status_code = status_code
        self.error_type = "not_found" if status_code == 404 else "invalid_request_error"


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


class NotReadyError(OverloadedError):
    """The models are still loading or a tier is unhealthy (`GET /ready`)."""

    def __init__(self, message: str = "models are still loading or a tier is unhealthy"):
        super().__init__(message, retry_after_s=5.0, code="not_ready")


class UpstreamError(ThinkgateError):
    status_code = 502
    error_type = "upstream_error"


class InternalError(ThinkgateError):
    """An unexpected exception (a bug), not the client's fault and not an outage: 500.

    The message names the request id, which the log line of the traceback carries too."""

    def __init__(self, request_id: str | None):
        where = f" (request id {request_id})" if request_id else ""
        super().__init__(
            f"internal error; the request was not completed{where}", code="internal_error"
        )
        self.request_id = request_id


class ConfigError(ThinkgateError):
    """Invalid configuration, raised at start with the field named."""

    error_type = "config_error"
