from __future__ import annotations

import itertools
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tenuto

sys.path.insert(0, str(Path(__file__).parent))

from helpers import RunningServer, serve_http

#: A PostgreSQL server for the PostgreSQL half of the suite (each test gets a schema).
PG_URL = os.environ.get("TENUTO_TEST_POSTGRES")
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
        pytest.skip("set TENUTO_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL tests")
    return postgres_url(f"t_{_RUN}_{next(_schemas)}")


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


# -- with TENUTO_TEST_POSTGRES set, a skipped PostgreSQL test is a failure --------------

_skipped_postgres: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if PG_URL and report.skipped and "postgres" in report.nodeid:
        _skipped_postgres.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_postgres:
        print(
            f"\nFAILED: {len(_skipped_postgres)} PostgreSQL test(s) were skipped although "
            f"TENUTO_TEST_POSTGRES is set: {_skipped_postgres[:5]}"
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
