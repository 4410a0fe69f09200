"""One rule per input, whatever the entry point: a resume time in the past is refused by
the client, the CLI and REST alike; an instance a standing pause holds shows that pause's
scheduled resume; read-only commands never create a database, and an unknown id is
reported with the database it was looked up in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

import tenuto
from test_cli import Cli, run_cli


@pytest.fixture
def pending(client: tenuto.Client) -> str:
    return tenuto.Client(store=client.store, check_names=False).start("backup", None)


def test_a_resume_time_in_the_past_is_refused_everywhere(
    client: tenuto.Client, pending: str, db_url: str, http_server
) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    message = "is in the past: the resume time must be in the future"
    with pytest.raises(tenuto.ValidationError, match=message):
        client.pause(pending, resume_at=past)
    with pytest.raises(tenuto.ValidationError, match=message):
        client.pause_many(resume_at=past)
    with pytest.raises(tenuto.ValidationError, match=message):
        client.pause_orchestrator("backup", resume_at=past)
    assert message in Cli(db_url).fails("pause", pending, "--resume-at", "-1h")
    server = http_server()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        for path in (
            f"/api/instances/{pending}/pause",
            "/api/bulk/pause",
            "/api/orchestrators/backup/pause",
        ):
            r = api.post(path, json={"resume_at": past.isoformat()})
            assert r.status_code == 422 and message in r.json()["message"], (path, r.text)
    assert client.status(pending).runtime_status is tenuto.Status.PENDING
    assert client.standing_pauses() == []
    # A time a moment ago is clock skew, not a mistake: it resumes at once.
    assert client.pause(pending, resume_at=datetime.now(UTC) - timedelta(seconds=1))


def test_an_instance_held_by_a_standing_pause_shows_its_scheduled_resume(
    client: tenuto.Client, pending: str, db_url: str
) -> None:
    at = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    client.pause_orchestrator("backup", "freeze", resume_at=at)
    st = client.status(pending)
    assert st.pause is not None and st.pause.source == "orchestrator"
    assert st.pause.resume_at == at
    [listed] = client.query(status=[tenuto.Status.PAUSED]).items
    assert listed.pause is not None and listed.pause.resume_at == at
    shown = Cli(db_url).ok("status", pending)
    assert f"Resumes at    {at.strftime('%Y-%m-%d %H:%M:%S')}Z" in shown


def test_read_only_commands_never_create_a_database(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    url = f"sqlite:///{path}"
    for args in (["status", "x"], ["list"], ["history", "x"], ["pauses"], ["workers"]):
        proc = run_cli(*args, "--db", url)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr == (
            f"Error: there is no database at {path}: check --db or $TENUTO_DB "
            "(nothing was created)\n"
        )
    assert not path.exists()


def test_an_unknown_id_names_the_database(client: tenuto.Client, db_url: str) -> None:
    shown = db_url
    if "@" in db_url and ":" in db_url.split("@")[0].split("//")[1]:
        shown = db_url.replace(db_url.split("//")[1].split("@")[0].split(":")[1], "***")
    for args in (["status", "nope"], ["pause", "nope"], ["history", "nope"]):
        error = Cli(db_url).fails(*args)
        assert error == f"Error: no orchestration instance with id 'nope' in the database {shown}"
