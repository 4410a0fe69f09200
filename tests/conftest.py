from __future__ import annotations

import contextlib
import itertools
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tenuto

sys.path.insert(0, str(Path(__file__).parent))

from helpers import RunningServer, serve_http
from pgserver import PostgresNotFound, TempPostgres
from prerequisites import POSTGRES, lacking, summary

#: The PostgreSQL server of the PostgreSQL half of the suite (each test gets a schema):
#: ``TENUTO_TEST_POSTGRES``, else the suite's own throwaway server, started once per run
#: in ``pytest_configure``. None when there is none; ``PG_MISSING`` then says why.
PG_URL: str | None = None
PG_MISSING = ""
_BROKEN = "the suite's own PostgreSQL server did not start: "
_RUN = uuid.uuid4().hex[:8]
_schemas = itertools.count()


def postgres_url(schema: str) -> str:
    assert PG_URL is not None
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"


def drop_postgres_schema(url: str) -> None:
    import psycopg

    from tenuto.store.postgres import parse_url

    conninfo, schema = parse_url(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def new_db_url(backend: str, directory: Path) -> str:
    """A fresh, empty database of ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{directory / 'tenuto.db'}"
    if not PG_URL:
        lacking(POSTGRES, PG_MISSING, installed=PG_MISSING.startswith(_BROKEN))
    return postgres_url(f"t_{_RUN}_{next(_schemas)}")


@contextlib.contextmanager
def own_postgres() -> Iterator[TempPostgres]:
    """A started server of the test's own, to restart or cut off (never the shared one);
    stopped and removed on leaving."""
    try:
        server = TempPostgres()
    except PostgresNotFound as exc:
        lacking(POSTGRES, str(exc))
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def _start_own_postgres(config: pytest.Config) -> tuple[str | None, str]:
    """Start the suite's throwaway server, stopped and removed when the run ends (its
    watchdog removes it should this process be killed); returns its URL, or why not."""
    try:
        server = TempPostgres()
        config.add_cleanup(server.destroy)
        server.start()
    except PostgresNotFound as exc:
        return None, str(exc)
    except RuntimeError as exc:
        hint = ""
        if os.geteuid() == 0 and "Permission denied" in str(exc):
            hint = (
                " (as root, PostgreSQL's programs run as the postgres user, which must be "
                f"able to enter {tempfile.gettempdir()}: set TMPDIR to a folder it can)"
            )
        return None, f"{_BROKEN}{exc}{hint}"
    return server.url, ""


def pytest_configure(config: pytest.Config) -> None:
    global PG_URL, PG_MISSING
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # a pytest-xdist worker: the controller chose the server
        PG_URL, PG_MISSING = workerinput["tenuto_pg_url"], workerinput["tenuto_pg_missing"]
    elif os.environ.get("TENUTO_TEST_POSTGRES"):
        PG_URL = os.environ["TENUTO_TEST_POSTGRES"]
    elif config.option.collectonly:
        PG_MISSING = "no tests run with --collect-only"
    else:
        PG_URL, PG_MISSING = _start_own_postgres(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Hand the controller's server to each pytest-xdist worker (they make their own
    schemas, named by a per-process run id)."""
    node.workerinput["tenuto_pg_url"] = PG_URL
    node.workerinput["tenuto_pg_missing"] = PG_MISSING


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database for one test, on each backend."""
    url = new_db_url(backend, tmp_path)
    yield url
    if backend == "postgres":
        drop_postgres_schema(url)


@pytest.fixture
def client(db_url: str) -> Iterator[tenuto.Client]:
    with tenuto.Client(db_url, actor="tester") as c:
        yield c


@pytest.fixture
def start_worker(db_url: str) -> Iterator[Callable[..., tenuto.Worker]]:
    """Start in-process workers on the test database; all are stopped at teardown."""
    workers: list[tenuto.Worker] = []

    def start(app: tenuto.App, **options: Any) -> tenuto.Worker:
        options.setdefault("shutdown_grace", 5.0)
        worker = tenuto.Worker(app, db_url, **options).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


# -- the end of a run: what was skipped, and a skipped PostgreSQL test with a server ------


_skipped_postgres: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if PG_URL and report.skipped and "postgres" in report.nodeid:
        _skipped_postgres.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    lines = summary(skipped)
    if lines:
        terminalreporter.write_sep("=", f"{len(skipped)} skipped", yellow=True, bold=True)
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_postgres:
        print(
            f"\nFAILED: {len(_skipped_postgres)} PostgreSQL test(s) were skipped although "
            f"a PostgreSQL server was there ({PG_URL}): {_skipped_postgres[:5]}"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- a real HTTP server on loopback ------------------------------------------------------


@pytest.fixture
def http_server(db_url: str) -> Iterator[Callable[..., RunningServer]]:
    """Start ``tenuto``'s HTTP API (and a worker for ``app``) on loopback; returns an
    object with ``url`` (``http://127.0.0.1:PORT``), ``client`` and ``worker``."""
    servers: list[RunningServer] = []

    def start(app: tenuto.App | None = None, **options: Any) -> RunningServer:
        client = tenuto.Client(db_url, app=app, actor="http")
        worker = tenuto.Worker(app, store=client.store, shutdown_grace=5).start() if app else None
        running = serve_http(client, worker, **options)
        servers.append(running)
        return running

    yield start
    for s in servers:
        s.stop()
