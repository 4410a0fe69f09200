"""The web dashboard, served at ``/``: one static page (``static/index.html``, the
JavaScript modules it loads from ``static/app.js``, ``style.css``; plain JavaScript, no
build step, nothing loaded from other hosts) that reads and acts through the REST API
under ``/api/``.

The page itself holds no data, so it is served without a token; the script asks for one
when the API answers 401 and sends it as a bearer token. The headers below forbid every
source but this server, inline scripts included, as a second line of defence behind the
script's rule of rendering every value as text.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"

#: Sent with the page: scripts, styles and requests only from this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

JAVASCRIPT = "text/javascript; charset=utf-8"


class _Assets(StaticFiles):
    """The page's assets, scripts always as JavaScript: a browser runs a module script only
    when its type says JavaScript, and the type of other files is guessed from the
    system's tables (which on some Windows machines say ``text/plain`` for ``.js``)."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if str(full_path).endswith(".js") and "content-type" in response.headers:
            response.headers["content-type"] = JAVASCRIPT
        return response


def mount(app: FastAPI) -> None:
    """Serve the dashboard page at ``/`` and its assets under ``/static/``."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=SECURITY_HEADERS)

    app.mount("/static", _Assets(directory=STATIC), name="static")
