"""The store seam: nothing above ``tenuto/store/`` depends on a database driver, and the
store says which errors are the database's."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

import tenuto
from tenuto.store import is_database_error, open_store

SRC = Path(tenuto.__file__).parent
#: The modules of database drivers: only backends (``tenuto/store/``) may name them.
DRIVERS = {"sqlite3", "psycopg", "psycopg_pool", "psycopg2", "asyncpg"}


def _driver(name: str) -> bool:
    return name.split(".")[0] in DRIVERS


def _driver_uses(path: Path) -> list[str]:
    """``line: what`` for every import of a driver module in ``path``, and every string
    that names one (``sys.modules["psycopg"]``, ``__module__.startswith("psycopg")``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if _driver(node.value) and " " not in node.value else []
        found += [f"{node.lineno}: {name}" for name in names if _driver(name)]
    return found


def test_nothing_outside_the_store_names_a_database_driver() -> None:
    modules = [p for p in SRC.rglob("*.py") if (SRC / "store") not in p.parents]
    assert len(modules) > 30  # the whole package was read
    problems = {str(p.relative_to(SRC)): uses for p in modules if (uses := _driver_uses(p))}
    assert problems == {}


def test_the_rule_sees_imports_and_module_names(tmp_path: Path) -> None:
    """The check above finds what it looks for (it would pass on any tree otherwise)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sqlite3\n"
        "from psycopg import errors\n"
        "import sys\n"
        "driver = sys.modules['psycopg_pool']\n"
        "ok = 'a psycopg error in a sentence'\n"
    )
    assert _driver_uses(sample) == ["1: sqlite3", "2: psycopg", "4: psycopg_pool"]


def test_the_store_classifies_database_errors(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"these bytes are not an SQLite database" * 100)
    with pytest.raises(Exception) as raised:
        open_store(f"sqlite:///{path}")
    assert isinstance(raised.value, sqlite3.DatabaseError)
    assert is_database_error(raised.value)
    assert not is_database_error(ValueError("a fault of tenuto"))
    assert not is_database_error(tenuto.InstanceNotFound("x"))


def test_postgres_errors_are_database_errors() -> None:
    psycopg = pytest.importorskip("psycopg")
    from tenuto.store import postgres  # loaded, as open_store loads it for a PostgreSQL URL

    with pytest.raises(psycopg.Error) as raised:
        psycopg.connect(postgres.parse_url("postgresql://tenuto@127.0.0.1:1/nothing")[0])
    assert is_database_error(raised.value)
