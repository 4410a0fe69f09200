"""The ``tenuto`` command line, run as a real subprocess against both backends: every
command in table and JSON form, pause and resume (one id, ``--all``, and standing pauses
of a whole orchestrator or activity type), history with its pause periods, one-line
errors with non-zero exit codes, ``TENUTO_DB``, and ``serve``."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import tenuto
from tenuto import Status

from helpers import settle, wait_for

APPS = Path(__file__).parent / "apps"
COMMANDS = [
    "start",
    "status",
    "list",
    "pause",
    "resume",
    "pauses",
    "terminate",
    "raise",
    "history",
    "purge",
    "worker",
    "serve",
    "retention",
    "export",
    "import",
    "events",
    "schedule",
    "limit",
    "limits",
    "workers",
    "replay-check",
    "rewind",
    "restart",
    "entity",
]

app = tenuto.App()


@app.activity
def inc(x: int) -> int:
    return x + 1


@app.orchestrator
def one_step(ctx, x):
    return (yield ctx.call_activity(inc, x))


@app.orchestrator
def waits(ctx, _):
    return (yield ctx.wait_for_event("go"))


@app.orchestrator
def step_then_wait(ctx, x):
    a = yield ctx.call_activity(inc, x)
    b = yield ctx.wait_for_event("go")
    return a + b


@app.activity
def charge(order: str) -> str:
    return f"charged {order}"


@app.orchestrator
def checkout(ctx, order):
    return (yield ctx.call_activity(charge, order))


# -- running the command line -----------------------------------------------------------


def run_cli(
    *args: str, input: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m tenuto ARGS`` in a subprocess, its output a pipe as in a script."""
    # Not the runner's terminal size: pytest-xdist workers have COLUMNS=80, which would
    # narrow the tables and cut the ids the tests look for.
    inherited = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [sys.executable, "-m", "tenuto", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env={**inherited, **(env or {})},
        cwd=cwd,
    )


