"""``tenuto replay-check``, ``tenuto.replay_check`` and ``tenuto.testing.replay``: stored
histories replayed against new code, changing nothing, before resuming or deploying."""

from __future__ import annotations

import importlib
import json

import pytest

import tenuto
from tenuto import Status
from tenuto.testing import replay
from test_changing_code import Workers, _types, _waiting_for_approval
from test_cli import run_cli
from test_crash import APPS

from helpers import wait_for

V2_MISMATCH = (
    "at step 0 its history says it calls activity 'reserve', but the code now calls "
    "activity 'check_fraud'"
)


@pytest.fixture
def orders(db_url, tmp_path, client):
    """order-a waits for its approval, order-b completed: both under version 1."""
    workers = Workers(db_url, tmp_path)
    workers.start("orders_v1")
    client.start("order", "book", instance_id="order-a")
    client.start("order", "pen", instance_id="order-b")
    _waiting_for_approval(client, "order-a")
    _waiting_for_approval(client, "order-b")
    client.raise_event("order-b", "approve", True)
    assert client.wait("order-b", timeout=30).runtime_status is Status.COMPLETED
    workers.stop()
    yield workers
    workers.stop()


def check(db_url: str, module: str, *args: str):
    return run_cli(
        "replay-check", f"{module}:app", *args, "--db", db_url, env={"PYTHONPATH": str(APPS)}
    )


def test_the_cli_names_the_instances_the_new_code_would_pause(orders, db_url, client):
    before = client.history("order-a")
    bad = check(db_url, "orders_v2")
    assert bad.returncode == 1, bad.stderr
    assert "orders_v2:app does not replay 1 of 1 instance checked;" in bad.stdout
    assert "order-a" in bad.stdout and "order-b" not in bad.stdout
    assert V2_MISMATCH in " ".join(bad.stdout.split())

    shown = json.loads(check(db_url, "orders_v2", "--json").stdout)
    assert shown["checked"] == 1 and shown["ok"] is False
    [result] = shown["incompatible"]
    assert (result["instance_id"], result["mismatch"]) == ("order-a", V2_MISMATCH)

    for module in ("orders_v1", "orders_v3"):
        good = check(db_url, module)
        assert good.returncode == 0, (module, good.stdout, good.stderr)
        assert f"{module}:app replays all 1 instance checked." in good.stdout

    deprecated = check(db_url, "orders_v4", "--id", "order-a", "--id", "order-b")
    assert deprecated.returncode == 1
    assert "recorded before change 'fraud-check'" in deprecated.stdout
    assert "order-b" in deprecated.stdout  # --id checks finished instances too

    finished = json.loads(check(db_url, "orders_v2", "--status", "completed", "--json").stdout)
    assert [r["instance_id"] for r in finished["incompatible"]] == ["order-b"]
    assert client.history("order-a") == before  # nothing changed


def test_a_bad_app_or_orchestrator_is_refused(orders, db_url):
    missing = check(db_url, "orders_v2", "--name", "nope")
    assert missing.returncode == 1
    assert "orchestrator 'nope' is not registered in this app (it has: order)" in missing.stderr
    unknown = check(db_url, "no_such_module")
    assert unknown.returncode == 2 and "cannot import 'no_such_module'" in unknown.stderr


def test_replay_check_in_python(orders, client, monkeypatch):
    monkeypatch.syspath_prepend(str(APPS))
    v1, v2 = (importlib.import_module(m).app for m in ("orders_v1", "orders_v2"))
    [result] = tenuto.replay_check(v2, client)
    assert (result.instance_id, result.status, result.ok) == ("order-a", Status.RUNNING, False)
    assert result.mismatch == V2_MISMATCH
    [result] = tenuto.replay_check(v1, client)
    assert result.ok and result.next_actions == [] and not result.completed
    assert [r.ok for r in tenuto.replay_check(v2, client, status=["COMPLETED"])] == [False]
    assert tenuto.replay_check(v2, client, ids=["order-b"], status=["RUNNING"]) == []


def test_a_saved_history_replays_in_a_unit_test(orders, db_url, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(APPS))
    saved = run_cli("history", "order-b", "--json", "--db", db_url)
    assert saved.returncode == 0, saved.stderr
    path = tmp_path / "order-b.json"
    path.write_text(saved.stdout)
    v1, v2, v3 = (importlib.import_module(f"orders_v{n}").app for n in (1, 2, 3))
    done = replay(v1, saved.stdout)
    assert done.ok and done.completed and done.instance_id == "order-b"
    assert done.output == {"version": 1, "steps": ["reserved pen", True, "shipped pen"]}
    assert replay(v2, path).mismatch == V2_MISMATCH
    patched = replay(v3, json.loads(saved.stdout)["events"])
    assert patched.ok and patched.output["checked"] is False


def test_client_history_is_a_saved_history_too(orders, client, monkeypatch):
    monkeypatch.syspath_prepend(str(APPS))
    v1 = importlib.import_module("orders_v1").app
    waiting = replay(v1, client.history("order-a"))
    assert waiting.ok and not waiting.completed and waiting.next_actions == []
    with pytest.raises(tenuto.ValidationError, match="must be JSON"):
        replay(v1, "not json")
    with pytest.raises(tenuto.ValidationError, match="has no ExecutionStarted event"):
        replay(v1, [])
    wait_for(lambda: "ExecutionStarted" in _types(client.history("order-a")))
