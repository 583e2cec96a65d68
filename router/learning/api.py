"""Routes of the learning loop: ``POST /v1/feedback`` and ``GET /v1/learning/status``.

Both take the gateway's API keys (``Authorization: Bearer <key>``); the logic lives in
`router.learning.feedback` and `router.learning.loop`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.exc import SQLAlchemyError

from router._exceptions import OverloadedError
from router.gateway.api_router import api_key_dependency
from router.gateway.security import ApiKeys
from router.learning.feedback import FeedbackRequest, FeedbackResponse, FeedbackService
from router.learning.loop import LearningLoop
from router.metrics import GatewayMetrics
from router.protocol.errors import ErrorResponse

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Invalid body; `error.param` names the field"},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
    404: {"model": ErrorResponse, "description": "No such request for this key"},
    503: {"model": ErrorResponse, "description": "The learning database is unavailable"},
}


def build_learning_router(
    loop: LearningLoop, metrics: GatewayMetrics, api_keys: ApiKeys | None = None
) -> APIRouter:
    api = APIRouter()
    keys = api_keys or ApiKeys()
    feedback = FeedbackService(loop)
    authorize = api_key_dependency(keys, metrics)

    @api.post("/v1/feedback", response_model=FeedbackResponse, responses=_ERRORS)
    async def post_feedback(
        body: FeedbackRequest, key: str = Depends(authorize)
    ) -> FeedbackResponse:
        try:
            return await feedback.submit(key, body)
        except SQLAlchemyError as exc:
            loop.store.reset()
            raise OverloadedError(
                f"the learning database is unavailable ({type(exc).__name__}); retry later",
                retry_after_s=5.0,
                code="database_unavailable",
            ) from None

    @api.get("/v1/learning/status", responses=_ERRORS)
    async def learning_status(key: str = Depends(authorize)) -> dict[str, Any]:
        return loop.status()

    return api
