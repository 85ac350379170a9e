"""The prediction service.

Hot path (`/predict`, `/predict_batch`): validate the raw body against the served model's
row schema, predict with the compiled model, hand the records to the log writer, answer.
No pandas, no per-row scikit-learn validation, logging off the critical path.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any
from uuid import uuid4

import mlflow
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from mlflow.tracking import MlflowClient
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from pydantic_core import to_json

from api.metrics import MetricsMiddleware, ServiceMetrics
from api.model_state import (
    ALIAS_PATTERN,
    VERSION_PATTERN,
    ModelHolder,
    Selection,
    ServedModel,
)
from api.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    ModelInfo,
    ModelLoadResponse,
    PredictBatchResponse,
    PredictResponse,
    RegisteredVersion,
)
from monitoring.events import EventEmitter
from monitoring.log_store import PredictionLogStore, PredictionRecord
from monitoring.log_writer import PredictionLogWriter
from zenloop.admin_token import ADMIN_TOKEN_ENV, resolve_admin_token
from zenloop.config import ColumnRole, ServingConfig
from zenloop.paths import local_tracking_uri
from zenloop.tracking import ZENML_VERSION_TAG

logger = logging.getLogger(__name__)

CONFIG_ENV = "ZENLOOP_SERVING_CONFIG"
INLINE_BATCH_ROWS = 256  # larger batches are predicted in a worker thread
FEEDBACK_FLUSH_TIMEOUT_S = 10.0
JSON = "application/json"
ROW_SCHEMA_REF = "#/components/schemas/PredictRow"


def _validation_errors(exc: ValidationError, prefix: tuple) -> list[dict[str, Any]]:
    """FastAPI-style 422 details without echoing input values (they may be NaN or huge)."""
    return [{"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]


class Service:
    """Everything one worker process holds: the model, the log and the metrics."""

    def __init__(self, config: ServingConfig):
        self.config = config
        self.holder = ModelHolder(config)
        self.store = PredictionLogStore(config.log.database_url) if config.log.enabled else None
        self.events = EventEmitter(config.events)
        self.writer = (
            PredictionLogWriter(self.store, config.log, on_written=self.events.rows_written)
            if self.store is not None
            else None
        )
        self.metrics = ServiceMetrics(self._log_stats)

    @property
    def admin_token(self) -> str | None:
        """Resolved per call: a token file created after start-up takes effect at once."""
        return resolve_admin_token(self.config.admin_token)

    def _log_stats(self) -> dict[str, float]:
        if self.writer is None:
            return {}
        stats = {k: float(v) for k, v in asdict(self.writer.stats).items()}
        return stats | {"events_sent": self.events.sent, "events_failed": self.events.failed}

    def model(self) -> ServedModel:
        model = self.holder.current
        if model is None:
            raise HTTPException(503, "no model is loaded yet; see /ready")
        return model

    async def log(self, records: list[PredictionRecord]) -> None:
        """Queue records; under back-pressure wait in a thread, then refuse with 503."""
        if self.writer is None or self.writer.submit(records, wait=False):
            return
        if not await run_in_threadpool(self.writer.submit, records):
            raise HTTPException(
                503, "the prediction log backlog is full; the prediction was not served, retry"
            )

    def swapped(self, app: FastAPI, model: ServedModel) -> None:
        self.metrics.reloads.inc()
        if model.version.isdigit():
            self.metrics.model_version.set(int(model.version))
        app.openapi_schema = None  # the row schema in /docs follows the served model


def _record_predictions(
    service: Service, model: ServedModel, values: list[dict], labels: list, probas: list | None
) -> tuple[list[PredictionRecord], list[dict[str, Any]]]:
    now = time.time()
    batch_id = uuid4().hex
    records, out = [], []
    for i, (row, label) in enumerate(zip(values, labels, strict=True)):
        request_id = f"{batch_id}-{i}" if len(values) > 1 else batch_id
        proba = probas[i] if probas is not None else None
        records.append(PredictionRecord(request_id, now, model.version, row, label, proba))
        item = {"request_id": request_id, "prediction": label}
        if proba is not None:
            item["probabilities"] = proba
        out.append(item)
    service.metrics.predictions.labels(model.version).inc(len(values))
    return records, out


def create_app(config: ServingConfig | None = None) -> FastAPI:
    if config is None:
        raw = os.environ.get(CONFIG_ENV)
        config = ServingConfig.model_validate_json(raw) if raw else ServingConfig()
    service = Service(config)

    async def load_in_background(selection: Selection | None = None) -> ServedModel:
        model = await run_in_threadpool(service.holder.load, selection)
        service.swapped(app, model)
        return model

    async def poll_registry() -> None:
        while True:
            await asyncio.sleep(config.reload_interval_s)
            try:
                previous = service.holder.current
                if await run_in_threadpool(service.holder.refresh):
                    service.swapped(app, service.holder.current)
                    logger.info(
                        "hot reload: %s -> %s",
                        previous.version if previous else None,
                        service.holder.current.version,
                    )
            except Exception:
                logger.exception("registry poll failed; still serving the current model")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        mlflow.set_tracking_uri(config.tracking_uri or local_tracking_uri())
        if service.writer is not None:
            service.writer.start()
        try:
            await load_in_background()
        except Exception as exc:  # e.g. no champion yet: start unready, the poller retries
            logger.warning("no model loaded at start-up (%s); /ready stays 503", exc)
        poller = asyncio.create_task(poll_registry())
        yield
        poller.cancel()
        if service.writer is not None:
            await run_in_threadpool(service.writer.close)

    app = FastAPI(
        title="zenloop prediction service",
        description="Serves the zenloop champion, logs every prediction, hot-reloads.",
        version="1",
        lifespan=lifespan,
    )
    app.state.service = service

    def require_admin(
        authorization: Annotated[str | None, Header()] = None,
        x_admin_token: Annotated[str | None, Header()] = None,
    ) -> None:
        expected = service.admin_token
        if not expected:
            raise HTTPException(
                403,
                f"admin endpoints are disabled: no admin token is configured ({ADMIN_TOKEN_ENV})",
            )
        given = x_admin_token
        if given is None and authorization and authorization.lower().startswith("bearer "):
            given = authorization[len("bearer ") :]
        if not given:
            raise HTTPException(
                401,
                "admin token required: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(403, "invalid admin token")

    def single_worker() -> None:
        """With several workers an admin call would switch only the worker it reached."""
        if config.workers > 1:
            raise HTTPException(
                409,
                "this service runs several workers: pin a version in its config, or move the"
                " followed alias (each worker polls the registry)",
            )

    admin = [Depends(require_admin)]
    admin_load = [Depends(require_admin), Depends(single_worker)]

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error; the service log has the details"}, 500)

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["service"], responses={503: {"description": "no model loaded"}})
    async def ready() -> dict[str, str]:
        model = service.model()
        return {"status": "ready", "model_version": model.version}

    row_body = {
        "requestBody": {"required": True, "content": {JSON: {"schema": {"$ref": ROW_SCHEMA_REF}}}}
    }
    batch_body = {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["rows"],
                        "properties": {
                            "rows": {
                                "type": "array",
                                "items": {"$ref": ROW_SCHEMA_REF},
                                "maxItems": config.max_batch_rows,
                            }
                        },
                    }
                }
            },
        }
    }

    @app.post(
        "/predict",
        tags=["predictions"],
        response_model=PredictResponse,
        openapi_extra=row_body,
        responses={422: {"description": "invalid row"}, 503: {"description": "not ready"}},
    )
    async def predict(request: Request) -> Response:
        model = service.model()
        try:
            row = model.rows.row.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(_validation_errors(exc, ("body",))) from None
        values = [row.__dict__]
        labels, probas = model.compiled.predict(values)
        records, out = _record_predictions(service, model, values, labels, probas)
        await service.log(records)
        return Response(to_json({**out[0], "model_version": model.version}), media_type=JSON)

    @app.post(
        "/predict_batch",
        tags=["predictions"],
        response_model=PredictBatchResponse,
        openapi_extra=batch_body,
        responses={413: {"description": "too many rows"}, 422: {"description": "invalid rows"}},
    )
    async def predict_batch(request: Request) -> Response:
        model = service.model()
        try:  # one pass in pydantic-core: parse, validate every row, check the row count
            batch = model.rows.batch.model_validate_json(await request.body())
        except ValidationError as exc:
            too_long = [
                e for e in exc.errors() if e["type"] == "too_long" and e["loc"] == ("rows",)
            ]
            if too_long:
                rows = too_long[0]["ctx"]["actual_length"]
                raise HTTPException(
                    413, f"batch of {rows} rows exceeds the limit of {config.max_batch_rows} rows"
                ) from None
            raise RequestValidationError(_validation_errors(exc, ("body",))) from None
        values = [row.__dict__ for row in batch.rows]
        if len(values) > INLINE_BATCH_ROWS:
            labels, probas = await run_in_threadpool(model.compiled.predict, values)
        else:
            labels, probas = model.compiled.predict(values)
        records, out = _record_predictions(service, model, values, labels, probas)
        await service.log(records)
        return Response(
            to_json({"model_version": model.version, "predictions": out}), media_type=JSON
        )

    @app.post("/feedback", tags=["predictions"], dependencies=admin)
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        """Ground truth for earlier request ids; stored beside the logged predictions."""
        model = service.model()
        if service.store is None:
            raise HTTPException(409, "the prediction log is disabled in this service's config")
        errors = _ground_truth_errors(model, body)
        if errors:
            raise RequestValidationError(errors)
        if not await run_in_threadpool(service.writer.wait_written, FEEDBACK_FLUSH_TIMEOUT_S):
            raise HTTPException(
                503, "the prediction log is behind; feedback was not stored, retry shortly"
            )
        items = [(item.request_id, item.ground_truth) for item in body.items]
        unknown = await run_in_threadpool(service.store.add_feedback, items, time.time())
        return FeedbackResponse(
            stored=len(set(dict(items))) - len(unknown), unknown_request_ids=unknown
        )

    @app.get("/model-info", tags=["models"])
    async def model_info() -> ModelInfo:
        model = service.model()
        return ModelInfo(
            name=model.name,
            version=model.version,
            alias=model.alias,
            source=model.source,
            mlflow_run_id=model.run_id,
            zenml_model_version=model.zenml_model_version,
            training_metrics=model.metrics,
            task=model.schema.task,
            target=model.schema.target,
            classes=model.schema.classes,
            feature_schema=[
                {"name": c.name, "role": c.role.value, "dtype": c.dtype, "required": not c.nullable}
                for c in model.schema.columns
                if c.role != ColumnRole.IGNORE
            ],
            loaded_at=model.loaded_at,
        )

    @app.get("/models", tags=["models"])
    async def models() -> list[RegisteredVersion]:
        return await run_in_threadpool(_registered_versions, config.model.name, service)

    @app.post("/models/load", tags=["models"], dependencies=admin_load)
    async def load_model(
        alias: Annotated[str | None, Query(pattern=ALIAS_PATTERN.pattern)] = None,
        version: Annotated[str | None, Query(pattern=VERSION_PATTERN.pattern)] = None,
    ) -> ModelLoadResponse:
        """Serve another registered version (by alias, which is then followed, or pinned)."""
        if (alias is None) == (version is None):
            raise RequestValidationError(
                [
                    {
                        "loc": ["query"],
                        "msg": "give exactly one of alias or version",
                        "type": "value_error",
                    }
                ]
            )
        previous = service.holder.current
        try:
            model = await load_in_background(Selection(alias=alias, version=version))
        except Exception as exc:
            missing = getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"
            raise HTTPException(
                404 if missing else 502,
                f"cannot load {config.model.name} {alias or version}: {exc}",
            ) from None
        return _load_response(model, previous)

    @app.post("/models/reload", tags=["models"], dependencies=admin_load)
    async def reload_model() -> ModelLoadResponse:
        """Re-resolve the followed alias now instead of waiting for the next poll."""
        previous = service.holder.current
        try:
            if await run_in_threadpool(service.holder.refresh):
                service.swapped(app, service.holder.current)
        except Exception as exc:
            raise HTTPException(
                502, f"reload failed, still serving the current model: {exc}"
            ) from None
        return _load_response(service.model(), previous)

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            model = service.holder.current
            row = (
                model.rows.json_schema()
                if model
                else {"type": "object", "description": "no model loaded"}
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["PredictRow"] = row
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    paths = {route.path for route in app.routes}
    app.add_middleware(MetricsMiddleware, metrics=service.metrics, paths=paths)
    return app


def _load_response(model: ServedModel, previous: ServedModel | None) -> ModelLoadResponse:
    before = previous.version if previous else None
    return ModelLoadResponse(
        model_version=model.version, previous_version=before, changed=before != model.version
    )


def _finite_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        return False


def _ground_truth_errors(model: ServedModel, body: FeedbackRequest) -> list[dict[str, Any]]:
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


def _zenml_stages(name: str) -> dict[str, str]:
    """ZenML model-version id -> stage; empty when the ZenML store cannot be reached."""
    try:
        from zenml.client import Client

        return {str(v.id): str(v.stage) for v in Client().list_model_versions(name, size=1000)}
    except Exception:
        logger.warning("ZenML stages unavailable for %s", name, exc_info=True)
        return {}


def _registered_versions(name: str, service: Service) -> list[RegisteredVersion]:
    client = MlflowClient()
    try:
        aliases = client.get_registered_model(name).aliases
    except Exception:
        return []
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    stages = _zenml_stages(name)
    serving = service.holder.current.version if service.holder.current else None
    versions = client.search_model_versions(f"name='{name}'")
    return [
        RegisteredVersion(
            version=str(v.version),
            aliases=sorted(by_version.get(str(v.version), [])),
            stage=stages.get((v.tags or {}).get(ZENML_VERSION_TAG, "")),
            mlflow_run_id=v.run_id,
            created_at=v.creation_timestamp / 1000,
            serving=str(v.version) == serving,
        )
        for v in sorted(versions, key=lambda v: int(v.version), reverse=True)
    ]
