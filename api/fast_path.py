"""POST /predict and /predict_batch served straight from ASGI, ahead of Starlette's router.

For a single-row prediction, the router, the dependency injection and the exception
middlewares cost more than the model and the log together (py-spy: about 35% of the event
loop's time at concurrency 8). The routes in `api.routes.predictions` stay declared: the
OpenAPI schema, other methods on these paths and `fast_path: false` in the serving config
are FastAPI's. The prediction itself is the same `answer`, sent with the headers a
Starlette `Response` sends, and its errors are answered by the app's own exception
handlers, so the answers are the same either way; an error without a handler is re-raised
to Starlette's server-error middleware, as from a route.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.routes.predictions import BAD_REQUEST, answer
from api.schemas import JSON_MEDIA_TYPE
from api.service import Service

# path -> whether its body is a batch
ENDPOINTS = {"/predict": False, "/predict_batch": True}
Handler = Callable[[Request, Exception], Any]
OK, SERVER_ERROR = 200, 500
JSON_CONTENT_TYPE = (b"content-type", JSON_MEDIA_TYPE.encode())


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
        try:
            body = await _read_body(receive)
            payload = await answer(self.service, body, batch)
        except ClientDisconnect:  # the client left mid-body: nobody is there to answer
            await Response(status_code=BAD_REQUEST)(scope, receive, send)
            return
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            request = Request(scope, receive)
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send)
            return
        headers = [(b"content-length", str(len(payload)).encode()), JSON_CONTENT_TYPE]
        await send({"type": "http.response.start", "status": OK, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

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


async def _read_body(receive: Receive) -> bytes:
    """The whole body, as `Request.body` reads it (ClientDisconnect when the client left)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _endpoint(scope: Scope) -> bool | None:
    """Whether this is a batch prediction; None when it is not a prediction request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):  # behind a proxy that mounts the service at a prefix
        path = path[len(root) :]
    return ENDPOINTS.get(path)
