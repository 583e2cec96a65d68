"""The one error shape: ``{"error": {"message", "type", "param", "code"}}``.

Every error body thinkgate sends is built by `ErrorResponse.of` (through
`router._exceptions.ThinkgateError.to_dict`): no module writes the dict by hand.

Example::

    ErrorResponse.of("n must be >= 1, got 0", type="invalid_request_error", param="n")
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong, naming the bad value.")
    type: str = Field(description="e.g. invalid_request_error, rate_limit_error.")
    param: str | None = Field(None, description="The request parameter at fault.")
    code: str | None = Field(None, description="Machine-readable code.")


class ErrorResponse(BaseModel):
    error: ErrorDetail

    @classmethod
    def of(
        cls, message: str, *, type: str, param: str | None = None, code: str | None = None
    ) -> ErrorResponse:
        return cls(error=ErrorDetail(message=message, type=type, param=param, code=code))

    def body(self) -> dict[str, Any]:
        """The JSON-ready dict (all four keys, ``None`` included, as OpenAI sends them)."""
        return self.model_dump(mode="json")
