"""Running tenuto: ``worker`` runs the orchestrators and activities of an App, ``serve``
adds the HTTP API and dashboard in the same process (:func:`run_server`: the worker, the
gRPC server and uvicorn, started and stopped together; :mod:`tenuto.http` only builds the
ASGI app)."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import sysconfig
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click

from ..app import App
from ..client import Client
from ..errors import ValidationError
from ..retention import Retention
from .params import DB_OPTION

log = logging.getLogger("tenuto.http")


def load_app(spec: str) -> App:
    """Import ``module:attribute`` (or ``path/to/file.py:attribute``) and return the App."""
    module_name, _, attr = spec.partition(":")
    attr = attr or "app"
    if module_name.endswith(".py"):
        directory, filename = os.path.split(os.path.abspath(module_name))
        sys.path.insert(0, directory)
        module_name = filename[:-3]
    elif os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        if os.environ.get("TENUTO_DEBUG"):
            raise
        raise click.BadParameter(f"cannot import {module_name!r}: {_import_error(exc)}") from None
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise click.BadParameter(f"{module_name}:{attr} is not a tenuto.App")
    return app


_TENUTO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def _import_error(exc: Exception) -> str:
    """What went wrong importing an app module, on one line: the error, and for an error
    in the module's own code, ``file:line`` where it happened (not a traceback: set
    ``TENUTO_DEBUG=1`` or pass ``--debug`` for that)."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}:{exc.lineno}: " if exc.filename else ""
        return f"{where}{type(exc).__name__}: {exc.msg}"
    message = f"{type(exc).__name__}: {exc}"
    frame = _user_frame(exc)
    if frame is None:
        return str(exc) if isinstance(exc, ImportError) else message
    return f"{frame.filename}:{frame.lineno}: {message}"


