"""tenuto over HTTP: the REST API, Durable Functions routes, metrics and dashboard."""

from .app import create_app
from .common import ApiError
from .middleware import parse_tokens
from .server import serve

__all__ = ["ApiError", "create_app", "parse_tokens", "serve"]
