"""Bulk commands are hard to get wrong: --dry-run counts and changes nothing, a terminal
asks before acting, and the API has a count-only form (both backends)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

import tenuto
from tenuto import Status
from test_cli import Cli


@pytest.fixture
def seeded(client: tenuto.Client) -> tenuto.Client:
    """Five PENDING backups (b-0..b-4), two PENDING reports, one TERMINATED backup."""
    client.start_many("backup", [None] * 5, instance_ids=[f"b-{i}" for i in range(5)])
    client.start_many("report", [None] * 2, instance_ids=["r-0", "r-1"])
    client.start("backup", None, instance_id="b-done")
    client.terminate("b-done", "seed")
    return client


def _statuses(client: tenuto.Client) -> dict[str, Status]:
    return {st.instance_id: st.runtime_status for st in client.query(limit=100).items}


def test_preview_many_counts_what_each_action_would_change(seeded: tenuto.Client) -> None:
    before = _statuses(seeded)
    pause = seeded.preview_many("pause", name="backup", sample=3)
    assert (pause.action, pause.count, len(pause.sample)) == ("pause", 5, 3)
    assert set(pause.sample) <= {f"b-{i}" for i in range(5)}
    assert seeded.preview_many("terminate").count == 7
    assert seeded.preview_many("purge").sample == ("b-done",)
    assert seeded.preview_many("resume").count == 0
    # Statuses the action does not apply to are passed over.
    assert seeded.preview_many("pause", status=[Status.TERMINATED]).count == 0
    with pytest.raises(tenuto.ValidationError, match="unknown bulk action 'pasue'"):
        seeded.preview_many("pasue")
    assert _statuses(seeded) == before


def test_dry_run_counts_and_changes_nothing(seeded: tenuto.Client, db_url: str) -> None:
    cli = Cli(db_url)
    before = _statuses(seeded)
    out = cli.ok("pause", "--all", "--name", "backup", "--dry-run", "--reason", "x")
    lines = out.splitlines()
    assert lines[0].startswith("Would pause 5 instances (first: b-")
    assert lines[1] == "Dry run: nothing changed."
    assert cli.ok("resume", "--all", "--dry-run") == (
        "Would resume 0 instances.\nDry run: nothing changed.\n"
    )
    assert cli.ok("terminate", "--all", "--id-prefix", "r-", "--dry-run").startswith(
        "Would terminate 2 instances (first: r-"
    )
    data = cli.json("purge", "--all", "--dry-run")
    assert data == {"dry_run": True, "action": "purge", "count": 1, "sample": ["b-done"]}
    assert _statuses(seeded) == before
    assert "--dry-run goes with --all" in cli.fails("pause", "b-0", "--dry-run", code=2)


def test_terminate_takes_the_filters_of_pause(seeded: tenuto.Client, db_url: str) -> None:
    cli = Cli(db_url)
    assert cli.ok("terminate", "--all", "--name", "report", "--reason", "old") == (
        "Terminated 2 instances.\n"
    )
    statuses = _statuses(seeded)
    assert statuses["r-0"] is statuses["r-1"] is Status.TERMINATED
    assert statuses["b-0"] is Status.PENDING
    assert "add --all" in cli.fails("terminate", "--name", "backup", code=2)


def _on_a_terminal(db_url: str, answer: str, *args: str) -> tuple[int, str]:
    """Run ``tenuto ARGS`` with a pseudo-terminal as stdin, answer its question; returns
    its exit code and what it printed on stderr."""
    leader, follower = os.openpty()
    inherited = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenuto", *args, "--db", db_url],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=inherited,
    )
    os.close(follower)
    os.write(leader, answer.encode())
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(leader)
    return proc.returncode, out + err


def test_a_bulk_command_on_a_terminal_asks_first(seeded: tenuto.Client, db_url: str) -> None:
    code, shown = _on_a_terminal(db_url, "n\n", "pause", "--all", "--name", "backup")
    assert code == 1 and "Pause 5 instances (first: b-" in shown and "Aborted" in shown
    assert seeded.count()[Status.PAUSED] == 0
    code, shown = _on_a_terminal(db_url, "y\n", "pause", "--all", "--name", "backup")
    assert code == 0 and "Paused 5 instances." in shown
    assert seeded.count()[Status.PAUSED] == 5
    # --yes does not ask; without a terminal nothing asks (scripts keep working).
    code, shown = _on_a_terminal(db_url, "", "resume", "--all", "--yes")
    assert code == 0 and shown == "Resumed 5 instances.\n"


def test_rest_preview_is_the_count_only_form(http_server, seeded: tenuto.Client) -> None:
    server = http_server()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        r = api.post("/api/bulk/preview", json={"action": "terminate", "name": "report"})
        assert r.status_code == 200, r.text
        assert r.json()["count"] == 2 and sorted(r.json()["sample"]) == ["r-0", "r-1"]
        bad = api.post("/api/bulk/preview", json={"action": "explode"})
        assert bad.status_code == 422
    assert _statuses(seeded)["r-0"] is Status.PENDING
