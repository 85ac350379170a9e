"""The page's own app: read-only JSON endpoints under /api, and the Dash page at /.

Every GET is read-only. The one state-changing endpoint (POST /api/models/reload) needs
the service's admin token: 401 without one, 403 with a wrong one or when none is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ui.backend import OpsBackend
from ui.config import UiConfig
from ui.page import build_page
from ui.records import Order
from zenloop.admin_token import refusal, resolve_admin_token

MAX_LIMIT = 1_000
DEFAULT_LIMIT = 50

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many items")]
Ordering = Annotated[Order, Query(description="newest first (default) or oldest first")]


# auto_error=False: a missing token is answered by the check (401, not FastAPI's 403)
bearer = HTTPBearer(scheme_name="AdminBearer", auto_error=False)


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    """The service's own admin token (the core's one check): 401 when none was sent, 403
    when wrong or unset."""
    config: UiConfig = request.app.state.backend.config
    token = credentials.credentials if credentials else None
    refused = refusal(resolve_admin_token(config.admin_token), [token])
    if refused is not None:
        raise HTTPException(refused.status, refused.detail)
    return token


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
