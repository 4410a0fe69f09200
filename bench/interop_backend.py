"""A stand-in for ``durabletask.testing.create_test_backend`` that runs tenuto.

:mod:`bench.interop` copies this file into the temporary folder where it runs the Durable
Task SDK's own end-to-end tests, and its ``conftest.py`` calls :func:`install` before any
test module is imported: from then on every ``create_test_backend(port=...)`` of their
tests starts ``tenuto serve --grpc-port PORT`` as a subprocess, on a fresh SQLite file or
a fresh PostgreSQL schema (``TENUTO_INTEROP_DB``: ``sqlite`` or a PostgreSQL URL).
``stop()`` ends the process with SIGTERM; ``reset()`` removes its database.

This file imports nothing from tenuto: it runs inside their test process, where only
the SDK and the standard library are assumed.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_count = itertools.count()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    query.append(("schema", schema))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), ""))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


def serve(url: str, port: int, log: Any) -> subprocess.Popen[bytes]:
    """Start ``tenuto serve --grpc-port PORT`` on ``url`` (output to the file ``log``)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenuto",
            "serve",
            "--db",
            url,
            "--port",
            str(_free_port()),
            "--grpc-port",
            str(port),
            "--grpc-host",
            "localhost",
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until something answers gRPC on ``localhost:port``; ``RuntimeError`` if
    ``proc`` exits first or nothing listens within ``timeout``."""
    import grpc

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited at start (code {proc.returncode})")
        with grpc.insecure_channel(f"localhost:{port}") as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=0.2)
                return
            except grpc.FutureTimeoutError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not listen in time")


def end(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class TenutoBackend:
    """One ``tenuto serve --grpc-port`` subprocess on a database of its own."""

    def __init__(self, port: int, db: str) -> None:
        self.port = port
        self._tmp = tempfile.mkdtemp(prefix="tenuto-interop-")
        self._schema: str | None = None
        if db == "sqlite":
            self.url = f"sqlite:///{self._tmp}/tenuto.db"
        else:
            self._schema = f"interop_{os.getpid()}_{next(_count)}"
            self._pg = db
            _drop_schema(db, self._schema)
            self.url = _with_schema(db, self._schema)
        self._log = open(os.path.join(self._tmp, "serve.log"), "wb")  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = serve(self.url, port, self._log)
        try:
            wait_listening(port, self.proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{self.log()}") from None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        with open(os.path.join(self._tmp, "serve.log"), "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after 10 s)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        end(proc)
        self._log.close()

    def reset(self) -> None:
        """Remove the server's database (its log is printed if it logged errors)."""
        self.stop()
        text = self.log() if os.path.exists(os.path.join(self._tmp, "serve.log")) else ""
        if "Traceback" in text or "ERROR" in text:
            sys.stderr.write(f"--- tenuto serve log ({self.url}) ---\n{text}\n")
        if self._schema is not None:
            _drop_schema(self._pg, self._schema)
        shutil.rmtree(self._tmp, ignore_errors=True)


def create_test_backend(port: int = 50051, **_: Any) -> TenutoBackend:
    """``durabletask.testing.create_test_backend`` with tenuto behind the port."""
    return TenutoBackend(port, os.environ.get("TENUTO_INTEROP_DB", "sqlite"))


def install() -> None:
    """Make ``from durabletask.testing import create_test_backend`` return ours."""
    import durabletask.testing
    import durabletask.testing.in_memory_backend

    durabletask.testing.create_test_backend = create_test_backend  # type: ignore[assignment]
    durabletask.testing.in_memory_backend.create_test_backend = create_test_backend  # type: ignore[assignment]
