"""Start and stop a gRPC server that serves the Durable Task protocol from a store."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import durabletask.internal.orchestrator_service_pb2_grpc as stubs
import grpc

from ..app import App
from ..clock import SYSTEM_CLOCK, Clock
from ..store import open_store
from ..store.base import Store
from .auth import AuthInterceptor, TokenAuth
from .dispatch import ACTIVITIES_PER_WORKER, Dispatcher
from .service import SidecarService

log = logging.getLogger("tenuto.grpc")

#: The port Durable Task SDKs connect to by default.
DEFAULT_PORT = 4001


def _check_free(host: str, port: int, error: Callable[[str], OSError]) -> None:
    """Refuse a port that another process listens on, before gRPC tries it (gRPC would
    log its own error lines first)."""
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return  # gRPC says what is wrong with the address
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise error(exc.strerror or str(exc)) from None


class GrpcServer:
    """The Durable Task sidecar service (``TaskHubSidecarService``) on a tenuto store.

    ::

        with GrpcServer("sqlite:///tenuto.db", port=4001) as server:
            ...   # SDK workers and clients connect to localhost:4001

    ``app``: a tenuto App served by a tenuto Worker in the same deployment; its
    orchestrators and activities are never handed to SDK workers. ``lease_seconds``: how
    long the work of an SDK worker that disconnected stays claimed before another worker
    gets it. ``port=0`` picks a free port (read it from :attr:`port` after
    :meth:`start`). Housekeeping (scheduled resumes) is a tenuto Worker's job: run one
    next to this server (``tenuto serve --grpc-port`` does). ``activities_per_worker``:
    how many activities one connected SDK worker holds at once (see
    :mod:`tenuto.grpc.dispatch`; more than its threads run at once would start after a
    pause).

    ``tokens`` (``{secret: name}``, as :func:`tenuto.http.parse_tokens` returns them):
    every call must then carry the metadata ``authorization: Bearer <secret>``, and the
    token's name is the actor recorded on pauses, resumes and terminations.
    """

    def __init__(
        self,
        db: str | None = None,
        *,
        store: Store | None = None,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        app: App | None = None,
        lease_seconds: float = 30.0,
        max_workers: int = 128,
        clock: Clock = SYSTEM_CLOCK,
        tokens: dict[str, str] | None = None,
        activities_per_worker: int = ACTIVITIES_PER_WORKER,
    ) -> None:
        self._own_store = store is None
        self.store = store if store is not None else open_store(db)
        self.host = host
        self.port = port
        self.dispatcher = Dispatcher(
            self.store,
            exclude_orchestrators=app.orchestrator_names if app else (),
            exclude_entities=app.entity_names if app else (),
            exclude_activities=app.activity_names if app else (),
            lease_seconds=lease_seconds,
            clock=clock,
            activities_per_worker=activities_per_worker,
        )
        self.auth = TokenAuth(tokens)
        self.service = SidecarService(self.store, self.dispatcher, clock=clock, auth=self.auth)
        self._max_workers = max_workers
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> GrpcServer:
        _check_free(self.host, self.port, self._unavailable)
        server = grpc.server(
            ThreadPoolExecutor(self._max_workers, thread_name_prefix="tenuto-grpc"),
            interceptors=[AuthInterceptor(self.auth)] if self.auth.enabled else None,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                # A port another server holds is an error, not a port to share with it.
                ("grpc.so_reuseport", 0),
            ],
        )
        stubs.add_TaskHubSidecarServiceServicer_to_server(self.service, server)  # type: ignore[no-untyped-call]
        try:
            bound = server.add_insecure_port(self.address)
        except RuntimeError:  # grpcio's "Failed to bind to address"
            bound = 0
        if bound == 0:
            raise self._unavailable("the port is in use or the address is not available here")
        self.port = bound
        self.dispatcher.start()
        server.start()
        self._server = server
        log.info(
            "serving the Durable Task protocol on %s (%s)%s",
            self.address,
            self.store.url,
            " with bearer tokens" if self.auth.enabled else "",
        )
        return self

    def _unavailable(self, why: str) -> OSError:
        return OSError(
            f"cannot serve the Durable Task protocol on {self.address}: {why}; choose "
            "another port or address (--grpc-port, --grpc-host)"
        )

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop serving: worker streams end (SDK workers reconnect elsewhere or later)."""
        self.dispatcher.stop()
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self._own_store:
            self.store.close()

    def __enter__(self) -> GrpcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
