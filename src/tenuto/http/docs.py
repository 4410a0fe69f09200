"""The interactive API documentation at ``/docs``, offline: Swagger UI's script and
styles are served from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which reads
OpenAPI 3.1) under ``/docs-assets/``, never from a CDN (a server without internet
access, or on a strict network, still shows them)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the assets are served (public: they hold no data).
ASSETS = "/docs-assets"


def mount(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` for ``app``'s OpenAPI document."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            # Relative: they follow the page wherever a proxy mounts the server.
            swagger_js_url=f"{ASSETS.lstrip('/')}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS.lstrip('/')}/swagger-ui.css",
            swagger_favicon_url="data:,",
        )
