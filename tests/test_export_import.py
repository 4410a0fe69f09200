"""History export and import: ``tenuto export`` writes instances with their full
histories; ``tenuto import`` loads them into another store (SQLite to PostgreSQL),
keeping ids, histories and pauses, and refusing to overwrite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tenuto
from conftest import drop_postgres_schema, new_db_url
from test_cli import run_cli

from helpers import wait_for

app = tenuto.App()


@app.activity
def inc(x: int) -> int:
    return x + 1


@app.activity
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


@app.orchestrator
def child(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    return (yield ctx.call_activity(inc, x))


@app.orchestrator
def parent(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    return (yield ctx.call_sub_orchestrator(child, x))


@app.orchestrator
def fails(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    return (yield ctx.call_activity(boom, x))


@app.orchestrator
def step_then_event(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    a = yield ctx.call_activity(inc, x)
    extra = yield ctx.wait_for_event("go")
    return a + extra


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A SQLite store with finished, failed, parent/child, paused and running instances."""
    url = new_db_url("sqlite", tmp_path)
    with tenuto.Client(url, actor="tester") as client, tenuto.Worker(app, url):
        ids = {
            "parent": client.start(parent, 1, instance_id="p-1", tags={"team": "ops"}),
            "fails": client.start(fails, 2, instance_id="f-1"),
            "paused": client.start(step_then_event, 10, instance_id="s-paused", version="2"),
            "running": client.start(step_then_event, 20, instance_id="s-running"),
        }
        client.wait_many([ids["parent"], ids["fails"]], timeout=30)
        for key in ("paused", "running"):  # each ran its activity, waits for "go"
            wait_for(
                lambda k=key: [e.type for e in client.history(ids[k])][-1:] == ["TaskCompleted"],
                what="the first step",
            )
        client.pause(ids["paused"], "moving stores")
        client.raise_event(ids["paused"], "go", 100)  # kept in the inbox while paused
    yield url, {**ids, "child": "p-1:0"}


def _snapshot(client: tenuto.Client, iid: str) -> tuple[Any, ...]:
    st = client.status(iid)
    pause = None if st.pause is None else (st.pause.reason, st.pause.by, st.pause.source)
    history = [(e.type, e.data) for e in client.history(iid)]
    return (
        st.name,
        st.runtime_status,
        st.input,
        st.output,
        st.failure,
        st.created_at,
        st.completed_at,
        st.parent_instance_id,
        st.version,
        st.tags,
        pause,
        history,
    )


def test_export_to_jsonl_and_import_into_postgres(
    source: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    src, ids = source
    dump = tmp_path / "all.jsonl"
    out = run_cli("export", "--db", src, "--to", str(dump))
    assert out.returncode == 0, out.stderr
    assert "Exported 5 instances" in out.stdout
    records = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [r["instance_id"] for r in records] == sorted(ids.values())
    by_id = {r["instance_id"]: r for r in records}
    assert by_id["p-1"]["output"] == 2 and by_id["p-1"]["tags"] == {"team": "ops"}
    assert by_id["p-1:0"]["parent"]["instance_id"] == "p-1"
    assert by_id["s-paused"]["pause"]["reason"] == "moving stores"
    assert [m["event"]["type"] for m in by_id["s-paused"]["inbox"]] == ["EventRaised"]
    assert by_id["f-1"]["failure"]["type"] == "tenuto.errors.ActivityFailed"

    dest = new_db_url("postgres", tmp_path)
    try:
        imported = run_cli("import", str(dump), "--db", dest)
        assert imported.returncode == 0, imported.stderr
        assert "Imported 5 instances" in imported.stdout
        with tenuto.Client(src) as old, tenuto.Client(dest) as new:
            for key in ("parent", "child", "fails", "paused"):
                assert _snapshot(new, ids[key]) == _snapshot(old, ids[key]), key
            # Live in the old store: comes in PAUSED (source "import"), with its history.
            moved = new.status(ids["running"])
            assert moved.runtime_status is tenuto.Status.PAUSED
            assert moved.pause is not None and moved.pause.source == "import"
            assert "imported while RUNNING" in (moved.pause.reason or "")
            old_history = [(e.type, e.data) for e in old.history(ids["running"])]
            assert [(e.type, e.data) for e in new.history(ids["running"])][:-1] == old_history

            # Importing again is refused, naming the ids; nothing is written.
            again = run_cli("import", str(dump), "--db", dest)
            assert again.returncode == 1
            assert "5 instance id(s)" in again.stderr and "nothing was imported" in again.stderr
            skipped = run_cli("import", str(dump), "--db", dest, "--skip-existing")
            assert "Imported 0 instances" in skipped.stdout

            # The moved instances carry on where they stopped, in the new store.
            with tenuto.Worker(app, store=new.store):
                new.resume(ids["paused"])
                assert new.wait(ids["paused"], timeout=30).output == 111  # event kept
                new.resume(ids["running"])
                new.raise_event(ids["running"], "go", 1000)
                assert new.wait(ids["running"], timeout=30).output == 1021
    finally:
        drop_postgres_schema(dest)


def test_export_filters_and_parquet_round_trip(
    source: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    pytest.importorskip("pyarrow")
    src, ids = source
    dump = tmp_path / "done.parquet"
    out = run_cli(
        "export", "--db", src, "--status", "completed", "--status", "failed",
        "--since", "-1h", "--to", str(dump), "--format", "parquet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Exported 3 instances" in out.stdout  # parent, child, fails
    named = run_cli("export", "--db", src, "--name", "fails", "--to", "-")
    assert [json.loads(x)["instance_id"] for x in named.stdout.splitlines()] == ["f-1"]
    future = run_cli("export", "--db", src, "--since", "+1d", "--to", "-")
    assert future.returncode == 0 and future.stdout == ""

    (tmp_path / "dest").mkdir()
    dest = new_db_url("sqlite", tmp_path / "dest")
    assert run_cli("import", str(dump), "--db", dest).returncode == 0
    with tenuto.Client(src) as old, tenuto.Client(dest) as new:
        for key in ("parent", "child", "fails"):
            assert _snapshot(new, ids[key]) == _snapshot(old, ids[key]), key
        assert new.count()[tenuto.Status.PAUSED] == 0


def test_import_refuses_what_is_not_an_export(tmp_path: Path) -> None:
    db = new_db_url("sqlite", tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instance_id": "x"}\n')
    out = run_cli("import", str(bad), "--db", db)
    assert out.returncode == 1 and "line 1: not a tenuto export line" in out.stderr
    missing = run_cli("import", str(tmp_path / "nope.jsonl"), "--db", db)
    assert missing.returncode == 1 and "no such export file" in missing.stderr
    with tenuto.Client(db) as client:
        assert client.query().items == []
