"""Liveness, readiness and Prometheus metrics: what orchestrators and scrapers call."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.service import ServiceDep

router = APIRouter(tags=["service"])


@router.get("/health")
async def health() -> dict[str, str]:  # the process answers; says nothing about the model
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "no model loaded"}})
async def ready(service: ServiceDep) -> dict[str, str]:
    model = service.model()
    return {"status": "ready", "model_version": model.version}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
