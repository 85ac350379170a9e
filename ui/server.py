"""The page's own app: read-only JSON endpoints under /api, and the Dash page at /.

Every GET is read-only. The one state-changing endpoint (POST /api/models/reload) needs
the service's admin token: 401 without one, 403 with a wrong one or when none is set.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from ui.backend import OpsBackend
from ui.config import UiConfig
from ui.page import build_page
from ui.records import Order
from zenloop.admin_token import ADMIN_TOKEN_ENV, resolve_admin_token

MAX_LIMIT = 1_000
DEFAULT_LIMIT = 50
BEARER = "Bearer "

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many items")]
Ordering = Annotated[Order, Query(description="newest first (default) or oldest first")]


def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The service's own admin token: 401 when none was sent, 403 when wrong or unset."""
    config: UiConfig = request.app.state.backend.config
    expected = resolve_admin_token(config.admin_token)
    if not expected:
        raise HTTPException(403, f"no admin token is configured ({ADMIN_TOKEN_ENV})")
    if not authorization or not authorization.startswith(BEARER):
        raise HTTPException(401, "admin token required: send 'Authorization: Bearer <token>'")
    given = authorization.removeprefix(BEARER)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "invalid admin token")
    return given


AdminToken = Annotated[str, Depends(require_admin)]


def create_app(config: UiConfig) -> FastAPI:
    backend = OpsBackend(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        backend.sampler.start()
        yield
        backend.sampler.stop()

    app = FastAPI(
        title="zenloop operations page",
        description="Read-only JSON views of the served model, traffic, drift and the loop.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's docs load from a CDN; the endpoints are in the README
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.backend = backend

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/summary")
    def summary() -> dict[str, Any]:
        """The served model (/model-info), registered versions (/models), latest check
        and retraining, and links to the MLflow UI and the ZenML dashboard."""
        return backend.summary()

    @app.get("/api/drift")
    def drift() -> dict[str, Any]:
        """The latest check with one row per monitored column: score, threshold, verdict."""
        return backend.drift()

    @app.get("/api/checks")
    def checks(limit: Limit = DEFAULT_LIMIT, order: Ordering = "newest") -> list[dict[str, Any]]:
        """Drift checks with drifted share, decision and reason."""
        return backend.records.checks(limit, order)

    @app.get("/api/retrains")
    def retrains(limit: Limit = DEFAULT_LIMIT, order: Ordering = "newest") -> list[dict[str, Any]]:
        """Retrainings with trigger, outcome, before/after error and onset-to-serving time."""
        return backend.records.retrains(limit, order)

    @app.get("/api/history")
    def history(limit: Limit = DEFAULT_LIMIT, order: Ordering = "newest") -> dict[str, Any]:
        """Checks and retrainings together."""
        return backend.history(limit, order)

    @app.get("/api/traffic")
    def traffic(limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
        """Requests/s, latency percentiles, errors and log backlog per sample (oldest
        first), and logged predictions per minute from the prediction log."""
        return backend.traffic(limit)

    @app.post("/api/models/reload", status_code=200)
    def reload(token: AdminToken) -> JSONResponse:
        """Admin: ask the service to re-resolve its followed alias now."""
        status, body = backend.reload(token)
        return JSONResponse(body, status_code=status)

    build_page(app, backend)
    return app
