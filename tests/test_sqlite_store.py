"""The SQLite store: WAL mode, a versioned schema, safe concurrent start-up."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

import tenuto
from tenuto.store import migrations
from tenuto.store.sqlite import SqliteStore, parse_url


def test_database_is_in_wal_mode_with_a_versioned_schema(tmp_path):
    SqliteStore(f"sqlite:///{tmp_path / 'tenuto.db'}").close()
    conn = sqlite3.connect(tmp_path / "tenuto.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in migrations.load("sqlite")]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"instances", "history", "inbox", "activities", "schema_migrations"} <= tables


def test_reopening_does_not_migrate_again(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'tenuto.db'}"
    with tenuto.Client(db_url) as c:
        c.start("anything", 1, instance_id="kept")
    with tenuto.Client(db_url) as c:
        assert c.status("kept").input == 1


def test_several_processes_creating_the_schema_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    code = "import sys, tenuto; tenuto.Client(sys.argv[1]).start('x', 1)"
    procs = [subprocess.Popen([sys.executable, "-c", code, url]) for _ in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    with tenuto.Client(url) as c:
        assert len(c.query().items) == 6


def test_synchronous_setting_from_the_url(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path / 'full.db'}?synchronous=full")
    assert store.synchronous == "FULL"
    store.close()
    with pytest.raises(ValueError, match="synchronous must be one of"):
        SqliteStore(f"sqlite:///{tmp_path / 'x.db'}?synchronous=sometimes")


def test_url_forms():
    assert parse_url("sqlite:///rel/t.db") == ("rel/t.db", {})
    assert parse_url("sqlite:////abs/t.db?busy_timeout=5") == ("/abs/t.db", {"busy_timeout": "5"})
    with pytest.raises(ValueError, match="no host"):
        parse_url("sqlite://host/t.db")
    with pytest.raises(ValueError, match="does not exist"):
        SqliteStore("sqlite:////no/such/dir/t.db")


# -- upgrading a database made by an earlier version -----------------------------------

upgrade_app = tenuto.App()


@upgrade_app.orchestrator
def plus_one(ctx, n):
    return n + 1


def test_a_database_of_the_previous_schema_is_upgraded(db_url, monkeypatch):
    """A database created with migrations up to 0002 (before instances had a version and
    tags) is migrated when the current code opens it, on both backends; its instances
    read version=None, tags=None and run on."""
    from tenuto.store import open_store

    dialect = "sqlite" if db_url.startswith("sqlite") else "postgres"
    current = migrations.load(dialect)
    assert current[-1].version >= 3
    with monkeypatch.context() as m:
        m.setattr(migrations, "load", lambda d: [x for x in current if x.version <= 2])
        old = open_store(db_url)
        try:
            with old.transaction() as tx:
                tx.cur.execute(
                    tx.d.sql(
                        "INSERT INTO instances (instance_id, name, status, execution_id, input, "
                        "created_at, updated_at, next_due) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    ("old-1", "plus_one", "PENDING", "e1", "41", 1.0, 1.0, 1.0),
                )
                versions = tx.cur.fetchall("SELECT version FROM schema_migrations")
            assert sorted(v[0] for v in versions) == [1, 2]
        finally:
            old.close()
    with tenuto.Client(db_url) as client:
        st = client.status("old-1")
        assert (st.name, st.input, st.version, st.tags) == ("plus_one", 41, None, None)
        applied = client.store.read(
            lambda r: r.cur.fetchall("SELECT version FROM schema_migrations")
        )
        assert sorted(v[0] for v in applied) == [m.version for m in current]
        new = client.start("plus_one", 1, version="2", tags={"after": "upgrade"})
        with tenuto.Worker(upgrade_app, store=client.store, shutdown_grace=1):
            assert client.wait("old-1", timeout=10).output == 42
            assert client.wait(new, timeout=10).tags == {"after": "upgrade"}
