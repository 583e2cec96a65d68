"""The one error shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong, naming the bad value.")
    type: str = Field(description="e.g. invalid_request_error, rate_limit_error.")
    param: str | None = Field(None, description="The request parameter at fault.")
    code: str | None = Field(None, description="Machine-readable code.")


class ErrorResponse(BaseModel):
    error: ErrorDetail
