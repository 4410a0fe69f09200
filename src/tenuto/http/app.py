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

import hmac
import logging
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import _json, errors
from ..client import Client
from ..errors import InvalidJSON

log = logging.getLogger("tenuto.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths served without a token: the dashboard's static shell, which holds no data and
#: asks for the token itself.
PUBLIC_PATHS = ("/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)
#: Routes of the Durable Functions API, which also accept the token as a function key
#: (``?code=`` or the ``x-functions-key`` header), as Durable Functions clients send it.
DURABLE_PREFIX = "/runtime/webhooks/durabletask/"

DEFAULT_MAX_BODY = 1024 * 1024


class _JSONRequest(Request):
    """A request whose JSON body is parsed with tenuto's value rules (:mod:`tenuto._json`):
    a body nested too deeply for Python, holding a lone surrogate or a number no reader
    decodes, is a 422 that says so, instead of a parser's failure."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                # The values in a body are checked where they are used (the input of
                # orchestrator X...); the body itself only has to be decodable.
                self._json = _json.parse(await self.body(), "the request body", max_depth=None)
            except InvalidJSON as exc:
                # FastAPI turns anything but an HTTPException raised here into a 400.
                raise StarletteHTTPException(422, str(exc)) from None
        return self._json


class JSONRoute(APIRoute):
    """The routes of tenuto's API: request bodies are read as :class:`_JSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_JSONRequest(request.scope, request.receive))

        return route


class ApiError(Exception):
    """An error response: ``status``, a short machine-readable ``code``, a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


_ERRORS: list[tuple[type[Exception], int, str]] = [
    (errors.InstanceNotFound, 404, "not_found"),
    (errors.InstanceFinished, 409, "instance_finished"),
    (errors.InstanceNotFinished, 409, "instance_not_finished"),
    (errors.InstanceExists, 409, "instance_exists"),
    (errors.UnknownOrchestrator, 422, "unknown_orchestrator"),
    (errors.InvalidCursor, 422, "invalid_cursor"),
    (errors.InvalidJSON, 422, "invalid_json"),
    # Only values tenuto refused are the caller's fault: any other ValueError or
    # TypeError is a bug, answered 500 like every unexpected exception.
    (errors.ValidationError, 422, "invalid"),
]


def parse_tokens(spec: str | list[str] | None) -> dict[str, str]:
    """Tokens from ``NAME=SECRET`` entries (comma-separated or a list); a bare secret
    is named ``api``. Returns ``{secret: name}``."""
    if not spec:
        return {}
    items = spec.split(",") if isinstance(spec, str) else [s for x in spec for s in x.split(",")]
    tokens: dict[str, str] = {}
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, sep, secret = item.partition("=")
        if not sep:
            name, secret = "api", item
        if not secret or not name:
            raise errors.ValidationError(f"invalid token {item!r}: write NAME=SECRET")
        tokens[secret] = name
    return tokens


class _Guard:
    """ASGI middleware: bearer-token check and request body limit, for every route."""

    def __init__(self, app: ASGIApp, tokens: dict[str, str], max_body: int) -> None:
        self.app = app
        self.tokens = [(secret.encode(), name) for secret, name in tokens.items()]
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        scope.setdefault("state", {})
        if self.tokens and not (path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)):
            name = self._token_name(headers.get("authorization", b""))
            if name is None and path.startswith(DURABLE_PREFIX):
                # Durable Functions clients authenticate with a function key instead.
                name = self._key_name(scope, headers)
            if name is None:
                await _send_error(
                    send,
                    401,
                    "unauthorized",
                    "this server needs a bearer token: send 'Authorization: Bearer <token>'",
                    {"www-authenticate": "Bearer"},
                )
                return
            scope["state"]["actor"] = name
        if scope.get("method") in _UNSAFE and _cross_site(headers):
            await _send_error(
                send, 403, "cross_site", "a state-changing request from another site was refused"
            )
            return
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                await _send_error(send, 400, "malformed", "invalid Content-Length header")
                return
            if too_big:
                await _send_error(send, 413, "too_large", self._too_large())
                return
            await self.app(scope, receive, send)
            return
        # No length given (chunked): read the body here, so the limit holds all the same.
        messages = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                await _send_error(send, 413, "too_large", self._too_large())
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    def _too_large(self) -> str:
        return f"the request body is larger than the limit of {self.max_body} bytes"

    def _token_name(self, header: bytes) -> str | None:
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() != b"bearer" or not presented:
            return None
        return self._match(presented.strip())

    def _key_name(self, scope: Scope, headers: dict[str, bytes]) -> str | None:
        key = headers.get("x-functions-key")
        if key is None:
            codes = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("code")
            key = codes[0].encode() if codes else None
        return None if not key else self._match(key)

    def _match(self, presented: bytes) -> str | None:
        found = None
        for secret, name in self.tokens:  # compare with every token, in constant time
            if hmac.compare_digest(secret, presented):
                found = name
        return found


_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _cross_site(headers: dict[str, bytes]) -> bool:
    """Whether a browser sent this request on behalf of another site (CSRF).

    Browsers say where a request comes from (``Sec-Fetch-Site``, ``Origin``); other
    clients send neither. Checked even without tokens, so that a web page cannot drive a
    tenuto server on the operator's machine or network.
    """
    if headers.get("sec-fetch-site") == b"cross-site":
        return True
    origin = headers.get("origin")
    if origin is None or origin == b"null":
        return origin == b"null"
    host = headers.get("host", b"")
    return urlsplit(origin.decode("latin-1")).netloc.encode("latin-1") != host


async def _send_error(
    send: Send, status: int, code: str, message: str, extra: dict[str, str] | None = None
) -> None:
    response = error_response(status, code, message)
    for key, value in (extra or {}).items():
        response.headers[key] = value
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - responses never read
    return {"type": "http.disconnect"}


def actor(request: Request, default: str | None = None) -> str:
    """Who is acting: the token's name when tokens are configured, else ``default`` (a
    name the caller gave) or ``http@<client address>``."""
    named = request.scope.get("state", {}).get("actor")
    if named:
        return str(named)
    if default:
        return default
    host = request.client.host if request.client else "unknown"
    return f"http@{host}"


def get_client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def create_app(
    client: Client,
    *,
    tokens: dict[str, str] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    dashboard: bool = True,
) -> Any:
    """The ASGI application for ``client``'s database."""
    from . import api, durable, metrics_route

    app = FastAPI(
        title="tenuto",
        version=_version(),
        description="Durable orchestrations with first-class pause and resume.",
        docs_url="/docs" if dashboard else None,
        redoc_url=None,
    )
    app.state.client = client
    app.state.tokens_configured = bool(tokens)
    app.include_router(api.router)
    app.include_router(durable.router)
    app.include_router(metrics_route.router)
    if dashboard:
        from . import dashboard as dash

        dash.mount(app)
    _install_error_handlers(app, client)
    _declare_security(app, bool(tokens))
    return _Guard(app, tokens or {}, max_body)


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
