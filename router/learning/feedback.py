"""Client feedback: ``POST /v1/feedback`` labels one of the caller's own requests.

Body: ``{"request_id", "score" in [0, 1] | "thumbs": "up"|"down", "reference"?,
"comment"?}``. A key labels only requests it made (another key's request id is answered
404, exactly like an unknown one, so ids do not leak). Posting again for the same request
replaces the label: the call is idempotent. ``reference`` and ``comment`` are client text,
stored only with ``learning.store_text``; that a reference was given is always kept.
``request_id`` is the completion's ``id`` or the response's ``x-request-id`` header (the
same id without ``chatcmpl-``: `router.gateway.access_log`).

Example::

    service = FeedbackService(loop)
    label = await service.submit("key-1a2b3c4d", FeedbackRequest(request_id=rid, thumbs="up"))
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from router._exceptions import InvalidRequestError, ThinkgateError

if TYPE_CHECKING:
    from router.learning.loop import LearningLoop

COMPLETION_PREFIX = "chatcmpl-"


class RequestNotFoundError(ThinkgateError):
    """No answered request with this id belongs to the caller's key."""

    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = "request_id"):
        super().__init__(message, param=param, code="request_not_found")


class FeedbackRequest(BaseModel):
    """A label for one answered request (thinkgate extension of the OpenAI API)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        ...,
        min_length=1,
        max_length=80,
        description="`id` of the chat completion to label, or its `x-request-id` header "
        "(the id without the `chatcmpl-` prefix).",
    )
    score: float | None = Field(
        None, ge=0, le=1, description="Quality of the answer, 0 (bad) to 1 (good)."
    )
    thumbs: Literal["up", "down"] | None = Field(
        None, description="Thumbs up (= score 1) or down (= score 0); instead of `score`."
    )
    reference: str | None = Field(
        None, max_length=100_000, description="A correct answer, to grade answers against."
    )
    comment: str | None = Field(None, max_length=10_000, description="Free text.")


class FeedbackResponse(BaseModel):
    request_id: str = Field(..., description="The labelled request.")
    score: float = Field(..., description="The score stored (thumbs up = 1, down = 0).")
    small_ok: bool | None = Field(
        None, description="For an answer of the small tier: score >= 0.5."
    )
    replaced: bool = Field(..., description="True when an earlier label was replaced.")


class FeedbackService:
    def __init__(self, loop: LearningLoop) -> None:
        self.loop = loop

    async def submit(self, key_id: str, body: FeedbackRequest) -> FeedbackResponse:
        if body.score is None and body.thumbs is None:
            raise InvalidRequestError("send either score (0 to 1) or thumbs", param="score")
        if body.score is not None and body.thumbs is not None:
            raise InvalidRequestError("send score or thumbs, not both", param="thumbs")
        score = body.score if body.score is not None else (1.0 if body.thumbs == "up" else 0.0)
        record = await self.owned_record(key_id, body.request_id)
        request_id = str(record["request_id"])
        small_ok = (score >= 0.5) if record["tier"] == "small" else None
        store_text = self.loop.settings.store_text
        row: dict[str, Any] = {
            "request_id": request_id,
            "source": "feedback",
            "created_at": time.time(),
            "key_id": key_id,
            "score": score,
            "small_ok": small_ok,
            "strong_better": None,
            "has_reference": body.reference is not None,
            "reference_text": body.reference if store_text else None,
            "comment_text": body.comment if store_text else None,
        }
        store = self.loop.store
        before = await asyncio.to_thread(store.labels, request_id)
        await asyncio.to_thread(store.upsert_label, row)
        self.loop.metrics.labels_written.labels(source="feedback").inc()
        replaced = any(label["source"] == "feedback" for label in before)
        return FeedbackResponse(
            request_id=request_id, score=score, small_ok=small_ok, replaced=replaced
        )

    async def owned_record(self, key_id: str, request_id: str) -> dict[str, Any]:
        """The decision record of ``request_id`` (a completion's ``id``, or the
        ``x-request-id`` it was answered under) if ``key_id`` made it; waits for the writer
        when the record is still queued."""
        record = await asyncio.to_thread(self._decision, request_id)
        if record is None:
            await asyncio.to_thread(self.loop.writer.flush, 5.0)
            record = await asyncio.to_thread(self._decision, request_id)
        if record is None or record["key_id"] != key_id:
            raise RequestNotFoundError(
                f"no answered request {request_id!r} for this API key (it is unknown, "
                "belongs to another key, or its record was not written)"
            )
        return record

    def _decision(self, request_id: str) -> dict[str, Any] | None:
        record = self.loop.store.decision(request_id)
        if record is None and not request_id.startswith(COMPLETION_PREFIX):
            record = self.loop.store.decision(COMPLETION_PREFIX + request_id)
        return record
