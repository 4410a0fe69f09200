"""``tenuto list`` and ``tenuto pauses`` on ordinary terminals: at 80 and 120 columns the
id, the status and the pause reason stay whole (the name too at 120); timestamps go or
shorten first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import tenuto
from test_cli import run_cli

REASON = "storage outage INC-1234"


@pytest.fixture
def paused(client: tenuto.Client) -> list[str]:
    named = tenuto.Client(client.store.url, store=client.store, check_names=False)
    ids = named.start_many("nightly_backup", [None] * 3)
    named.start("billing", None, instance_id="billing-2024-05")
    for iid in ids:
        client.pause(iid, reason=REASON)
    resume_at = datetime.now(UTC) + timedelta(hours=8)
    client.pause("billing-2024-05", reason="business hours", resume_at=resume_at)
    client.pause_orchestrator("nightly_backup", "vendor is on it", force=True)
    client.pause_activity("charge_card", "billing upgrade", force=True)
    return [*ids, "billing-2024-05"]


def _at(width: int, db_url: str, *args: str) -> list[str]:
    proc = run_cli(*args, "--db", db_url, env={"COLUMNS": str(width)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(len(line) <= width for line in lines), proc.stdout
    return lines


@pytest.mark.parametrize("width", [80, 120])
def test_list_keeps_id_status_and_reason(width: int, paused: list[str], db_url: str) -> None:
    lines = _at(width, db_url, "list", "--status", "paused")
    header = lines[0].split()
    assert header[0] == "ID" and "Status" in header and header[-1] == "Reason"
    assert "Created" not in header  # timestamps go first
    assert ("Name" in header) is (width == 120)
    for iid in paused:
        [row] = [line for line in lines if line.startswith(iid)]
        assert " PAUSED " in row
        rest = row[len(iid) :]
        assert ("nightly_backup" in rest or "billing" in rest) is (width == 120)
        assert "storage outage" in rest or "business hours" in rest
    billing = "\n".join(lines[lines.index(next(x for x in lines if x.startswith("billing"))) :])
    assert "(resumes in 7h 59m)" in " ".join(billing.split())


@pytest.mark.parametrize("width", [80, 120])
def test_pauses_keep_kind_name_and_reason(width: int, paused: list[str], db_url: str) -> None:
    lines = _at(width, db_url, "pauses")
    assert lines[0].split()[:3] == ["Kind", "Name", "Reason"]
    [orchestrator] = [line for line in lines if line.startswith("orchestrator")]
    assert "nightly_backup  vendor is on it" in orchestrator
    assert ("By" in lines[0]) is (width == 120)


def test_a_wide_pipe_keeps_every_column(paused: list[str], db_url: str) -> None:
    header = _at(200, db_url, "list", "--status", "paused")[0].split()
    assert header[:5] == ["ID", "Name", "Status", "Created", "Updated"]
