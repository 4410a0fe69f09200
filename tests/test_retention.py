"""Retention: a policy per status (and orchestrator) purges finished instances in the
background, in bounded batches; unfinished instances are never purged; two purgers never
purge the same rows; the stored policy rules every worker; export before purge."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import tenuto
from tenuto import tracking
from tenuto.retention import Purger, Retention, RetentionRule
from tenuto.store import open_store
from test_cli import run_cli

from helpers import sql_rows, wait_for

DAY = 86_400.0

app = tenuto.App()


@app.activity
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


@app.orchestrator
def done(ctx: tenuto.OrchestrationContext, x: int) -> int:
    return x


@app.orchestrator
def other(ctx: tenuto.OrchestrationContext, x: int) -> int:
    return x


@app.orchestrator
def fails(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    return (yield ctx.call_activity(boom, x))


@app.orchestrator
def waits(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    return (yield ctx.wait_for_event("go"))


@pytest.fixture
def purged() -> Iterator[list[str]]:
    """Ids of the instances purged, as the tracking log reports them (in order)."""
    seen: list[str] = []
    lock = threading.Lock()

    def observe(event: str, data: dict[str, Any]) -> None:
        if event == "purged":
            with lock:
                seen.append(data["instance_id"])

    tracking.observers.append(observe)
    yield seen
    tracking.observers.remove(observe)


def _finish(
    client: tenuto.Client, start_worker: Callable[..., tenuto.Worker], **counts: int
) -> dict[str, list[str]]:
    """Run instances of each orchestrator to their end (or, for ``waits``, to RUNNING)."""
    start_worker(app)
    ids = {name: client.start_many(name, list(range(n))) for name, n in counts.items()}
    for name, started in ids.items():
        if name == "waits":
            wait_for(
                lambda s=started: all(client.status(i).runtime_status.value == "RUNNING" for i in s)
            )
        else:
            client.wait_many(started, timeout=60)
    return ids


def _ids(client: tenuto.Client) -> set[str]:
    out: set[str] = set()
    cursor = None
    while True:
        page = client.query(limit=1000, cursor=cursor)
        out.update(s.instance_id for s in page.items)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def _purger(
    url: str, policy: Retention | None, at: float, batch: int = 200, worker: str = "w"
) -> Purger:
    return Purger(open_store(url), policy, worker, clock=lambda: at, batch=batch)


def test_policy_text_and_its_errors() -> None:
    policy = Retention.parse("COMPLETED=30d, FAILED=90d,backup:COMPLETED=7d ,TERMINATED=12h")
    assert str(policy) == "COMPLETED=30d,FAILED=90d,backup:COMPLETED=1w,TERMINATED=12h"
    assert policy.rules[2] == RetentionRule(tenuto.Status.COMPLETED, timedelta(days=7), "backup")
    assert Retention.from_json(policy.to_json()) == policy
    assert Retention.of({"COMPLETED": "30d", "backup:FAILED": timedelta(hours=1)}).rules[
        1
    ].keep == timedelta(hours=1)
    with pytest.raises(ValueError, match="PAUSED is not one of COMPLETED, FAILED, TERMINATED"):
        Retention.parse("PAUSED=1d")
    with pytest.raises(ValueError, match="unknown status 'DONE'"):
        Retention.parse("DONE=1d")
    with pytest.raises(ValueError, match="invalid duration"):
        Retention.parse("COMPLETED=soon")
    with pytest.raises(ValueError, match="invalid retention rule 'COMPLETED'"):
        Retention.parse("COMPLETED")
    with pytest.raises(ValueError, match="two retention rules for COMPLETED"):
        Retention.parse("COMPLETED=1d,COMPLETED=2d")
    with pytest.raises(ValueError, match="an empty retention policy"):
        Retention.parse(" , ")
    with pytest.raises(TypeError, match="not int"):
        tenuto.App(retention=3)  # type: ignore[arg-type]


def test_only_finished_instances_past_their_time_are_purged(
    client: tenuto.Client,
    db_url: str,
    start_worker: Callable[..., tenuto.Worker],
    purged: list[str],
) -> None:
    ids = _finish(client, start_worker, done=6, other=4, fails=3, waits=3)
    paused = client.start_many(waits, [0, 1])
    for iid in paused:
        client.pause(iid, "kept while paused")
    terminated = client.start_many(waits, [0])
    client.terminate(terminated[0])
    client.pause(ids["waits"][0], "paused after running")
    policy = Retention.parse("COMPLETED=30d,FAILED=90d,other:COMPLETED=60d")
    everything = _ids(client)

    # 29 days on: nothing is old enough.
    assert not _purger(db_url, policy, time.time() + 29 * DAY).run_once()
    assert _ids(client) == everything and purged == []
    # 31 days on: the COMPLETED instances of `done` (30 days), not those of `other`
    # (their own rule: 60 days), nor the FAILED ones (90 days), nor the TERMINATED one
    # (no rule: kept), nor anything PAUSED or RUNNING.
    _purger(db_url, policy, time.time() + 31 * DAY).run_once()
    assert sorted(purged) == sorted(ids["done"])
    assert _ids(client) == everything - set(ids["done"])
    # A year on: every COMPLETED and FAILED instance; still none that is unfinished.
    _purger(db_url, policy, time.time() + 365 * DAY).run_once()
    left = {s.instance_id: s.runtime_status.value for s in client.query(limit=100).items}
    assert left == {
        **dict.fromkeys(paused, "PAUSED"),
        ids["waits"][0]: "PAUSED",
        ids["waits"][1]: "RUNNING",
        ids["waits"][2]: "RUNNING",
        terminated[0]: "TERMINATED",
    }
    assert not sql_rows(
        db_url, "SELECT instance_id FROM history WHERE instance_id = ?", (ids["done"][0],)
    )


def test_batches_are_bounded(
    client: tenuto.Client,
    db_url: str,
    start_worker: Callable[..., tenuto.Worker],
    purged: list[str],
) -> None:
    ids = _finish(client, start_worker, done=25)
    finished = sorted(ids["done"], key=lambda i: client.status(i).completed_at)  # type: ignore[arg-type, return-value]
    purger = _purger(db_url, Retention.parse("COMPLETED=1d"), time.time() + 2 * DAY, batch=10)
    assert purger.run_once() is True  # a full batch: more is waiting
    assert len(purged) == 10 and len(_ids(client)) == 15
    # Oldest first: the ten that finished first.
    assert set(purged) == set(finished[:10])
    purger.run_once()
    assert purger.run_once() is False  # 5, not a full batch
    assert len(purged) == 25 and _ids(client) == set()


def test_two_purgers_never_purge_the_same_instance(
    client: tenuto.Client,
    db_url: str,
    start_worker: Callable[..., tenuto.Worker],
    purged: list[str],
) -> None:
    ids = _finish(client, start_worker, done=300)
    policy = Retention.parse("COMPLETED=1d")
    purgers = [
        _purger(db_url, policy, time.time() + 2 * DAY, batch=7, worker=f"w{i}") for i in range(2)
    ]
    go = threading.Barrier(2)

    def drain(p: Purger) -> None:
        go.wait()
        while p.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(p,)) for p in purgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(purged) == sorted(ids["done"])  # each once
    assert sum(p.purged for p in purgers) == 300
    assert all(p.purged > 0 for p in purgers), [p.purged for p in purgers]
    for p in purgers:
        p.store.close()


def test_a_worker_purges_in_the_background_and_the_stored_policy_wins(
    client: tenuto.Client,
    db_url: str,
    start_worker: Callable[..., tenuto.Worker],
    purged: list[str],
) -> None:
    # The stored policy (a day) rules over the worker's own (a second).
    client.set_retention("COMPLETED=1d")
    assert client.retention() == Retention.parse("COMPLETED=1d")
    start_worker(app, retention="COMPLETED=1s", retention_interval=0.05)
    done_ids = client.start_many(done, [1, 2, 3])
    running = client.start(waits, 0)
    client.wait_many(done_ids, timeout=30)
    time.sleep(1.5)  # past the worker's own second: still kept, the stored day rules
    assert set(done_ids) <= _ids(client)
    client.set_retention(None)  # now the worker's own policy applies
    wait_for(lambda: not set(done_ids) & _ids(client), timeout=15, what="the background purge")
    assert sorted(purged) == sorted(done_ids)
    assert client.status(running).runtime_status is tenuto.Status.RUNNING


def test_purged_instances_are_exported_first(
    client: tenuto.Client,
    db_url: str,
    start_worker: Callable[..., tenuto.Worker],
    purged: list[str],
    tmp_path: Path,
) -> None:
    ids = _finish(client, start_worker, done=3, fails=2)
    histories = {i: client.history(i) for i in ids["done"] + ids["fails"]}
    folder = tmp_path / "purged"
    policy = Retention.parse("COMPLETED=1d,FAILED=1d", export_to=str(folder))
    with pytest.raises(ValueError, match="the retention export folder does not exist"):
        _purger(db_url, policy, time.time() + 2 * DAY).run_once()
    assert purged == []  # nothing deleted that was not exported
    folder.mkdir()
    _purger(db_url, policy, time.time() + 2 * DAY, worker="host:1").run_once()
    (export,) = folder.iterdir()
    assert export.name.startswith("purged-") and export.name.endswith("-host_1.jsonl")
    records = {r["instance_id"]: r for r in map(json.loads, export.read_text().splitlines())}
    assert set(records) == set(purged) == set(histories)
    for iid, record in records.items():
        assert [e["type"] for e in record["history"]] == [e.type for e in histories[iid]]
    assert {records[i]["status"] for i in ids["fails"]} == {"FAILED"}
    assert records[ids["done"][1]]["output"] == 1


def test_cli_retention_set_show_clear(db_url: str) -> None:
    assert "No retention policy is stored" in run_cli("retention", "show", "--db", db_url).stdout
    bad = run_cli("retention", "set", "RUNNING=1d", "--db", db_url)
    assert bad.returncode == 2 and "RUNNING is not one of" in bad.stderr
    ok = run_cli("retention", "set", "COMPLETED=30d,backup:FAILED=2w", "--db", db_url)
    assert ok.returncode == 0, ok.stderr
    shown = json.loads(run_cli("retention", "show", "--json", "--db", db_url).stdout)
    assert shown["rules"] == [
        {"status": "COMPLETED", "orchestrator": None, "keep_seconds": 30 * DAY, "keep": "30d"},
        {"status": "FAILED", "orchestrator": "backup", "keep_seconds": 14 * DAY, "keep": "2w"},
    ]
    assert "backup" in run_cli("retention", "show", "--db", db_url).stdout
    assert run_cli("retention", "clear", "--db", db_url).returncode == 0
    assert json.loads(run_cli("retention", "show", "--json", "--db", db_url).stdout) is None
    worker = run_cli("worker", "x:app", "--retain", "PAUSED=1d", "--db", db_url)
    assert worker.returncode == 2 and "PAUSED is not one of" in worker.stderr
