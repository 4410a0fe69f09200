"""Bearer tokens on the Durable Task protocol: the tokens of ``tenuto serve --token``.

With tokens configured, every call must carry the metadata ``authorization: Bearer
<secret>`` (Durable Task SDKs send it with ``metadata=[("authorization", "Bearer
<secret>")]``); other calls are refused ``UNAUTHENTICATED`` before any handler runs. The
token's name is the actor recorded on the pauses, resumes and terminations the call
makes. Without tokens nothing is checked, and the actor is ``grpc``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Any

import grpc

log = logging.getLogger("tenuto.grpc")

#: The actor recorded for calls when no tokens are configured.
ACTOR = "grpc"

MISSING = (
    "this server needs a bearer token: send the metadata 'authorization: Bearer <token>' "
    "(Durable Task SDKs: metadata=[('authorization', 'Bearer <token>')])"
)
WRONG = "the bearer token is not one this server accepts"


class TokenAuth:
    """Matches the bearer token a call presents; ``tokens`` maps secrets to names (as
    :func:`tenuto.http.parse_tokens` returns them)."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self._tokens = [(secret.encode(), name) for secret, name in (tokens or {}).items()]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def check(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[str | None, str]:
        """The name of the token the metadata carries, or ``None`` and why not."""
        presented = _bearer(metadata)
        if presented is None:
            return None, MISSING
        found = None
        for secret, name in self._tokens:  # compare with every token, in constant time
            if hmac.compare_digest(secret, presented):
                found = name
        return found, ("" if found is not None else WRONG)

    def actor(self, context: grpc.ServicerContext) -> str:
        """Who makes this call: its token's name, or ``grpc`` without tokens."""
        if not self._tokens:
            return ACTOR
        name, _ = self.check(context.invocation_metadata())
        return name or ACTOR


def _bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> bytes | None:
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "replace")
        scheme, _, presented = raw.strip().partition(b" ")
        presented = presented.strip()
        if scheme.lower() == b"bearer" and presented:
            return presented
        return None
    return None


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call without an accepted bearer token (``UNAUTHENTICATED``)."""

    def __init__(self, auth: TokenAuth) -> None:
        self.auth = auth

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        name, why = self.auth.check(handler_call_details.invocation_metadata)
        if name is not None:
            return handler
        log.info("refused a gRPC call to %s: %s", handler_call_details.method, why)
        return _refusal(handler, why)


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that answers ``UNAUTHENTICATED``."""

    def deny(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    make = kinds[(bool(handler.request_streaming), bool(handler.response_streaming))]
    return make(
        deny,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