def _user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc``'s traceback in the user's code: not in importlib,
    tenuto, the standard library or installed packages."""
    library = {
        os.path.realpath(p)
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_path(key))
    }
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = os.path.realpath(frame.filename)
        if frame.filename.startswith("<") or any(path.startswith(lib + os.sep) for lib in library):
            continue
        if path.startswith(_TENUTO + os.sep):
            continue
        return frame
    return None


def _setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        from ..tracking import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("tenuto")
    root.addHandler(handler)
    root.setLevel(level.upper())


LOG_LEVEL_OPTION = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
    default="info",
    show_default=True,
)
LOG_FORMAT_OPTION = click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
LEASE_OPTION = click.option(
    "--lease-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="How long the work of a dead worker (tenuto's or a Durable Task SDK's) stays "
    "claimed before another takes it over.",
)
STEP_WARNING_OPTION = click.option(
    "--step-warning",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Log a warning when one orchestration step runs longer (code that blocks or "
    "never yields).",
)
EAGER_OPTION = click.option(
    "--eager-steps-below",
    type=click.FloatRange(min=0),
    default=0.1,
    show_default=True,
    metavar="SECONDS",
    help="Commit the result of an activity that ran for less than this together with the "
    "orchestration step it makes due (one transaction instead of two; if the worker dies "
    "in that step, the activity runs again). 0: always commit results first.",
)


def _retain(ctx: click.Context, param: click.Parameter, value: str | None) -> Retention | None:
    if value is None:
        return None
    try:
        return Retention.parse(value, ctx.params.get("retain_export_to"))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


RETAIN_EXPORT_OPTION = click.option(
    "--retain-export-to",
    default=None,
    metavar="FOLDER",
    is_eager=True,
    help="With --retain: append each purged instance to a JSON Lines file in FOLDER first.",
)
RETAIN_OPTION = click.option(
    "--retain",
    "retention",
    default=None,
    callback=_retain,
    metavar="RULES",
    help="Purge finished instances after this long, in the background: e.g. "
    "COMPLETED=30d,FAILED=90d,TERMINATED=30d (ORCHESTRATOR:STATUS=DURATION for one "
    "orchestrator). A policy stored with 'tenuto retention set' wins over this.",
)


def _otel(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        from .. import tracing

        try:
            tracing.enable()
        except ImportError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


OTEL_OPTION = click.option(
    "--otel",
    is_flag=True,
    expose_value=False,
    callback=_otel,
    help="Emit OpenTelemetry spans (steps, activity attempts) through the globally "
    "configured tracer provider, e.g. under opentelemetry-instrument; needs tenuto[otel].",
)
CONCURRENCY_OPTION = click.option(
    "--concurrency", default=64, show_default=True, help="Activities running at once."
)


@click.command()
@click.argument("app_spec", metavar="MODULE:APP")
@DB_OPTION
@CONCURRENCY_OPTION
@LEASE_OPTION
@STEP_WARNING_OPTION
@EAGER_OPTION
@RETAIN_OPTION
@RETAIN_EXPORT_OPTION
@OTEL_OPTION
@LOG_LEVEL_OPTION
@LOG_FORMAT_OPTION
def worker(
    app_spec: str,
    db: str | None,
    concurrency: int,
    lease_seconds: float,
    step_warning: float,
    eager_steps_below: float,
    retention: Retention | None,
    retain_export_to: str | None,
    log_level: str,
    log_format: str,
) -> None:
    """Run a worker for the orchestrators and activities of MODULE:APP.

    Run as many as you like on a shared PostgreSQL database; stop with Ctrl-C or SIGTERM
    (running activities finish first).

    \b
    Example:
      tenuto worker myproject.flows:app --db postgresql://tenuto@db/tenuto
    """
    from ..outbox import Drainer
    from ..store import open_store
    from ..worker import Worker

    _setup_logging(log_level, log_format)
    app = load_app(app_spec)
    # The store is this command's, so that the drainer gives its lease up before it closes.
    store = open_store(db)
    running = Worker(
        app,
        store=store,
        concurrency=concurrency,
        lease_seconds=lease_seconds,
        step_warning=step_warning,
        eager_steps_below=eager_steps_below,
        retention=retention,
    )
    # The tracking outbox: this process emits every change if it holds the lease.
    drainer = Drainer(store, lease_seconds=lease_seconds)
    drainer.start()
    try:
        running.run()
    finally:
        drainer.stop()
        store.close()


@click.command()
@click.argument("app_spec", metavar="[MODULE:APP]", required=False)
@DB_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--no-worker", is_flag=True, help="Serve the HTTP API only; run no worker.")
@click.option(
    "--token",
    "tokens",
    multiple=True,
    envvar="TENUTO_TOKEN",
    show_envvar=True,
    metavar="NAME=SECRET",
    help="Require 'Authorization: Bearer SECRET' (HTTP header, and gRPC metadata with "
    "--grpc-port); NAME is recorded as the actor. Repeat for several (the environment "
    "variable takes them comma-separated).",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=1),
    default=None,
    metavar="BYTES",
    help="Largest request body accepted [default: 1 MiB].",
)
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Also serve the Durable Task protocol here, for Durable Task SDK workers and "
    "clients (their default is 4001). MODULE:APP is then optional.",
)
@click.option(
    "--grpc-host",
    default="127.0.0.1",
    show_default=True,
    help="Interface for the Durable Task protocol.",
)
@click.option(
    "--grpc-activities-per-worker",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Activities one connected Durable Task SDK worker holds at once, refilled as "
    "results come back [default: 4]. Keep it at or below the worker's threads: "
    "activities queued inside an SDK worker would start even after their instance is "
    "suspended.",
)
@LEASE_OPTION
@STEP_WARNING_OPTION
@EAGER_OPTION
@CONCURRENCY_OPTION
@RETAIN_OPTION
@RETAIN_EXPORT_OPTION
@OTEL_OPTION
@LOG_LEVEL_OPTION
@LOG_FORMAT_OPTION
def serve(
    app_spec: str | None,
    db: str | None,
    host: str,
    port: int,
    no_worker: bool,
    tokens: tuple[str, ...],
    max_body: int | None,
    grpc_port: int | None,
    grpc_host: str,
    grpc_activities_per_worker: int | None,
    lease_seconds: float,
    step_warning: float,
    eager_steps_below: float,
    concurrency: int,
    retention: Retention | None,
    retain_export_to: str | None,
    log_level: str,
    log_format: str,
) -> None:
    """Serve the HTTP API (/api/, Durable Functions routes, metrics, dashboard) and run a
    worker for MODULE:APP, in one process; with --grpc-port, also serve the Durable Task
    protocol so that Durable Task SDK workers and clients use this store.

    Listens on 127.0.0.1 unless --host says otherwise; use --token when it is reachable
    from other machines.

    \b
    Examples:
      tenuto serve myproject.flows:app
      tenuto serve myproject.flows:app --host 0.0.0.0 --token ops=s3cret
      tenuto serve --no-worker --db postgresql://tenuto@db/tenuto --port 9000
      tenuto serve --grpc-port 4001
    """
    from .. import http

    if app_spec is None and not no_worker and grpc_port is None:
        raise click.UsageError(
            "give MODULE:APP to run a worker, --grpc-port to serve Durable Task SDK workers, "
            "or --no-worker to serve the API"
        )
    if grpc_port is not None:
        try:  # says which extra to install when the gRPC packages are missing
            from .. import grpc as _sidecar  # noqa: F401
        except ImportError as exc:
            raise click.UsageError(str(exc)) from None
    try:
        parsed = http.parse_tokens(list(tokens))
    except ValidationError as exc:
        raise click.BadParameter(str(exc), param_hint="'--token'") from None
    _setup_logging(log_level, log_format)
    app = load_app(app_spec) if app_spec is not None else None
    exposed = [host] + ([grpc_host] if grpc_port is not None else [])
    for where in dict.fromkeys(exposed):
        if not parsed and where not in ("127.0.0.1", "localhost", "::1"):
            click.echo(
                f"Warning: serving on {where} without --token: anyone who can reach it can "
                "control every instance",
                err=True,
            )
    run_server(
        app,
        db,
        host=host,
        port=port,
        tokens=parsed,
        worker=not no_worker,
        worker_options={
            "concurrency": concurrency,
            "lease_seconds": lease_seconds,
            "step_warning": step_warning,
            "eager_steps_below": eager_steps_below,
            "retention": retention,
        },
        log_level=log_level.lower(),
        grpc_port=grpc_port,
        grpc_host=grpc_host,
        grpc_options={"lease_seconds": lease_seconds}
        | (
            {}
            if grpc_activities_per_worker is None
            else {"activities_per_worker": grpc_activities_per_worker}
        ),
        max_body=max_body,
    )


COMMANDS = [worker, serve]


def run_server(
    app: App | None,
    db: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    tokens: dict[str, str] | None = None,
    worker: bool = True,
    max_body: int | None = None,
    worker_options: dict[str, Any] | None = None,
    log_level: str = "info",
    grpc_port: int | None = None,
    grpc_host: str = "127.0.0.1",
    grpc_options: dict[str, Any] | None = None,
) -> None:
    """Serve the HTTP API (and run a worker for ``app`` unless ``worker=False``) until
    SIGINT or SIGTERM: what ``tenuto serve`` does. Binds to loopback unless ``host``
    says otherwise; ``max_body`` defaults to :func:`tenuto.http.create_app`'s limit.

    With ``grpc_port``, also serve the Durable Task protocol (for Durable Task SDK
    workers and clients) on ``grpc_host:grpc_port``, behind the same ``tokens``; then
    ``app`` may be ``None``: the worker runs only housekeeping (scheduled resumes) and SDK
    workers run the code."""
    import uvicorn

    from ..http import create_app
    from ..outbox import Drainer
    from ..worker import Worker

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
    # The tracking outbox: this process emits every change if it holds the lease.
    drainer = Drainer(client.store, lease_seconds=(worker_options or {}).get("lease_seconds", 30.0))
    limit: dict[str, Any] = {} if max_body is None else {"max_body": max_body}
    asgi = create_app(client, tokens=tokens, **limit)
    config = uvicorn.Config(asgi, host=host, port=port, log_level=log_level, lifespan="off")
    server = uvicorn.Server(config)
    try:
        # The gRPC port first: a port in use fails before anything has started.
        if sidecar is not None:
            sidecar.start()
        if running is not None:
            running.start()
        drainer.start()
        log.info("serving %s on http://%s:%d", client.store.url, host, port)
        with _exit_on_signals():
            server.run()
    finally:
        drainer.stop()
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
