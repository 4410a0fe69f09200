"""``tenuto entity get|list|signal|clean`` and ``tenuto pause|resume`` of entities, run
as a user would (``python -m tenuto`` in a subprocess), with a worker applying the
operations."""

from __future__ import annotations

import pytest

import tenuto
from test_cli import Cli

from helpers import wait_for

app = tenuto.App()


@app.entity
def counter(ctx: tenuto.EntityContext, amount: int = 0) -> int:
    value = ctx.get_state(0) + (amount if ctx.operation == "add" else 0)
    if ctx.operation == "reset":
        ctx.delete_state()
    else:
        ctx.set_state(value)
    return value


@pytest.fixture
def cli(db_url: str) -> Cli:
    return Cli(db_url)


def _state(client: tenuto.Client, entity: str) -> object:
    st = client.get_entity(entity)
    return None if st is None else st.state


def test_entity_commands(cli, client, start_worker):
    start_worker(app, poll_interval=0.2)
    assert "Signalled add to @counter@a." in cli.ok("entity", "signal", "@counter@a", "add", "5")
    cli.ok("entity", "signal", "@counter@b", "add", "1")
    wait_for(lambda: _state(client, "@counter@a") == 5 and _state(client, "@counter@b") == 1)
    shown = cli.ok("entity", "get", "@counter@a")
    assert "@counter@a" in shown and "State" in shown and " 5" in shown
    got = cli.json("entity", "get", "@counter@a")
    assert got["state"] == 5 and got["pending_operations"] == 0 and got["locked_by"] is None
    listed = cli.ok("entity", "list", "--name", "counter")
    assert listed.splitlines()[0].split() == [
        "ENTITY",
        "STATE",
        "MODIFIED",
        "LOCKED",
        "BY",
        "QUEUED",
    ]
    page = cli.json("entity", "list", "--limit", "1")
    assert [e["entity_id"] for e in page["items"]] == ["@counter@a"]
    more = cli.json("entity", "list", "--cursor", page["next_cursor"])
    assert [e["entity_id"] for e in more["items"]] == ["@counter@b"]
    cli.ok("entity", "signal", "@counter@b", "reset")
    wait_for(lambda: not client.get_entity("@counter@b").has_state)  # type: ignore[union-attr]
    assert cli.json("entity", "clean") == {"removed": 1, "released_locks": 0}
    assert "no entity @counter@b" in cli.fails("entity", "get", "@counter@b")


def test_pause_and_resume_an_entity_and_an_entity_type(cli, client, start_worker):
    start_worker(app, poll_interval=0.2)
    out = cli.ok("pause", "@counter@p", "--reason", "fixing")
    assert "Paused entity @counter@p" in out
    assert "already paused" in cli.ok("pause", "@counter@p")
    cli.ok("entity", "signal", "@counter@p", "add", "2")
    assert "1 operation queued" in cli.ok("pause", "@counter@p", "--resume-at", "+1h")
    shown = cli.ok("entity", "get", "@counter@p")
    assert "Paused" in shown and "fixing" in shown
    assert "Resumed entity @counter@p" in cli.ok("resume", "@counter@p")
    wait_for(lambda: _state(client, "@counter@p") == 2)

    assert "Paused entity counter" in cli.ok("pause", "--entity-type", "counter", "-r", "deploy")
    assert [p["kind"] for p in cli.json("pauses")] == ["entity"]
    cli.ok("entity", "signal", "@counter@p", "add", "3")
    assert cli.json("entity", "get", "@counter@p")["pause"]["source"] == "entity"
    assert "Resumed entity counter" in cli.ok("resume", "--entity-type", "counter")
    wait_for(lambda: _state(client, "@counter@p") == 5)


def test_bad_entity_command_lines(cli):
    assert "write it @name@key" in cli.fails("entity", "get", "counter-a")
    assert "not valid JSON" in cli.fails("entity", "signal", "@counter@a", "add", "{x", code=2)
    error = cli.fails("pause", "--entity-type", "counter", "--orchestrator", "x", code=2)
    assert "give --orchestrator or --entity-type, not both" in error
    error = cli.fails("pause", "some-id", "--entity-type", "counter", code=2)
    assert "--entity-type counter acts on the whole type" in error
