"""``tenuto serve``: a worker and the HTTP server in one process."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ..app import App
from ..client import Client
from ..errors import ValidationError
from ..worker import Worker
from .app import DEFAULT_MAX_BODY, create_app

log = logging.getLogger("tenuto.http")


def serve(
    app: App | None,
    db: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    tokens: dict[str, str] | None = None,
    worker: bool = True,
    max_body: int = DEFAULT_MAX_BODY,
    worker_options: dict[str, Any] | None = None,
    log_level: str = "info",
    grpc_port: int | None = None,
    grpc_host: str = "127.0.0.1",
    grpc_options: dict[str, Any] | None = None,
) -> None:
    """Serve the HTTP API (and run a worker for ``app`` unless ``worker=False``) until
    SIGINT or SIGTERM. Binds to loopback unless ``host`` says otherwise.

    With ``grpc_port``, also serve the Durable Task protocol (for Durable Task SDK
    workers and clients) on ``grpc_host:grpc_port``, behind the same ``tokens``; then
    ``app`` may be ``None``: the worker runs only housekeeping (scheduled resumes) and SDK
    workers run the code."""
    import uvicorn

    if worker and app is None and grpc_port is None:
        raise ValidationError(
            "a worker needs an app (MODULE:APP); use --no-worker to serve the API alone"
        )
    client = Client(db, app=app, actor="http")
    running = None
    if worker:
        # Without an app, a worker over an empty App claims nothing: it only resumes
        # instances whose scheduled resume time has come.
        running = Worker(app or App(), store=client.store, **(worker_options or {}))
    sidecar = None
    if grpc_port is not None:
        from ..grpc import GrpcServer

        sidecar = GrpcServer(
            store=client.store,
            host=grpc_host,
            port=grpc_port,
            app=app,
            tokens=tokens,
            **(grpc_options or {}),
        )
    asgi = create_app(client, tokens=tokens, max_body=max_body)
    config = uvicorn.Config(asgi, host=host, port=port, log_level=log_level, lifespan="off")
    server = uvicorn.Server(config)
    try:
        # The gRPC port first: a port in use fails before anything has started.
        if sidecar is not None:
            sidecar.start()
        if running is not None:
            running.start()
        log.info("serving %s on http://%s:%d", client.store.url, host, port)
        with _exit_on_signals():
            server.run()
    finally:
        if sidecar is not None:
            sidecar.stop()
        if running is not None:
            running.stop()
        client.close()


@contextmanager
def _exit_on_signals() -> Iterator[None]:
    """Make SIGTERM and SIGINT raise ``SystemExit(0)`` while serving.

    uvicorn handles both while it serves, then restores the previous handlers and raises
    the signal again. With the default handlers that would kill the process on SIGTERM
    before the worker is stopped gracefully; with these, the cleanup runs.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
