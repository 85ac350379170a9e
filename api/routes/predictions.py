"""The hot path: /predict and /predict_batch.

Both validate the raw body against the served model's row schema in one pydantic-core pass,
predict with the compiled model, hand the records to the log writer and answer with JSON
serialized by pydantic-core: no pandas, no per-row scikit-learn validation. By default the
answer waits for the log's commit (group commit: one short wait, shared by concurrent
requests). They differ only in the body's shape and the response's shape.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.requests import ClientDisconnect

from api.model_state import ServedModel
from api.schemas import (
    JSON_MEDIA_TYPE,
    PredictBatchResponse,
    PredictResponse,
    error_responses,
)
from api.service import Service, ServiceDep
from monitoring.log_store import PredictionRecord

# Larger bodies are parsed and predicted in a worker thread, so single rows keep flowing;
# smaller ones inline (a thread hop costs more than they do). About 200 rows of the orders.
INLINE_BODY_BYTES = 64 * 1024
ROW_ERRORS = error_responses(413, 422, 503)
BAD_REQUEST = 400
# Request ids: 32 hex digits, as a uuid4's, but led by the time in milliseconds so they
# sort by time: the log's unique index on them then grows at its end, where a random id
# dirtied a random page of it per row (durable throughput fell as the log grew).
REQUEST_ID_TIME_DIGITS = 12
REQUEST_ID_RANDOM_BYTES = 10
MS_PER_S = 1000
BATCH_ERRORS = ROW_ERRORS
M = TypeVar("M", bound=BaseModel)

router = APIRouter(tags=["predictions"])


@router.post("/predict", response_model=PredictResponse, responses=ROW_ERRORS)
async def predict(request: Request, service: ServiceDep) -> Response:
    return await respond(request, service, batch=False)


@router.post("/predict_batch", response_model=PredictBatchResponse, responses=BATCH_ERRORS)
async def predict_batch(request: Request, service: ServiceDep) -> Response:
    return await respond(request, service, batch=True)


async def respond(request: Request, service: Service, batch: bool) -> Response:
    """The one path of both endpoints, routed or fast (api.fast_path): validate the body,
    predict, log, answer.

    The body arrives through the byte limit (api.body_limit). The answer is sent only
    once the log has the rows (or, with `acknowledge: queued`, has queued them).
    """
    model = service.model()
    try:
        body = await request.body()
    except ClientDisconnect:  # the client left mid-body: nobody is there to answer
        return Response(status_code=BAD_REQUEST)
    if len(body) > INLINE_BODY_BYTES:
        records, payload = await run_in_threadpool(serve_body, service, model, body, batch)
    else:  # predicted together with the other small requests of this event-loop turn
        values = _values(service, model, body, batch)
        labels, probas = await service.coalescer.predict(model.compiled, values)
        records, payload = _answer(model, values, labels, probas, batch)
    service.metrics.predictions.labels(model.version).inc(len(records))
    await service.log(records)
    return Response(payload, media_type=JSON_MEDIA_TYPE)


def serve_body(
    service: Service, model: ServedModel, body: bytes, batch: bool
) -> tuple[list[PredictionRecord], bytes]:
    """Parse, predict and answer (blocking): the log records and the JSON answer."""
    values = _values(service, model, body, batch)
    labels, probas = model.compiled.predict(values)
    return _answer(model, values, labels, probas, batch)


def _values(service: Service, model: ServedModel, body: bytes, batch: bool) -> list[dict[str, Any]]:
    """The body's rows, validated against the served model's row schema."""
    if batch:
        rows = _parse(model.rows.batch, body, service.config.max_batch_rows).rows
    else:
        rows = [_parse(model.rows.row, body)]
    return [model.rows.values(row) for row in rows]


def _answer(
    model: ServedModel, values: list[dict[str, Any]], labels: list, probas: list | None, batch: bool
) -> tuple[list[PredictionRecord], bytes]:
    """The log records and the JSON answer.

    A single row's answer is the prediction itself; a batch's lists them in row order.
    """
    records, out = _records(model, values, labels, probas)
    if batch:
        return records, to_json({"model_version": model.version, "predictions": out})
    return records, to_json({**out[0], "model_version": model.version})


def _records(
    model: ServedModel, values: list[dict[str, Any]], labels: list, probas: list | None
) -> tuple[list[PredictionRecord], list[dict[str, Any]]]:
    """Log records and response items; one request id per row (`<batch>-<i>` in a batch)."""
    now = time.time()
    batch_id = new_request_id(now)
    records, out = [], []
    for i, (row, label) in enumerate(zip(values, labels, strict=True)):
        request_id = f"{batch_id}-{i}" if len(values) > 1 else batch_id
        proba = probas[i] if probas is not None else None
        records.append(PredictionRecord(request_id, now, model.version, row, label, proba))
        item = {"request_id": request_id, "prediction": label}
        if proba is not None:
            item["probabilities"] = proba
        out.append(item)
    return records, out


def new_request_id(now: float) -> str:
    """A unique id that sorts by time (milliseconds, then 80 random bits)."""
    stamp = f"{int(now * MS_PER_S):0{REQUEST_ID_TIME_DIGITS}x}"
    return stamp + secrets.token_hex(REQUEST_ID_RANDOM_BYTES)


def _parse(validator: type[M], body: bytes, max_rows: int | None = None) -> M:
    """Parse and validate a body in one pass; 422 like FastAPI's, 413 past `max_rows` rows."""
    try:
        return validator.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        too_long = [e for e in errors if e["type"] == "too_long" and e["loc"] == ("rows",)]
        if max_rows is not None and too_long:
            rows = too_long[0]["ctx"]["actual_length"]
            raise HTTPException(
                413, f"batch of {rows} rows exceeds the limit of {max_rows} rows"
            ) from None
        # no input values in the details: they may be NaN or huge
        details = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors]
        raise RequestValidationError(details) from None