class Cli:
    """Runs ``tenuto`` against one database and checks exit codes and output."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--db", self.db_url, input=input)

    def ok(self, *args: str, input: str | None = None) -> str:
        """Run; expect exit code 0; return stdout."""
        proc = self.run(*args, input=input)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", input=input))

    def fails(self, *args: str, code: int = 1, input: str | None = None) -> str:
        """Run; expect exit code ``code``, nothing on stdout and a one-line error on
        stderr (no traceback); return that line."""
        proc = self.run(*args, input=input)
        return one_line_error(proc, code)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.args, proc.stdout, proc.stderr)
    error = proc.stderr.strip()
    assert "\n" not in error and error.startswith("Error: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return error


@pytest.fixture
def cli(db_url: str) -> Cli:
    return Cli(db_url)


def table_row(output: str, *needles: str) -> str:
    """The one line of a table that contains every needle."""
    rows = [line for line in output.splitlines() if all(n in line for n in needles)]
    assert len(rows) == 1, (needles, output)
    return rows[0]


# -- help ------------------------------------------------------------------------------


def test_help_lists_every_command_and_each_command_has_examples():
    proc = run_cli("--help")
    assert proc.returncode == 0
    listed = re.findall(r"^  ([\w-]+)\s{2,}", proc.stdout.split("Commands:")[1], re.MULTILINE)
    assert sorted(listed) == sorted(COMMANDS)
    for command in COMMANDS:
        sub = run_cli(command, "--help")
        assert sub.returncode == 0, sub.stderr
        assert "Example" in sub.stdout and "--db" in sub.stdout, command


# -- start, status, list ---------------------------------------------------------------


def test_start_prints_the_id_and_takes_json_input_from_the_argument_or_stdin(cli, client):
    assert cli.ok("start", "one_step", "41", "--id", "answer") == "answer\n"
    assert client.status("answer").input == 41
    started = cli.json("start", "one_step", '{"a": [1, "two"]}')
    assert started["runtime_status"] == "PENDING" and started["name"] == "one_step"
    assert client.status(started["instance_id"]).input == {"a": [1, "two"]}
    from_stdin = cli.ok("start", "one_step", "-", input='"from stdin"').strip()
    assert client.status(from_stdin).input == "from stdin"
    no_input = cli.ok("start", "one_step").strip()
    assert client.status(no_input).input is None


def test_start_with_version_and_tags_shown_by_status(cli, client):
    iid = cli.ok(
        "start", "one_step", "1", "--version", "2.1", "--tag", "team=ops", "--tag", "note=a=b"
    ).strip()
    st = client.status(iid)
    assert st.version == "2.1" and st.tags == {"team": "ops", "note": "a=b"}
    table = cli.ok("status", iid)
    assert re.search(r"Version\s+2\.1", table) and re.search(r"Tags\s+team=ops, note=a=b", table)
    data = cli.json("status", iid)
    assert data["version"] == "2.1" and data["tags"] == {"team": "ops", "note": "a=b"}
    for bad in ("novalue", "=v"):
        assert "write KEY=VALUE" in cli.fails("start", "one_step", "--tag", bad, code=2)
    assert "invalid value of tag 'k'" in cli.fails("start", "one_step", "--tag", "k=a\tb")


def test_start_at_delays_the_first_step(cli, client, start_worker):
    worker = start_worker(app)
    later = cli.ok("start", "one_step", "1", "--start-at", "+1h").strip()
    now = cli.ok("start", "one_step", "1", "--start-at", datetime.now(UTC).isoformat()).strip()
    assert client.wait(now, timeout=10).output == 2
    settle(worker)
    assert client.status(later).runtime_status is Status.PENDING


def test_status_shows_an_instance_as_a_table_and_as_json(cli, client):
    iid = client.start("one_step", {"n": 41}, instance_id="s-1")
    table = cli.ok("status", iid)
    assert re.search(r"Instance\s+s-1", table) and re.search(r"Name\s+one_step", table)
    assert re.search(r"Status\s+PENDING", table) and re.search(r'Input\s+\{"n": 41\}', table)
    assert cli.json("status", iid) == client.status(iid).to_json()


def test_status_wait_returns_once_the_instance_has_finished(cli, client, start_worker):
    start_worker(app)
    iid = client.start(one_step, 1)
    data = cli.json("status", iid, "--wait", "10")
    assert (data["runtime_status"], data["output"]) == ("COMPLETED", 2)
    table = cli.ok("status", iid)
    assert re.search(r"Status\s+COMPLETED", table) and re.search(r"Output\s+2", table)


def test_status_wait_that_times_out_shows_the_instance_and_exits_1(cli, client):
    iid = client.start(waits, None, instance_id="w-late")  # no worker: stays PENDING
    proc = cli.run("status", iid, "--wait", "0.2", "--json")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert json.loads(proc.stdout)["runtime_status"] == "PENDING"
    assert proc.stderr.strip() == "Error: instance 'w-late' is still PENDING after 0.2 s"


def test_list_filters_by_status_name_id_prefix_and_dates(cli, client):
    for iid in ("a-1", "a-2", "a-3"):
        client.start(one_step, 1, instance_id=iid)
    client.start(waits, None, instance_id="b-1")
    client.terminate("a-3")

    def ids(*args: str) -> set[str]:
        return {st["instance_id"] for st in cli.json("list", *args)["items"]}

    table = cli.ok("list")
    assert "4 instances." in table
    assert "TERMINATED" in table_row(table, "a-3", "one_step")
    assert "PENDING" in table_row(table, "b-1", "waits")
    assert ids("--status", "terminated") == {"a-3"}
    assert ids("--status", "PENDING", "--status", "Terminated", "--name", "one_step") == {
        "a-1",
        "a-2",
        "a-3",
    }
    assert ids("-s", "pending", "-n", "one_step") == {"a-1", "a-2"}
    assert ids("--id-prefix", "b-") == {"b-1"}
    assert ids("--created-after", "-1h") == {"a-1", "a-2", "a-3", "b-1"}
    a3, b1 = client.status("a-3").created_at, client.status("b-1").created_at
    between = (a3 + (b1 - a3) / 2).isoformat()
    assert ids("--created-before", between) == {"a-1", "a-2", "a-3"}
    assert ids("--created-after", between, "--created-before", "+1m") == {"b-1"}
    assert "No instances match." in cli.ok("list", "--created-before", "2000-01-01")


def test_list_pages_with_a_cursor_hint(cli, client):
    for i in range(5):
        client.start(one_step, i, instance_id=f"p-{i}")
    first = cli.ok("list", "--limit", "2")
    cursor = re.search(r"Next page: add --cursor (\S+)", first)
    assert cursor, first
    assert len([line for line in first.splitlines() if line.startswith("p-")]) == 2
    second = cli.json("list", "--limit", "2", "--cursor", cursor.group(1))
    third = cli.json("list", "--limit", "2", "--cursor", second["next_cursor"])
    assert third["next_cursor"] is None and len(third["items"]) == 1
    seen = [line.split()[0] for line in first.splitlines() if line.startswith("p-")]
    seen += [st["instance_id"] for st in second["items"] + third["items"]]
    assert sorted(seen) == [f"p-{i}" for i in range(5)]


# -- pause and resume ------------------------------------------------------------------


def test_pause_and_resume_one_instance(cli, client, start_worker):
    start_worker(app)
    iid = client.start(waits, None)
    wait_for(lambda: client.status(iid).runtime_status is Status.RUNNING, what="RUNNING")

    out = cli.ok("pause", iid, "--reason", "business hours", "--by", "alice")
    assert out == f"Paused {iid} (now PAUSED).\n"
    pause = client.status(iid).pause
    assert pause is not None and (pause.reason, pause.by) == ("business hours", "alice")

    table = cli.ok("status", iid)
    assert re.search(r"Status\s+PAUSED", table) and re.search(r"Paused by\s+alice", table)
    assert re.search(r"Reason\s+business hours", table) and "Paused since" in table
    listed = cli.ok("list", "--status", "paused")
    assert "Paused since" in listed
    row = table_row(listed, iid)
    assert "PAUSED" in row and "alice" in row and "business hours" in row
    assert pause.since.strftime("%Y-%m-%d %H:%M:%S") in row

    again = cli.json("pause", iid, "--reason", "twice")
    assert again["changed"] is False and again["instance"]["pause"]["reason"] == "business hours"
    assert "already paused; nothing changed" in cli.ok("pause", iid)

    resumed = cli.json("resume", iid, "--reason", "night window", "--by", "bob")
    assert resumed["changed"] is True and resumed["instance"]["runtime_status"] == "RUNNING"
    assert "was not paused; nothing changed" in cli.ok("resume", iid)
    client.raise_event(iid, "go", "done")
    assert client.wait(iid, timeout=10).output == "done"
    kinds = [(e.type, e.data.get("by")) for e in client.history(iid)]
    assert ("ExecutionSuspended", "alice") in kinds and ("ExecutionResumed", "bob") in kinds


def test_pause_resume_at_takes_a_duration_or_an_iso_time(cli, client):
    client.start(one_step, 1, instance_id="r-1")
    client.start(one_step, 1, instance_id="r-2")
    before = datetime.now(UTC)
    data = cli.json("pause", "r-1", "--resume-at", "+30m")
    resume_at = datetime.fromisoformat(data["instance"]["pause"]["resume_at"])
    assert before + timedelta(minutes=30) <= resume_at <= datetime.now(UTC) + timedelta(minutes=30)
    cli.ok("pause", "r-2", "--resume-at", "2031-01-02T03:04:05+01:00")
    pause = client.status("r-2").pause
    assert pause is not None and pause.resume_at == datetime(2031, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert "resumes at 2031-01-02 02:04:05Z" in table_row(cli.ok("list"), "r-2")


def test_pause_resume_at_on_a_paused_instance_sets_its_resume_and_says_so(cli, client):
    client.start(one_step, 1, instance_id="r-3")
    assert cli.ok("pause", "r-3", "--reason", "incident").startswith("Paused r-3")
    out = cli.ok("pause", "r-3", "--resume-at", "2031-01-02T03:04:05Z")
    assert out == "r-3 was already paused; it now resumes by itself at 2031-01-02 03:04:05Z.\n"
    pause = client.status("r-3").pause
    assert pause is not None and pause.reason == "incident"
    assert pause.resume_at == datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert "scheduled resume set to 2031-01-02 03:04:05Z" in cli.ok("history", "r-3")
    assert "already paused; nothing changed" in cli.ok("pause", "r-3")


def test_pause_and_resume_all_with_filters_print_the_count(cli, client):
    for iid in ("x-1", "x-2"):
        client.start(one_step, 1, instance_id=iid)
    client.start(waits, None, instance_id="y-1")

    def statuses() -> dict[str, str]:
        return {i: client.status(i).runtime_status.value for i in ("x-1", "x-2", "y-1")}

    out = cli.ok("pause", "--all", "--name", "one_step", "--reason", "maintenance")
    assert out == "Paused 2 instances.\n"
    assert statuses() == {"x-1": "PAUSED", "x-2": "PAUSED", "y-1": "PENDING"}
    assert cli.json("pause", "--all", "--name", "one_step") == {"count": 0}
    assert cli.json("resume", "--all", "--id-prefix", "x-1") == {"count": 1}
    assert statuses() == {"x-1": "PENDING", "x-2": "PAUSED", "y-1": "PENDING"}
    assert cli.ok("resume", "--all", "--created-after", "-1h") == "Resumed 1 instance.\n"
    assert cli.ok("pause", "--all", "--status", "pending") == "Paused 3 instances.\n"
    assert set(statuses().values()) == {"PAUSED"}


def test_bulk_forms_refuse_ambiguous_targets(cli, client):
    client.start(one_step, 1, instance_id="z-1")
    assert "--all" in cli.fails("pause", code=2)
    assert "not both" in cli.fails("resume", "z-1", "--all", code=2)
    assert "add --all" in cli.fails("pause", "--name", "one_step", code=2)
    assert "add --all" in cli.fails("purge", "--status", "completed", code=2)
    assert client.status("z-1").runtime_status is Status.PENDING


# -- standing pauses -------------------------------------------------------------------


def test_pause_and_resume_an_orchestrator_type(cli, client, start_worker):
    start_worker(app)
    client.start(waits, None, instance_id="w-1")
    client.start(step_then_wait, 1, instance_id="other")
    for iid in ("w-1", "other"):
        wait_for(lambda i=iid: client.status(i).runtime_status is Status.RUNNING, what=iid)

    out = cli.ok("pause", "--orchestrator", "waits", "--reason", "business hours", "--by", "ops")
    assert out == "Paused orchestrator waits: every instance held until resumed.\n"
    pause = client.status("w-1").pause
    assert pause is not None
    assert (pause.reason, pause.by, pause.source) == ("business hours", "ops", "orchestrator")
    assert client.status("other").runtime_status is Status.RUNNING
    table = cli.ok("status", "w-1")
    assert re.search(r"Paused by\s+ops \(standing pause of orchestrator waits\)", table)
    assert "ops (standing pause)" in table_row(cli.ok("list"), "w-1", "PAUSED", "business hours")

    again = cli.json("pause", "--orchestrator", "waits", "--reason", "twice")
    assert again["changed"] is False
    [standing] = again["standing_pauses"]
    assert {k: standing[k] for k in ("kind", "name", "reason", "by")} == {
        "kind": "orchestrator",
        "name": "waits",
        "reason": "business hours",
        "by": "ops",
    }
    assert "Orchestrator waits was already paused; nothing changed (paused by ops " in cli.ok(
        "pause", "--orchestrator", "waits"
    )

    assert cli.ok("start", "waits", "--id", "w-2") == "w-2\n"  # accepted, and held
    late = client.status("w-2")
    assert late.runtime_status is Status.PAUSED and late.pause is not None
    assert late.pause.reason == "business hours"
    assert "paused with its orchestrator (standing pause), by ops: business hours" in table_row(
        cli.ok("history", "w-2"), "ExecutionSuspended"
    )

    out = cli.ok("resume", "--orchestrator", "waits", "--reason", "night", "--by", "ops")
    assert out.startswith("Resumed orchestrator waits: the instances it paused continue")
    assert cli.json("resume", "--orchestrator", "waits") == {
        "changed": False,
        "standing_pauses": [],
    }
    assert cli.ok("resume", "--orchestrator", "waits") == (
        "Orchestrator waits was not paused; nothing changed.\n"
    )
    for iid in ("w-1", "w-2"):
        client.raise_event(iid, "go", iid)
    assert client.wait("w-1", timeout=10).output == "w-1"
    assert client.wait("w-2", timeout=10).output == "w-2"


def test_pause_and_resume_an_activity_type(cli, client, start_worker):
    start_worker(app)
    out = cli.ok("pause", "--activity", "charge", "--reason", "billing upgrade", "--by", "ops")
    assert out == (
        "Paused activity charge: no execution starts anywhere until resumed; running ones finish.\n"
    )
    client.start(checkout, "o-1", instance_id="c-1")
    client.start(waits, None, instance_id="p-1")
    client.pause("p-1", "unrelated", by="alice")
    held = wait_for(lambda: client.status("c-1").held_activities, what="a held activity")
    assert held == ("charge",) and client.status("c-1").runtime_status is Status.RUNNING

    table = cli.ok("status", "c-1")
    assert re.search(r"Status\s+RUNNING", table)
    assert re.search(r"Held activities\s+charge \(paused by ops .+ ago: billing upgrade\)", table)
    listed = cli.ok("list")
    assert "Held activities" in table_row(listed, "ID", "Status")
    assert table_row(listed, "c-1", "RUNNING").rstrip().endswith("charge")
    assert "alice" in table_row(listed, "p-1", "PAUSED")
    [item] = cli.json("list", "--id-prefix", "c-")["items"]
    assert item["runtime_status"] == "RUNNING" and item["held_activities"] == ["charge"]
    assert "held by a standing pause" in table_row(cli.ok("history", "c-1"), "ActivityHeld")

    out = cli.ok("resume", "--activity", "charge", "--reason", "billing is back")
    assert out == (
        "Resumed activity charge: held executions start in the order they were scheduled.\n"
    )
    assert client.wait("c-1", timeout=10).output == "charged o-1"
    assert "Held activities" not in cli.ok("status", "c-1")
    assert "Activity charge was not paused; nothing changed." in cli.ok(
        "resume", "--activity", "charge"
    )


def test_pauses_lists_the_standing_pauses_as_a_table_and_as_json(cli, client):
    assert cli.ok("pauses") == "No standing pauses.\n"
    assert cli.json("pauses") == []
    resume_at = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    client.pause_orchestrator(
        "waits", "business hours", resume_at=resume_at, by="alice", force=True
    )
    before = datetime.now(UTC)
    data = cli.json(
        "pause", "--activity", "charge", "--resume-at", "+30m", "--by", "bob", "--force"
    )
    assert data["changed"] is True
    assert [(sp["kind"], sp["name"]) for sp in data["standing_pauses"]] == [
        ("orchestrator", "waits"),
        ("activity", "charge"),
    ]
    charge_resumes = datetime.fromisoformat(data["standing_pauses"][1]["resume_at"])
    assert before + timedelta(minutes=30) <= charge_resumes
    assert charge_resumes <= datetime.now(UTC) + timedelta(minutes=30)

    table = cli.ok("pauses")
    header = table_row(table, "Kind", "Name")
    assert re.search(r"Reason\s+By\s+Since\s+Resumes at", header)
    row = table_row(table, "orchestrator", "waits")
    assert "business hours" in row and "alice" in row and " ago)" in row
    assert "2031-01-02 03:04:05Z" in row
    row = table_row(table, "activity", "charge")
    assert "(none given)" in row and "bob" in row
    assert "2 standing pauses." in table
    assert cli.json("pauses") == [sp.to_json() for sp in client.standing_pauses()]


def test_type_pauses_refuse_conflicting_targets(tmp_path):
    # The command line is checked before any database is touched: one backend will do.
    db = f"sqlite:///{tmp_path / 'tenuto.db'}"
    cli = Cli(db)
    assert "not both" in cli.fails("pause", "x-1", "--orchestrator", "waits", code=2)
    assert "not both" in cli.fails("resume", "x-1", "--activity", "charge", code=2)
    assert "--orchestrator or --activity, not both" in cli.fails(
        "pause", "--orchestrator", "waits", "--activity", "charge", code=2
    )
    assert "neither --all" in cli.fails("pause", "--all", "--orchestrator", "waits", code=2)
    assert "neither --all" in cli.fails("resume", "--activity", "charge", "-s", "paused", code=2)
    assert "needs the name" in cli.fails("pause", "--orchestrator", " ", code=2)
    assert "--orchestrator NAME" in cli.fails("resume", code=2)
    with tenuto.Client(db) as client:
        assert client.standing_pauses() == []


# -- history ---------------------------------------------------------------------------


def test_history_is_a_timeline_with_pause_periods_marked(cli, client, start_worker):
    start_worker(app)
    iid = client.start(step_then_wait, 1)
    wait_for(lambda: any(e.type == "TaskCompleted" for e in client.history(iid)), what="step")
    client.pause(iid, "maintenance", by="alice")

    open_span = cli.ok("history", iid)
    assert "┏" in table_row(open_span, "ExecutionSuspended", "paused by alice: maintenance")
    assert "still paused" in table_row(open_span, "┃")

    client.raise_event(iid, "go", 5)
    client.resume(iid, "done", by="bob")
    assert client.wait(iid, timeout=10).output == 7
    timeline = cli.ok("history", iid)
    lines = timeline.splitlines()
    assert "activity inc(1)" in table_row(timeline, "TaskScheduled")
    assert "inc → 2" in table_row(timeline, "TaskCompleted")
    assert "go = 5" in table_row(timeline, "EventRaised")
    assert "COMPLETED → 7" in table_row(timeline, "ExecutionCompleted")
    paused = lines.index(table_row(timeline, "ExecutionSuspended", "paused by alice: maintenance"))
    resumed = lines.index(table_row(timeline, "ExecutionResumed", "resumed by bob: done"))
    assert lines[paused].startswith("┏") and lines[resumed].startswith("┗") and paused < resumed
    assert "paused for" in lines[resumed] and "still paused" not in timeline
    assert "OrchestratorStarted" not in timeline
    assert "OrchestratorStarted" in cli.ok("history", iid, "--verbose")

    data = cli.json("history", iid)
    assert data == {"instance_id": iid, "events": [e.to_json() for e in client.history(iid)]}


# -- terminate, raise, purge -----------------------------------------------------------


def test_terminate_ends_an_instance_with_reason_and_actor(cli, client):
    client.start(waits, None, instance_id="t-1")
    client.start(waits, None, instance_id="t-2")
    client.pause("t-2")
    assert cli.ok("terminate", "t-1", "--reason", "obsolete", "--by", "carol") == (
        "Terminated t-1.\n"
    )
    assert client.status("t-1").runtime_status is Status.TERMINATED
    last = client.history("t-1")[-1]
    assert (last.type, last.data["reason"], last.data["by"]) == (
        "ExecutionTerminated",
        "obsolete",
        "carol",
    )
    assert cli.json("terminate", "t-2")["runtime_status"] == "TERMINATED"


def test_raise_delivers_the_event_with_its_json_data(cli, client, start_worker):
    start_worker(app)
    first, second = client.start(waits, None), client.start(waits, None)
    assert cli.ok("raise", first, "go", '{"ok": true}') == f"Raised event 'go' on {first}.\n"
    assert cli.json("raise", second, "go", "-", input="[1, 2]") == {
        "instance_id": second,
        "event": "go",
        "data": [1, 2],
    }
    assert client.wait(first, timeout=10).output == {"ok": True}
    assert client.wait(second, timeout=10).output == [1, 2]


def test_purge_deletes_finished_instances_one_or_all(cli, client):
    for iid in ("f-1", "f-2", "f-3"):
        client.start(one_step, 1, instance_id=iid)
        client.terminate(iid)
    client.start(one_step, 1, instance_id="live")
    assert cli.ok("purge", "f-1") == "Purged 1 instance.\n"
    with pytest.raises(tenuto.InstanceNotFound):
        client.status("f-1")
    assert "terminate it first" in cli.fails("purge", "live")
    assert cli.json("purge", "--all", "--id-prefix", "f-2") == {"count": 1}
    assert cli.ok("purge", "--all") == "Purged 1 instance.\n"
    assert [st.instance_id for st in client.query().items] == ["live"]


# -- errors ----------------------------------------------------------------------------


def test_an_unknown_id_is_a_one_line_error_for_every_command(cli, client):
    for args in (
        ["status", "nope"],
        ["pause", "nope"],
        ["resume", "nope"],
        ["terminate", "nope"],
        ["raise", "nope", "go"],
        ["history", "nope"],
        ["purge", "nope"],
    ):
        # It names the database it looked in (a wrong --db is the usual cause).
        expected = f"Error: no orchestration instance with id 'nope' in the database {cli.db_url}"
        assert cli.fails(*args) == expected, args


def test_a_finished_instance_is_a_one_line_error(cli, client):
    client.start(one_step, 1, instance_id="done")
    client.terminate("done")
    for verb, args in [
        ("pause", ["pause", "done"]),
        ("resume", ["resume", "done"]),
        ("terminate", ["terminate", "done"]),
        ("raise an event to", ["raise", "done", "go"]),
    ]:
        error = cli.fails(*args)
        assert (
            error == f"Error: cannot {verb} instance 'done': it has already finished (TERMINATED)"
        )


def test_bad_input_is_a_one_line_usage_error(tmp_path):
    # The command line is checked before any database is touched: one backend will do.
    db = f"sqlite:///{tmp_path / 'tenuto.db'}"
    cli = Cli(db)
    assert "is not valid JSON" in cli.fails("start", "one_step", "{bad", code=2)
    assert "stdin is not valid JSON" in cli.fails("start", "one_step", "-", input="vol", code=2)
    assert "is not valid JSON" in cli.fails("raise", "x", "go", "[1,", code=2)
    assert "NaN is not a JSON value" in cli.fails("start", "one_step", "[NaN]", code=2)
    assert "'sleeping' is not one of" in cli.fails("list", "--status", "sleeping", code=2)
    assert "'bogus' is not one of" in cli.fails("pause", "--all", "--status", "bogus", code=2)
    assert "invalid time 'yesterday'" in cli.fails("list", "--created-after", "yesterday", code=2)
    assert "invalid duration" in cli.fails("pause", "x", "--resume-at", "+5 parsecs", code=2)
    assert "invalid time" in cli.fails("start", "one_step", "--start-at", "2024-13-45", code=2)
    assert "No such option" in cli.fails("list", "--colour", code=2)
    with tenuto.Client(db) as client:
        assert client.query().items == []


def test_invalid_values_the_client_rejects_are_one_line_errors(cli, client, start_worker):
    assert "invalid cursor 'garbage'" in cli.fails("list", "--cursor", "garbage")
    assert "invalid instance id 'a/b'" in cli.fails("start", "one_step", "--id", "a/b")
    cli.ok("start", "one_step", "--id", "taken")
    assert "already exists" in cli.fails("start", "one_step", "--id", "taken")
    start_worker(app)  # registers the app's orchestrator names
    assert "no orchestrator named 'nosuch'" in cli.fails("start", "nosuch")


def test_an_unusable_database_is_a_one_line_error(tmp_path):
    proc = run_cli("list", "--db", "mysql://nowhere/db")
    assert "unsupported database URL" in one_line_error(proc, 1)
    (tmp_path / "text.db").write_text("not a database")
    proc = run_cli("list", "--db", f"sqlite:///{tmp_path / 'text.db'}")
    assert one_line_error(proc, 1) == "Error: database error: file is not a database"
    proc = run_cli("list", "--db", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert one_line_error(proc, 1).startswith("Error: database error: connection failed")


def test_a_busy_timeout_that_is_not_a_number_names_the_option(tmp_path):
    db = f"sqlite:///{tmp_path / 'tenuto.db'}"
    error = one_line_error(run_cli("list", "--db", f"{db}?busy_timeout=abc"), 1)
    assert "busy_timeout must be a number of seconds" in error and "not 'abc'" in error
    assert "convert" not in error
    with pytest.raises(ValueError, match="busy_timeout must be a number of seconds"):
        tenuto.Client(f"{db}?busy_timeout=-1")


def test_an_empty_db_url_is_refused_instead_of_meaning_the_default(tmp_path):
    for args in (["list"], ["start", "one_step", "1"], ["worker", "crashy:app"]):
        proc = run_cli(*args, "--db", "", cwd=tmp_path)
        assert "the database URL is empty" in one_line_error(proc, 2), args
    with pytest.raises(ValueError, match="the database URL is empty"):
        tenuto.Client("")
    assert list(tmp_path.iterdir()) == []  # no ./tenuto.db was created


def test_an_app_module_that_fails_to_import_is_one_line_saying_where(tmp_path):
    (tmp_path / "broken_syntax.py").write_text("import tenuto\napp = tenuto.App()\nx = (1 +\n")
    (tmp_path / "raises_at_import.py").write_text(
        "import tenuto\n\napp = tenuto.App()\nsettings = {}\nurl = settings['DB_URL']\n"
    )
    db = f"sqlite:///{tmp_path / 'tenuto.db'}"
    for command in ("worker", "serve"):
        error = one_line_error(run_cli(command, "broken_syntax:app", "--db", db, cwd=tmp_path), 2)
        assert "cannot import 'broken_syntax'" in error
        assert f"{tmp_path / 'broken_syntax.py'}:3: SyntaxError:" in error
        error = one_line_error(
            run_cli(command, "raises_at_import:app", "--db", db, cwd=tmp_path), 2
        )
        assert f"{tmp_path / 'raises_at_import.py'}:5: KeyError: 'DB_URL'" in error
    for debug in (["--debug"], []):
        env = {} if debug else {"TENUTO_DEBUG": "1"}
        proc = run_cli(*debug, "worker", "raises_at_import:app", "--db", db, cwd=tmp_path, env=env)
        assert proc.returncode != 0 and "Traceback" in proc.stderr
        assert "settings['DB_URL']" in proc.stderr


# -- TENUTO_DB -------------------------------------------------------------------------


def test_tenuto_db_from_the_environment_and_db_overrides_it(db_url, client, tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {"TENUTO_DB": db_url}
    proc = run_cli("start", "one_step", "5", "--id", "env-1", env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert client.status("env-1").input == 5
    listed = run_cli("list", "--json", env=env, cwd=cwd)
    assert [st["instance_id"] for st in json.loads(listed.stdout)["items"]] == ["env-1"]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    overridden = run_cli("list", "--json", "--db", other, env=env, cwd=cwd)
    # A read looks in the database --db names; it never creates one.
    assert f"no database at {tmp_path / 'other.db'}" in one_line_error(overridden, 1)
    assert not (tmp_path / "other.db").exists()
    assert list(cwd.iterdir()) == []  # no default ./tenuto.db was created


# -- serve -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def non_loopback_address() -> str | None:
    """An IPv4 address of this host other than loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


