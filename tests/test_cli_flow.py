"""``tenuto schedule ...``, ``tenuto limit`` and ``tenuto limits``, as a user runs them."""

from __future__ import annotations

import pytest

from test_cli import Cli, table_row


@pytest.fixture
def cli(db_url: str) -> Cli:
    return Cli(db_url)


def test_schedule_lifecycle_on_the_command_line(cli):
    out = cli.ok(
        "schedule", "create", "nightly", "backup", "--cron", "0 2 * * *",
        "--timezone", "Europe/Paris", "--input", '{"volume": "vol-1"}',
    )  # fmt: skip
    assert "Schedule nightly: 0 2 * * * Europe/Paris; next" in out
    created = cli.json("schedule", "show", "nightly")
    assert created["input"] == {"volume": "vol-1"} and created["timezone"] == "Europe/Paris"
    cli.ok("schedule", "create", "beat", "ping", "--every", "30s", "--overlap", "allow_all")
    row = table_row(cli.ok("schedule", "list"), "beat")
    assert "every 30s" in row and "ping" in row
    assert "Paused schedule nightly." in cli.ok(
        "schedule", "pause", "nightly", "-r", "storage migration", "--resume-at", "+6h"
    )
    assert "PAUSED" in table_row(cli.ok("schedule", "list"), "nightly")
    assert "storage migration" in table_row(cli.ok("pauses"), "nightly")
    assert "Resumed schedule nightly." in cli.ok("schedule", "resume", "nightly")
    assert cli.ok("schedule", "pause", "--orchestrator", "ping").startswith("Paused 1 schedule")
    started = cli.json("schedule", "trigger", "beat")["instance_id"]
    assert started.startswith("beat@")
    assert cli.json("status", started)["tags"] == {"schedule": "beat"}
    filled = cli.json(
        "schedule", "backfill", "nightly", "--start", "2026-01-01", "--end", "2026-01-03"
    )
    assert filled["started"] == [
        "nightly@2026-01-01T01:00:00Z",
        "nightly@2026-01-02T01:00:00Z",
    ]
    assert "Deleted schedule beat." in cli.ok("schedule", "delete", "beat")
    assert [s["schedule_id"] for s in cli.json("schedule", "list")] == ["nightly"]


def test_schedule_errors_say_what_to_do(cli):
    error = cli.fails("schedule", "create", "x", "y", "--cron", "61 * * * *")
    assert "invalid cron expression" in error and "five fields" in error
    assert "give exactly one of every" in cli.fails("schedule", "create", "x", "y")
    assert "no schedule with id 'nope'" in cli.fails("schedule", "show", "nope")
    assert "--every" in cli.fails("schedule", "create", "x", "y", "--every", "soon", code=2)
    assert "--orchestrator" in cli.fails("schedule", "pause", code=2)


def test_limits_on_the_command_line(cli):
    out = cli.ok(
        "limit", "--activity", "charge_card", "--max-concurrent", "5", "--per-second", "20",
        "-r", "PSP quota",
    )  # fmt: skip
    assert out.strip() == "Limited activity charge_card: 5 at once, 20/s."
    cli.ok("limit", "--orchestrator", "migrate", "--max-running", "2")
    listed = cli.ok("limits")
    assert "PSP quota" in table_row(listed, "charge_card")
    assert "2 running" in table_row(listed, "migrate")
    assert cli.json("limits")[0]["max_concurrent"] == 5
    assert "at least 1" in cli.fails("limit", "--activity", "a", "--max-concurrent", "0")
    assert "--max-running" in cli.fails("limit", "--orchestrator", "m", code=2)
    assert "one of --activity" in cli.fails("limit", "--max-concurrent", "1", code=2)
    assert cli.ok("limit", "--activity", "charge_card", "--remove").strip() == "Limit removed."
    assert [lim["name"] for lim in cli.json("limits")] == ["migrate"]
