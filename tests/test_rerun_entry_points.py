"""Rewind and restart through every entry point (client, CLI, REST, Durable Functions
routes), with a real worker process: a failed instance whose failing call is fixed
completes, and what had succeeded ran once."""

from __future__ import annotations

import json

import httpx
import pytest

import tenuto
from tenuto import Status
from test_changing_code import Workers
from test_cli import run_cli
from test_failures_pause import PAID

DF = "/runtime/webhooks/durabletask"


@pytest.fixture
def workers(db_url, tmp_path):
    w = Workers(db_url, tmp_path)
    w.start("orders_pay")
    yield w
    w.stop()


def _failed(client: tenuto.Client, workers: Workers, iid: str) -> None:
    workers.fail_flag.touch()
    client.start("pay_or_fail", "book", instance_id=iid)
    st = client.wait(iid, timeout=30)
    assert st.runtime_status is Status.FAILED
    assert st.failure is not None and "payment service down" in st.failure.message
    workers.fail_flag.unlink()  # fixed


def _completed_once(client: tenuto.Client, workers: Workers, iid: str, runs: int = 1) -> None:
    st = client.wait(iid, timeout=30)
    assert st.runtime_status is Status.COMPLETED, st.failure
    assert st.output == PAID
    assert workers.ran("reserve book") == runs and workers.ran("ship book") == runs


def test_rewind_through_the_client_runs_only_what_failed(client, workers):
    _failed(client, workers, "r-client")
    client.rewind("r-client", "payments fixed", by="ops")
    _completed_once(client, workers, "r-client")
    assert workers.ran("charge book") == 3
    [rewound] = [e for e in client.history("r-client") if e.type == "ExecutionRewound"]
    assert (rewound.data["reason"], rewound.data["by"]) == ("payments fixed", "ops")


def test_rewind_and_restart_through_the_cli(client, workers, db_url):
    _failed(client, workers, "r-cli")
    live = run_cli("rewind", "r-cli", "--reason", "fixed", "--by", "ops", "--db", db_url)
    assert live.returncode == 0, live.stderr
    assert live.stdout == "Rewound r-cli (now RUNNING).\n"
    _completed_once(client, workers, "r-cli")
    again = run_cli("rewind", "r-cli", "--db", db_url)
    assert again.returncode == 1 and "did not fail" in again.stderr

    restarted = run_cli("restart", "r-cli", "-r", "new prices", "--by", "bob", "--db", db_url)
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.startswith("Restarted r-cli as r-cli (now ")
    _completed_once(client, workers, "r-cli", runs=2)
    first = client.history("r-cli")[0]
    assert first.type == "ExecutionRestarted"
    assert (first.data["reason"], first.data["by"]) == ("new prices", "bob")
    timeline = run_cli("history", "r-cli", "--db", db_url).stdout
    assert "restarted from r-cli by bob: new prices" in " ".join(timeline.split())
    shown = run_cli("restart", "r-cli", "--new-id", "--json", "--db", db_url)
    new_id = json.loads(shown.stdout)["instance"]["instance_id"]
    assert new_id != "r-cli"
    assert client.wait(new_id, timeout=30).output == PAID


def test_rewind_and_restart_through_rest(client, workers, http_server):
    _failed(client, workers, "r-rest")
    server = http_server()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        r = api.post("/api/instances/r-rest/rewind", json={"reason": "fixed", "by": "ops"})
        assert r.status_code == 200, r.text
        assert r.json()["runtime_status"] in ("RUNNING", "COMPLETED")
        _completed_once(client, workers, "r-rest")
        refused = api.post("/api/instances/r-rest/rewind")
        assert refused.status_code == 409 and "did not fail" in refused.json()["message"]
        assert api.post("/api/instances/nope/rewind").status_code == 404

        r = api.post(
            "/api/instances/r-rest/restart",
            json={"new_instance_id": True, "reason": "again", "by": "carol"},
        )
        assert r.status_code == 201, r.text
        new_id = r.json()["instance_id"]
        assert new_id != "r-rest" and client.wait(new_id, timeout=30).output == PAID
        first = client.history(new_id)[0].data
        assert (first["restarted_from"], first["reason"], first["by"]) == (
            "r-rest",
            "again",
            "carol",
        )
        bad = api.post("/api/instances/r-rest/restart", json={"new_instance_id": "maybe"})
        assert bad.status_code == 422


def test_rewind_and_restart_through_the_durable_functions_routes(client, workers, http_server):
    _failed(client, workers, "r-df")
    server = http_server()
    with httpx.Client(base_url=server.url + DF, timeout=30) as df:
        r = df.post("/instances/r-df/rewind", params={"reason": "fixed"})
        assert r.status_code == 202 and r.content == b""
        _completed_once(client, workers, "r-df")
        assert df.post("/instances/r-df/rewind").status_code == 410  # it did not fail
        assert df.post("/instances/nope/rewind").status_code == 404

        r = df.post("/instances/r-df/restart", params={"restartWithNewInstanceId": "true"})
        assert r.status_code == 202, r.text
        new_id = r.json()["id"]
        assert new_id != "r-df" and r.headers["Location"].endswith(f"/instances/{new_id}")
        assert client.wait(new_id, timeout=30).output == PAID
        r = df.post("/instances/r-df/restart")
        assert r.status_code == 202 and r.json()["id"] == "r-df"
        bad = df.post("/instances/r-df/restart", params={"restartWithNewInstanceId": "maybe"})
        assert bad.status_code == 400
