"""Liveness, readiness and Prometheus metrics: what orchestrators and scrapers call."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.schemas import error_responses
from api.service import UNAVAILABLE, ServiceDep

router = APIRouter(tags=["service"])


@router.get("/health")
async def health() -> dict[str, str]:  # the process answers; says nothing about the model
    return {"status": "ok"}


@router.get("/ready", responses=error_responses(503))
async def ready(service: ServiceDep) -> dict[str, str]:
    """503 without a model, with a dead log writer, or while the log cannot be written."""
    reason = service.unready_reason()
    if reason is not None:
        raise HTTPException(UNAVAILABLE, reason)
    return {"status": "ready", "model_version": service.model().version}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
