"""/feedback: ground truth for earlier predictions, joined to them in the prediction log."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from api.model_state import ServedModel
from api.schemas import FeedbackRequest, FeedbackResponse, error_responses
from api.security import ADMIN
from api.service import UNAVAILABLE, ServiceDep

logger = logging.getLogger(__name__)

# how long feedback waits for queued predictions to reach the log before refusing with 503
FEEDBACK_FLUSH_TIMEOUT_S = 10.0

router = APIRouter(tags=["predictions"])


@router.post(
    "/feedback", dependencies=ADMIN, responses=error_responses(400, 401, 403, 409, 413, 422, 503)
)
async def feedback(body: FeedbackRequest, service: ServiceDep) -> FeedbackResponse:
    """Ground truth for earlier request ids; stored beside the logged predictions."""
    model = service.model()
    if service.store is None:
        raise HTTPException(409, "the prediction log is disabled in this service's config")
    errors = _ground_truth_errors(model, body)
    if errors:
        raise RequestValidationError(errors)
    # with queued acknowledgement the predictions being labelled may not be in the log yet:
    # feedback for them would be lost (durably acknowledged ones are there already)
    if not service.settings.durable and not await run_in_threadpool(
        service.writer.wait_written, FEEDBACK_FLUSH_TIMEOUT_S
    ):
        raise HTTPException(
            UNAVAILABLE, "the prediction log is behind; feedback was not stored, retry shortly"
        )
    items = [(item.request_id, item.ground_truth) for item in body.items]
    try:
        unknown = await run_in_threadpool(service.store.add_feedback, items, time.time())
    except Exception as exc:  # the database is unavailable: nothing was stored
        logger.warning("feedback not stored: %s", exc)
        raise HTTPException(
            UNAVAILABLE, "the prediction log cannot be written; feedback was not stored, retry"
        ) from None
    return FeedbackResponse(
        stored=len(set(dict(items))) - len(unknown), unknown_request_ids=unknown
    )


def _finite_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        return False


def _ground_truth_errors(model: ServedModel, body: FeedbackRequest) -> list[dict[str, Any]]:
    """422 details for labels the served model could not have predicted (wrong class, NaN)."""
    classes = {str(c) for c in model.schema.classes or []}
    errors = []
    for i, item in enumerate(body.items):
        value = item.ground_truth
        if classes:
            ok = str(value) in classes
            expected = f"one of {sorted(classes)}"
        else:
            ok = _finite_number(value)
            expected = "a finite number"
        if not ok:
            errors.append(
                {
                    "loc": ["body", "items", i, "ground_truth"],
                    "msg": f"expected {expected}",
                    "type": "value_error",
                }
            )
    return errors
