"""What is served and what could be: /model-info, /models, and the admin /models/load, /reload."""

from __future__ import annotations

import logging
import os
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from api.model_state import (
    ALIAS_PATTERN,
    MISSING_ERROR_CODES,
    VERSION_PATTERN,
    Selection,
    ServedModel,
)
from api.schemas import ModelInfo, ModelLoadResponse, RegisteredVersion, error_responses
from api.security import ADMIN
from api.service import Service, ServiceDep
from zenloop.config import ColumnRole
from zenloop.tracking import ZENML_VERSION_TAG

logger = logging.getLogger(__name__)

ZENML_VERSIONS_LISTED = 1000  # ZenML page size when looking up stages; more than ever trained

router = APIRouter(tags=["models"])


@router.get("/model-info", responses=error_responses(503))
async def model_info(service: ServiceDep) -> ModelInfo:
    """What is served, and whether the registry answered the last poll."""
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
        metric=model.schema.primary_metric.name,
        time_column=model.schema.time_column,
        suspected_leaks=model.schema.suspected_leaks(),
        loaded_at=model.loaded_at,
        registry=service.registry.state,
        worker_pid=os.getpid(),
    )


@router.get("/models", responses=error_responses(502))
async def models(service: ServiceDep) -> list[RegisteredVersion]:
    """The registered versions; 502 when the registry cannot be reached."""
    return await run_in_threadpool(_registered_versions, service)


@router.post(
    "/models/load", dependencies=ADMIN, responses=error_responses(401, 403, 404, 422, 502, 503)
)
async def load_model(
    service: ServiceDep,
    alias: Annotated[str | None, Query(pattern=ALIAS_PATTERN.pattern)] = None,
    version: Annotated[str | None, Query(pattern=VERSION_PATTERN.pattern)] = None,
) -> ModelLoadResponse:
    """Serve another registered version (by alias, which is then followed, or pinned).

    With several workers, the answer comes once every worker serves it.
    """
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
        model = await service.load(Selection(alias=alias, version=version))
    except Exception as exc:
        # no such version, or no (validated) version behind the alias
        missing = (
            isinstance(exc, LookupError) or getattr(exc, "error_code", "") in MISSING_ERROR_CODES
        )
        raise HTTPException(
            404 if missing else 502,
            f"cannot load {service.config.model.name} {alias or version}: {exc}",
        ) from None
    return _load_response(model, previous, await service.share())


@router.post("/models/reload", dependencies=ADMIN, responses=error_responses(401, 403, 502, 503))
async def reload_model(service: ServiceDep) -> ModelLoadResponse:
    """Re-resolve the followed alias now instead of waiting for the next poll."""
    previous = service.holder.current
    try:
        await service.refresh()
    except Exception as exc:
        service.registry.failed(exc, previous.version if previous else None)
        raise HTTPException(502, f"reload failed, still serving the current model: {exc}") from None
    service.registry.succeeded()
    return _load_response(service.model(), previous, await service.share())


def _load_response(
    model: ServedModel, previous: ServedModel | None, workers: int
) -> ModelLoadResponse:
    before = previous.version if previous else None
    return ModelLoadResponse(
        model_version=model.version,
        previous_version=before,
        changed=before != model.version,
        workers_serving=workers,
    )


def _zenml_stages(name: str) -> dict[str, str]:
    """ZenML model-version id -> stage; empty when the ZenML store cannot be reached.

    ZenML is imported here, not at module level: importing it is slow and the hot path
    never needs it.
    """
    try:
        from zenml.client import Client

        versions = Client().list_model_versions(name, size=ZENML_VERSIONS_LISTED)
        return {str(v.id): str(v.stage) for v in versions}
    except Exception:
        logger.warning("ZenML stages unavailable for %s", name, exc_info=True)
        return {}


def _registered_versions(service: Service) -> list[RegisteredVersion]:
    """The registry's versions of the served model's name, newest first (blocking calls)."""
    name = service.config.model.name
    client = MlflowClient()
    try:
        aliases = client.get_registered_model(name).aliases
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException as exc:
        if exc.error_code in MISSING_ERROR_CODES:  # no such model registered yet
            return []
        raise HTTPException(502, f"the model registry cannot be reached: {exc}") from None
    except Exception as exc:
        raise HTTPException(502, f"the model registry cannot be reached: {exc}") from None
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    stages = _zenml_stages(name)
    serving = service.holder.current.version if service.holder.current else None
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
