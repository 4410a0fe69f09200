"""The HTTP application: tenuto's REST API, the Durable Functions routes, metrics and
the dashboard, behind one authentication and error policy.

Errors are JSON ``{"error": code, "message": text}``: 400 for a malformed request (body
that is not JSON), 401 for a missing or wrong token, 403 for a state-changing request a
browser sent from another site, 404 for an unknown instance or route, 409 for an
operation the instance's state forbids, 413 for a body over the limit, 422 for values
that are well-formed but invalid (a :class:`~tenuto.ValidationError`). Bad input never
yields a 500; an internal error (any other exception, a bug) always does.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware

from .. import errors
from ..client import Client
from ..schedules import ScheduleExists, ScheduleNotFound
from . import (
    api,
    bulk_api,
    docs,
    durable,
    durable_entities,
    entities,
    events_route,
    flow_api,
    metrics_route,
    work_api,
)
from . import dashboard as dash
from .common import ApiError, error_response
from .middleware import DEFAULT_MAX_BODY, LimitBody, RefuseCrossSite, RequireToken
from .operation_ids import operation_id

log = logging.getLogger("tenuto.http")

_ERRORS: list[tuple[type[Exception], int, str]] = [
    (errors.InstanceNotFound, 404, "not_found"),
    (errors.InstanceFinished, 409, "instance_finished"),
    (errors.InstanceNotFinished, 409, "instance_not_finished"),
    (errors.InstanceExists, 409, "instance_exists"),
    (ScheduleNotFound, 404, "schedule_not_found"),
    (ScheduleExists, 409, "schedule_exists"),
    (errors.UnknownOrchestrator, 422, "unknown_orchestrator"),
    (errors.InvalidCursor, 422, "invalid_cursor"),
    (errors.InvalidJSON, 422, "invalid_json"),
    # Only values tenuto refused are the caller's fault: any other ValueError or
    # TypeError is a bug, answered 500 like every unexpected exception.
    (errors.ValidationError, 422, "invalid"),
]


def create_app(
    client: Client,
    *,
    tokens: dict[str, str] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    dashboard: bool = True,
) -> FastAPI:
    """The ASGI application for ``client``'s database: every route, behind the token
    check (when ``tokens``, ``{secret: name}`` as :func:`tenuto.http.parse_tokens` returns
    them), the cross-site check and the body limit of ``max_body`` bytes. It starts nothing:
    serve it with any ASGI server (``tenuto serve`` runs it under uvicorn)."""
    checks = [Middleware(RequireToken, tokens=tokens)] if tokens else []
    checks += [Middleware(RefuseCrossSite), Middleware(LimitBody, max_body=max_body)]
    app = FastAPI(
        title="tenuto",
        version=_version(),
        description="Durable orchestrations with first-class pause and resume.",
        docs_url=None,  # served offline by docs.mount
        generate_unique_id_function=operation_id,
        redoc_url=None,
        middleware=checks,  # outermost first: a refused token is a 401 before anything
    )
    app.state.client = client
    app.state.tokens_configured = bool(tokens)
    app.include_router(api.router)
    app.include_router(flow_api.router)
    app.include_router(work_api.router)
    app.include_router(bulk_api.router)
    app.include_router(durable.router)
    app.include_router(entities.router)
    app.include_router(durable_entities.router)
    app.include_router(metrics_route.router)
    app.include_router(events_route.router)
    if dashboard:
        dash.mount(app)
        docs.mount(app)
    _install_error_handlers(app, client)
    _declare_security(app, bool(tokens))
    return app


def _version() -> str:
    from .. import __version__

    return __version__


def _install_error_handlers(app: FastAPI, client: Client) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return error_response(400, "malformed", "the request body is not valid JSON")
        text = "; ".join(
            f"{'.'.join(str(x) for x in p.get('loc', ()) if x != 'body') or 'body'}: "
            f"{p.get('msg', 'invalid')}"
            for p in problems
        )
        return error_response(422, "invalid", text or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "malformed",
            404: "not_found",
            405: "method_not_allowed",
            422: "invalid_json",
        }.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return error_response(exc.status_code, code, message)

    for kind, status, code in _ERRORS:
        _map(app, kind, status, code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        outage = client.store.outage(exc)
        if outage is not None:
            # The database is down or locked: the client may retry, so say so (503), and
            # say why; nothing about the request itself was wrong.
            log.warning("%s %s: %s", request.method, request.url.path, outage)
            response = error_response(
                503, "unavailable", f"{outage}; the request may not have been applied, retry it"
            )
            response.headers["Retry-After"] = "1"
            return response
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        response = error_response(
            500,
            "internal",
            "internal error (a bug in tenuto, not in the request); see the server log",
        )
        # Starlette raises the exception again once this response is sent, and the server
        # then drops the connection: say so, or a client that keeps connections alive
        # sends its next request on a dead one.
        response.headers["Connection"] = "close"
        return response


def _map(app: FastAPI, kind: type[Exception], status: int, code: str) -> None:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return error_response(status, code, str(exc))

    app.add_exception_handler(kind, handler)


def _declare_security(app: FastAPI, enabled: bool) -> None:
    """Describe bearer auth in the OpenAPI document when tokens are configured."""
    if not enabled:
        return
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
