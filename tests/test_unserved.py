"""Names no live worker serves are visible, and a standing pause of a name nothing knows
(a typo) is refused unless forced: Client, CLI and REST, on both backends."""

from __future__ import annotations

import logging

import httpx
import pytest

import tenuto
from test_cli import Cli

from helpers import wait_for

app = tenuto.App()


@app.activity
def charge(x: int) -> int:
    return x


@app.orchestrator
def checkout(ctx, x):
    return (yield ctx.call_activity(charge, x))


@app.orchestrator
def check_stock(ctx, x):
    return x


@app.orchestrator
def backup(ctx, x):
    return x


@pytest.fixture
def registered(db_url: str, start_worker) -> None:
    """The app's names registered by a worker that has stopped since: no live worker."""
    start_worker(app).stop()


def test_a_start_no_live_worker_serves_is_accepted_with_a_warning(
    client: tenuto.Client, db_url: str, registered: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tenuto.client"):
        iid = client.start("checkout", 1)
    assert client.status(iid).runtime_status is tenuto.Status.PENDING
    [warning] = [r.getMessage() for r in caplog.records if r.name == "tenuto.client"]
    assert warning.startswith(
        "no live worker serves orchestrator 'checkout' (no worker is running; known: "
        "check_stock, backup)"
    )
    # Status shows it too, as long as it holds.
    assert client.pending_work(iid).warnings == (
        "no live worker serves orchestrator 'checkout' (no worker is running; known: "
        "check_stock, backup)",
    )
    shown = Cli(db_url).ok("status", iid)
    assert "Warning   no live worker serves orchestrator 'checkout'" in shown, shown

    proc = Cli(db_url).run("start", "checkout", "2")
    assert proc.returncode == 0 and len(proc.stdout.split()) == 1
    assert proc.stderr.startswith("Warning: no live worker serves orchestrator 'checkout'")


def test_a_served_start_has_no_warning(
    client: tenuto.Client, db_url: str, start_worker, caplog: pytest.LogCaptureFixture
) -> None:
    start_worker(app)
    with caplog.at_level(logging.WARNING, logger="tenuto.client"):
        iid = client.start("checkout", 1)
    assert [r for r in caplog.records if r.name == "tenuto.client"] == []
    assert client.wait(iid, timeout=30).output == 1
    proc = Cli(db_url).run("start", "check_stock", "1")
    assert proc.returncode == 0 and proc.stderr == ""


def test_a_queued_activity_no_worker_serves_is_named(
    client: tenuto.Client, db_url: str, start_worker
) -> None:
    worker = start_worker(app)
    client.pause_activity("charge", "hold it while the worker goes")
    iid = client.start("checkout", 1)
    wait_for(lambda: client.pending_work(iid).held, timeout=30)
    worker.stop()
    client.resume_activity("charge")
    [queued] = client.pending_work(iid).queued
    assert queued.name == "charge" and queued.held_by is None
    assert client.pending_work(iid).warnings == (
        "no live worker serves orchestrator 'checkout' (no worker is running; known: "
        "check_stock, backup)",
        "no live worker serves activity 'charge' (no worker is running; no other names are known)",
    )


def test_a_standing_pause_of_a_typo_is_refused_unless_forced(
    client: tenuto.Client, db_url: str, registered: None
) -> None:
    with pytest.raises(tenuto.ValidationError) as refused:
        client.pause_orchestrator("backups", "typo")
    assert "orchestrator 'backups'" in str(refused.value)
    assert "known: backup, " in str(refused.value)
    with pytest.raises(tenuto.ValidationError, match=r"activity 'chrage'.*known: charge"):
        client.pause_activity("chrage")
    assert client.standing_pauses() == []
    # A registered name, and a forced one, are paused.
    assert client.pause_orchestrator("backup", "maintenance")
    assert client.pause_activity("nightly_export", "not deployed yet", force=True)
    assert [(p.kind, p.name) for p in client.standing_pauses()] == [
        ("orchestrator", "backup"),
        ("activity", "nightly_export"),
    ]

    cli = Cli(db_url)
    error = cli.fails("pause", "--orchestrator", "backups", "--reason", "x")
    assert "no worker has registered orchestrator 'backups'" in error and "--force" in error
    assert "Paused orchestrator backups" in cli.ok("pause", "--orchestrator", "backups", "--force")
    assert "--force goes with" in cli.fails("pause", "some-id", "--force", code=2)


def test_an_orchestrator_only_instances_use_can_be_paused(
    client: tenuto.Client, db_url: str
) -> None:
    tenuto.Client(db_url, check_names=False).start("legacy", None)
    assert client.pause_orchestrator("legacy", "old instances")


def test_rest_status_of_a_pending_instance_says_no_worker_serves_it(
    http_server, client: tenuto.Client, registered: None
) -> None:
    iid = client.start("checkout", 1)
    server = http_server()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        shown = api.get(f"/api/instances/{iid}").json()
        assert shown["runtime_status"] == "PENDING"
        assert shown["warnings"] == [
            "no live worker serves orchestrator 'checkout' (no worker is running; known: "
            "check_stock, backup)"
        ]
        work = api.get(f"/api/instances/{iid}/work").json()
        assert work["warnings"] == shown["warnings"]
        # A list does not pay for the check.
        [listed] = api.get("/api/instances").json()["items"]
        assert listed["warnings"] is None


def test_rest_refuses_a_typod_standing_pause_with_422(
    http_server, db_url: str, registered: None
) -> None:
    server = http_server()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        r = api.post("/api/orchestrators/backups/pause", json={"reason": "x"})
        assert r.status_code == 422, r.text
        assert "known: backup" in r.json()["message"]
        r = api.post("/api/orchestrators/backups/pause", json={"force": True})
        assert r.status_code == 200 and r.json()["changed"] is True
