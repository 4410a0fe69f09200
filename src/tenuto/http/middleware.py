"""The checks every request passes before it reaches a route, as small pure ASGI
middlewares (pure ASGI, not Starlette's ``BaseHTTPMiddleware``, so that a request costs
a function call per check and the body is never buffered unless it must be):

* :class:`RequireToken`: a bearer token, when the server has tokens (401);
* :class:`RefuseCrossSite`: no state-changing request a browser sends for another site
  (403), tokens or not;
* :class:`LimitBody`: no body over the limit (413), whether it declares its length or not.

:func:`tenuto.http.create_app` installs them in that order, outermost first.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ValidationError
from .common import error_response

#: Paths served without a token: the dashboard's static shell, which holds no data and
#: asks for the token itself.
PUBLIC_PATHS = ("/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/", "/docs-assets/")
#: Routes of the Durable Functions API, which also accept the token as a function key
#: (``?code=`` or the ``x-functions-key`` header), as Durable Functions clients send it.
DURABLE_PREFIX = "/runtime/webhooks/durabletask/"

DEFAULT_MAX_BODY = 1024 * 1024

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
            raise ValidationError(f"invalid token {item!r}: write NAME=SECRET")
        tokens[secret] = name
    return tokens


class RequireToken:
    """401 for a request without one of ``tokens`` (``{secret: name}``) as a bearer token,
    except for the dashboard's public shell; the Durable Functions routes also take it as
    a function key. The token's name is the request's actor (``scope["state"]["actor"]``,
    read by :func:`tenuto.http.common.actor`)."""

    def __init__(self, app: ASGIApp, tokens: dict[str, str]) -> None:
        self.app = app
        self.tokens = [(secret.encode(), name) for secret, name in tokens.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        name = self._token_name(_header(scope, b"authorization") or b"")
        if name is None and path.startswith(DURABLE_PREFIX):
            # Durable Functions clients authenticate with a function key instead.
            name = self._key_name(scope)
        if name is None:
            await _send_error(
                scope,
                receive,
                send,
                401,
                "unauthorized",
                "this server needs a bearer token: send 'Authorization: Bearer <token>'",
                {"www-authenticate": "Bearer"},
            )
            return
        scope.setdefault("state", {})["actor"] = name
        await self.app(scope, receive, send)

    def _token_name(self, header: bytes) -> str | None:
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() != b"bearer" or not presented:
            return None
        return self._match(presented.strip())

    def _key_name(self, scope: Scope) -> str | None:
        key = _header(scope, b"x-functions-key")
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


class RefuseCrossSite:
    """403 for a state-changing request that a browser sent on behalf of another site
    (CSRF).

    Browsers say where a request comes from (``Sec-Fetch-Site``, ``Origin``); other
    clients send neither. Installed even without tokens, so that a web page cannot drive a
    tenuto server on the operator's machine or network.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        unsafe = scope["type"] == "http" and scope.get("method") in _UNSAFE
        if unsafe and _cross_site(_headers(scope)):
            await _send_error(
                scope,
                receive,
                send,
                403,
                "cross_site",
                "a state-changing request from another site was refused",
            )
            return
        await self.app(scope, receive, send)


def _cross_site(headers: dict[bytes, bytes]) -> bool:
    if headers.get(b"sec-fetch-site") == b"cross-site":
        return True
    origin = headers.get(b"origin")
    if origin is None or origin == b"null":
        return origin == b"null"
    host = headers.get(b"host", b"")
    return urlsplit(origin.decode("latin-1")).netloc.encode("latin-1") != host


class LimitBody:
    """413 for a request body over ``max_body`` bytes: refused at once when its
    ``Content-Length`` says so (400 when that header is not a number), and counted as it
    arrives when it has no length (chunked), so that the limit holds all the same."""

    def __init__(self, app: ASGIApp, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                await _send_error(
                    scope, receive, send, 400, "malformed", "invalid Content-Length header"
                )
                return
            if too_big:
                await _send_error(scope, receive, send, 413, "too_large", self._too_large())
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
                await _send_error(scope, receive, send, 413, "too_large", self._too_large())
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    def _too_large(self) -> str:
        return f"the request body is larger than the limit of {self.max_body} bytes"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name (the last one of a repeated name)."""
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _header(scope: Scope, name: bytes) -> bytes | None:
    """One header of the request (``name`` in lower case; the last one if repeated),
    without building them all: most checks need one."""
    found = None
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            found = value
    return found


async def _send_error(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    message: str,
    extra: dict[str, str] | None = None,
) -> None:
    response = error_response(status, code, message)
    for key, value in (extra or {}).items():
        response.headers[key] = value
    await response(scope, receive, send)
