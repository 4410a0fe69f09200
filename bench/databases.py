"""Fresh databases for every (backend, system, workload) run, removed afterwards.

Backends ("variants"):

* ``sqlite``: a new SQLite file in a temporary directory; tenuto's default durability
  (WAL, ``synchronous=NORMAL``).
* ``sqlite-full``: the same with ``?synchronous=full`` for tenuto (DBOS gets the same
  pragmas, see :mod:`bench.dbos_workloads`).
* ``postgres``: tenuto in a schema of its own (``?schema=bench_...``), DBOS in a
  database of its own (``bench_dbos_...``), both dropped before and after each run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
VARIANTS = {"sqlite": ("sqlite", "sqlite-full"), "postgres": ("postgres",)}
VARIANTS["both"] = VARIANTS["sqlite"] + VARIANTS["postgres"]


def _pg_admin(pg_url: str, statements: list[str], dbname: str | None = None) -> None:
    import psycopg

    url = pg_url if dbname is None else _with_database(pg_url, dbname)
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt.encode())


def _with_database(pg_url: str, dbname: str) -> str:
    parts = urlsplit(pg_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))


def postgres_version(pg_url: str) -> str:
    """``SHOW server_version`` of the server at ``pg_url``."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


class Databases:
    """Hands out a fresh database URL per run (see the module docstring)."""

    def __init__(self, pg_url: str = DEFAULT_PG_URL) -> None:
        self.pg_url = pg_url
        self.tag = f"{os.getpid()}"
        self.tmp = tempfile.mkdtemp(prefix="tenuto-bench-")

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    @contextlib.contextmanager
    def fresh(self, variant: str, system: str, workload: str) -> Iterator[str]:
        """A URL of an empty database for ``system`` running ``workload`` on ``variant``,
        dropped when the block ends."""
        name = f"{system}_{workload}"
        if variant.startswith("sqlite"):
            path = os.path.join(self.tmp, f"{variant}-{name}.db")
            url = f"sqlite:///{path}"
            if system == "tenuto" and variant == "sqlite-full":
                url += "?synchronous=full"
            try:
                yield url
            finally:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path + suffix)
        elif variant == "postgres":
            if system == "tenuto":
                schema = f"bench_{self.tag}_{workload}"
                drop_schema = [f'DROP SCHEMA IF EXISTS "{schema}" CASCADE']
                _pg_admin(self.pg_url, drop_schema)
                sep = "&" if urlsplit(self.pg_url).query else "?"
                try:
                    yield f"{self.pg_url}{sep}schema={schema}"
                finally:
                    _pg_admin(self.pg_url, drop_schema)
            else:
                db = f"bench_dbos_{self.tag}_{workload}"
                drop = f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'
                _pg_admin(self.pg_url, [drop, f'CREATE DATABASE "{db}"'])
                try:
                    yield _with_database(self.pg_url, db)
                finally:
                    _pg_admin(self.pg_url, [drop])
        else:
            raise ValueError(f"unknown backend {variant!r}")
