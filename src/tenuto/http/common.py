"""What every route module of the HTTP API shares: the JSON error form (:class:`ApiError`,
:func:`error_response`), request bodies read with tenuto's value rules (:class:`JSONRoute`),
who is acting (:func:`actor`) and the client behind the app (:func:`get_client`).

The route modules (``api``, ``durable``, ``metrics_route``, ``dashboard``), the middlewares
and the app assembly (``app``) import this module; it imports none of them, so imports
within ``tenuto.http`` flow one way.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import _json
from ..client import Client
from ..errors import InvalidJSON


class ApiError(Exception):
    """An error response: ``status``, a short machine-readable ``code``, a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """Every error tenuto's HTTP API answers: ``{"error": code, "message": text}``."""
    return JSONResponse({"error": code, "message": message}, status_code=status)


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
    """The :class:`~tenuto.Client` the app was created with (a FastAPI dependency)."""
    client: Client = request.app.state.client
    return client
