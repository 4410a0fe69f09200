"""tenuto over HTTP: the ASGI application serving the REST API, the Durable Functions
routes, metrics and the dashboard (:func:`create_app`). ``tenuto serve`` runs it under
uvicorn next to a worker (:mod:`tenuto.cli.serving`)."""

from .app import create_app
from .common import ApiError
from .middleware import parse_tokens

__all__ = ["ApiError", "create_app", "parse_tokens"]
