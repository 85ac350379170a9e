"""Offline API docs: Swagger UI served from the `swagger-ui-bundle` package, not a CDN.

FastAPI's default /docs and /redoc pages load their scripts and styles from a CDN, so on
a machine without internet they are blank. Here /docs is the same Swagger UI page with
its files served by the service itself; /redoc (ReDoc ships in no PyPI package we use)
sends readers to /docs.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
STATIC_PATH = "/docs-static"
STATIC_NAME = "swagger-ui"


def add_offline_docs(app: FastAPI) -> None:
    """Mount Swagger UI's files and the /docs page; create the app with docs_url=None."""
    app.mount(STATIC_PATH, StaticFiles(directory=swagger_ui_path), name=STATIC_NAME)

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - docs",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon-32x32.png",
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc() -> RedirectResponse:
        return RedirectResponse(DOCS_PATH)
