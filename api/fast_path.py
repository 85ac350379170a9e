"""POST /predict and /predict_batch served straight from ASGI, ahead of Starlette's router.

For a single-row prediction, the router, the dependency injection and the exception
middlewares cost more than the model and the log together (py-spy: about 35% of the event
loop's time at concurrency 8). The routes in `api.routes.predictions` stay declared: the
OpenAPI schema, other methods on these paths and `fast_path: false` in the serving config
are FastAPI's. The prediction itself is the routes' own `respond`, and its errors are
answered by the app's own exception handlers, so the answers are the same either way; an
error without a handler is re-raised to Starlette's server-error middleware, as from a
route.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.routes.predictions import respond
from api.service import Service

# path -> whether its body is a batch
ENDPOINTS = {"/predict": False, "/predict_batch": True}
Handler = Callable[[Request, Exception], Any]
SERVER_ERROR = 500


class PredictionFastPath:
    def __init__(self, app: ASGIApp, service: Service, handlers: Mapping[Any, Handler]):
        self.app = app
        self.service = service
        self.handlers = handlers  # the app's, read per error: handlers added later count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        batch = _endpoint(scope)
        if batch is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await respond(request, self.service, batch)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        """The handler Starlette's exception middleware would pick: status code, then class.

        `Exception` (and 500) belong to the server-error middleware, which answers after the
        exception propagates.
        """
        if isinstance(exc, HTTPException) and exc.status_code != SERVER_ERROR:
            handler = self.handlers.get(exc.status_code)
            if handler is not None:
                return handler
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in self.handlers:
                return self.handlers[cls]
        return None


def _endpoint(scope: Scope) -> bool | None:
    """Whether this is a batch prediction; None when it is not a prediction request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):  # behind a proxy that mounts the service at a prefix
        path = path[len(root) :]
    return ENDPOINTS.get(path)
