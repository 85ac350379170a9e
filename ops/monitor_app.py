"""The monitor service's HTTP face: `POST /events` from the service, `GET /health`.

A small FastAPI app like the service's and the page's: an event needs the service's admin
token (the service holds it, a stranger does not), checked by the one admin check, and a
body of at most `MAX_EVENT_BYTES` (an event is a few numbers; a bigger one is refused
unread). The health answer is the monitor's latest heartbeat.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from api.security import bearer, check_admin

MAX_EVENT_BYTES = 4_096


def create_app(token: str, on_event: Callable[[], None], heartbeat: Callable[[], dict]) -> FastAPI:
    """`on_event` is called for each accepted event; `heartbeat()` is the health answer."""

    def small_body(request: Request) -> None:
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_EVENT_BYTES:
            raise HTTPException(413, f"an event body is at most {MAX_EVENT_BYTES} bytes")

    def from_the_service(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> None:
        check_admin(token, credentials)

    app = FastAPI(title="zenloop monitor", docs_url=None, redoc_url=None)

    # the size first: a big body is refused before anything else is looked at
    @app.post(
        "/events", status_code=202, dependencies=[Depends(small_body), Depends(from_the_service)]
    )
    def events() -> dict:
        """New traffic was logged: the monitor checks once more (events are coalesced)."""
        on_event()
        return {"accepted": True}

    @app.get("/health")
    def health() -> dict:
        """The monitor's latest heartbeat: alive, checks, failures, the log it reads."""
        return heartbeat()

    return app