Server = subprocess.Popen[str]


@pytest.fixture
def serve(
    db_url: str, tmp_path: Path
) -> Iterator[Callable[..., tuple[str, subprocess.Popen[str]]]]:
    """Start ``tenuto serve ARGS`` on a free port; returns its base URL and process once it
    answers HTTP. Stopped with SIGTERM at teardown."""
    procs: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None) -> tuple[str, Server]:
        port = free_port()
        options = ["--db", db_url, "--port", str(port), "--log-level", "warning"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "tenuto", "serve", *args, *options],
            env={
                **os.environ,
                "CRASH_LOG": str(tmp_path / "crash.log"),
                "ACTIVITY_SECONDS": "0",
                "PYTHONPATH": os.pathsep.join([str(APPS), os.environ.get("PYTHONPATH", "")]),
                **(env or {}),
            },
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                httpx.get(f"{url}/api/instances", timeout=1)
            except httpx.TransportError:
                return False
            return True

        wait_for(answers, timeout=30, interval=0.05, what="tenuto serve to answer")
        return url, proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_serve_runs_the_api_and_a_worker_behind_a_token_on_loopback(serve, client):
    url, proc = serve("crashy:app", "--token", "ops=s3cret", "--concurrency", "2")
    unauthorized = httpx.get(f"{url}/api/instances")
    assert unauthorized.status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    assert httpx.get(f"{url}/api/instances", headers=auth).json()["items"] == []
    created = httpx.post(f"{url}/api/instances", json={"name": "chain", "input": 2}, headers=auth)
    assert created.status_code == 201
    iid = created.json()["instance_id"]

    def finished() -> dict[str, Any] | None:
        data: dict[str, Any] = httpx.get(f"{url}/api/instances/{iid}", headers=auth).json()
        return data if data["runtime_status"] == "COMPLETED" else None

    assert wait_for(finished, timeout=20, what="the worker to run chain")["output"] == [1, 2]
    address = non_loopback_address()
    if address is not None:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{address}:{url.rsplit(':', 1)[1]}/api/instances", timeout=2)
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def test_serve_no_worker_needs_no_app_and_takes_tokens_from_the_environment(serve, client):
    url, _ = serve("--no-worker", env={"TENUTO_TOKEN": "ops=s3cret,ci=other"})
    assert httpx.get(f"{url}/api/instances").status_code == 401
    auth = {"Authorization": "Bearer other"}
    assert httpx.get(f"{url}/api/instances", headers=auth).status_code == 200
    created = httpx.post(f"{url}/api/instances", json={"name": "chain", "input": 1}, headers=auth)
    assert created.status_code == 201 and created.json()["runtime_status"] == "PENDING"
    with client.store.reader() as r:
        assert r.known_names("orchestrator") == []  # no worker registered itself


def test_serve_on_a_grpc_port_in_use_is_one_line_and_a_failure(db_url):
    pytest.importorskip("durabletask")
    from tenuto.grpc import GrpcServer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        proc = run_cli("serve", "--grpc-port", port, "--port", str(free_port()), "--db", db_url)
    error = one_line_error(proc, 1)
    assert f"cannot serve the Durable Task protocol on 127.0.0.1:{port}" in error
    assert "in use" in error and "--grpc-port" in error
    # Another gRPC server (which shares ports if allowed) holds it: refused all the same.
    with GrpcServer(db_url, port=0) as other:
        proc = run_cli(
            "serve", "--grpc-port", str(other.port), "--port", str(free_port()), "--db", db_url
        )
        assert "in use" in one_line_error(proc, 1)


def test_serve_needs_an_app_unless_no_worker():
    proc = run_cli("serve")
    assert "--no-worker" in one_line_error(proc, 2)
