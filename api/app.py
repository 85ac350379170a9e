"""The prediction service's app factory: `uvicorn --factory api.app:create_app`.

It only wires things together: the per-process `Service` (api.service), the routers
(api.routes), the prediction fast path (api.fast_path), the byte limit, the metrics
middleware and the model-following OpenAPI (api.openapi).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import mlflow
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.body_limit import BodyLimitMiddleware
from api.docs import add_offline_docs
from api.fast_path import PredictionFastPath
from api.metrics import MetricsMiddleware
from api.openapi import ModelOpenAPI
from api.routes import feedback, models, operations, predictions
from api.service import Service
from api.settings import ServingConfig
from zenloop.paths import local_tracking_uri

logger = logging.getLogger(__name__)

CONFIG_ENV = "ZENLOOP_SERVING_CONFIG"  # the ServingConfig as JSON, for uvicorn's workers
ROUTERS = (operations.router, predictions.router, feedback.router, models.router)


def create_app(config: ServingConfig | None = None) -> FastAPI:
    """The app for one worker; without `config`, it is read from $ZENLOOP_SERVING_CONFIG."""
    if config is None:
        raw = os.environ.get(CONFIG_ENV)
        config = ServingConfig.model_validate_json(raw) if raw else ServingConfig()
    service = Service(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mlflow.set_tracking_uri(config.tracking_uri or local_tracking_uri())
        if service.writer is not None:  # replays spill files first: nothing is lost
            await run_in_threadpool(service.writer.start)
        try:
            await service.start()
        except Exception as exc:  # e.g. no champion yet: start unready, the poller retries
            logger.warning("no model loaded at start-up (%s); /ready stays 503", exc)
        # The start-up heap (the libraries, the model: some 330,000 objects) is left out of
        # garbage collection from now on: a full collection of it paused every request in
        # flight for about 130 ms, which set the p99 under load.
        gc.freeze()
        tasks = [
            asyncio.create_task(service.poll_registry()),
            asyncio.create_task(service.watch_writer()),
            asyncio.create_task(service.follow_board()),
        ]
        yield
        for task in tasks:
            task.cancel()
        if service.board is not None:
            service.board.withdraw()
        if service.writer is not None:  # drain: every served prediction reaches the log
            await run_in_threadpool(service.writer.close)

    app = FastAPI(
        title="zenloop prediction service",
        description="Serves the zenloop champion, logs every prediction, hot-reloads.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # the CDN-backed defaults are blank offline: api.docs serves them
        redoc_url=None,
    )
    app.state.service = service
    for router in ROUTERS:
        app.include_router(router)
    add_offline_docs(app)
    app.add_exception_handler(Exception, _unexpected)
    app.openapi = ModelOpenAPI(app, service)
    if config.fast_path:  # innermost: inside the byte limit and the metrics
        app.add_middleware(PredictionFastPath, service=service, handlers=app.exception_handlers)
    app.add_middleware(BodyLimitMiddleware, max_bytes=service.settings.max_body_bytes)
    # outermost: a refused oversized body is counted too
    app.add_middleware(MetricsMiddleware, metrics=service.metrics, paths=_route_paths(app))
    return app


def _route_paths(app: FastAPI) -> set[str]:
    """The paths metrics are labelled with; any other path is counted as "other".

    Read from the routers too: since FastAPI 0.137 `app.routes` holds an included router
    as one entry without a `path`.
    """
    paths = {route.path for route in app.routes if hasattr(route, "path")}
    return paths | {route.path for router in ROUTERS for route in router.routes}


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A 500 that does not leak internals; the traceback goes to the service log."""
    logger.exception("unhandled error on %s", request.url.path)
    return JSONResponse({"detail": "internal error; the service log has the details"}, 500)
