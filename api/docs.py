"""Offline API docs: Swagger UI and ReDoc served from the `fastapi-offline` package's files.

FastAPI's default /docs and /redoc pages load their scripts and styles from a CDN, so on
a machine without internet they are blank. Here they are the same pages with their files
served by the service itself. The files come from `fastapi-offline`, which ships Swagger
UI 5 (needed for FastAPI's OpenAPI 3.1; `swagger-ui-bundle` ships 4.x, which refuses it)
and ReDoc; only its static folder is used, the app stays a plain FastAPI.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
STATIC_PATH = "/docs-static"
STATIC_NAME = "docs-static"


def add_offline_docs(app: FastAPI) -> None:
    """Mount the docs' files and the /docs and /redoc pages; create the app with
    docs_url=None and redoc_url=None."""
    app.mount(STATIC_PATH, StaticFiles(directory=ASSETS), name=STATIC_NAME)
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{STATIC_PATH}/favicon.png"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - docs",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=favicon,
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{STATIC_PATH}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,  # fonts from Google are a request off this machine
        )
