"""A byte limit on request bodies, enforced while reading, before anything is parsed.

A declared Content-Length over the limit is refused before one byte of the body is read; a
body without one (chunked) is counted as it arrives and refused as soon as it passes the
limit. Either way the service never holds more than the limit of any body in memory.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.schemas import JSON_MEDIA_TYPE

TOO_LARGE = 413
CONTENT_LENGTH = b"content-length"


def too_large_detail(limit: int) -> str:
    return f"request body exceeds the limit of {limit} bytes"


class BodyTooLarge(HTTPException):
    """Raised by the guarded `receive`; FastAPI answers it like any HTTPException."""

    def __init__(self, limit: int):
        # the unread rest of the body is dropped with the connection
        super().__init__(TOO_LARGE, too_large_detail(limit), headers={"Connection": "close"})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def guarded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, guarded, send)

    async def _refuse(self, send: Send) -> None:
        body = BodyTooLarge(self.max_bytes)
        payload = json.dumps({"detail": body.detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": TOO_LARGE,
                "headers": [
                    (b"content-type", JSON_MEDIA_TYPE.encode()),
                    (CONTENT_LENGTH, str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == CONTENT_LENGTH:
            try:
                return int(value)
            except ValueError:
                return None  # a malformed header: the server itself refuses such requests
    return None
