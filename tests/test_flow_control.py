"""Flow control: activity limits (concurrency, rate) held across worker processes,
orchestrator limits with priorities, and the pause rules under limits."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import tenuto
from tenuto import Status, ValidationError
from test_crash import WorkerProcess

from helpers import settle, wait_for


def _intervals(log: Path) -> list[tuple[float, float]]:
    """(start, end) of each activity execution in a flow.py log, by start."""
    starts: dict[str, float] = {}
    spans = []
    for line in log.read_text().splitlines():
        kind, key, at, _ = line.split()
        if kind == "start":
            starts[key] = float(at)
        else:
            spans.append((starts[key], float(at)))
    return sorted(spans)


@pytest.fixture
def flow_workers(db_url: str, tmp_path: Path) -> Iterator[tuple[Path, list[WorkerProcess]]]:
    """Two ``tenuto worker flow:app`` processes logging to one file."""
    log = tmp_path / "flow.log"
    log.touch()
    env = {"FLOW_LOG": str(log), "SLOW_SECONDS": "0.05"}
    workers = [WorkerProcess(db_url, env, app="flow:app") for _ in range(2)]
    yield log, workers
    for w in workers:
        w.stop()


@pytest.mark.slow
def test_a_limit_of_one_holds_across_two_worker_processes(client, flow_workers):
    log, _ = flow_workers
    limit = client.limit_activity("slow", max_concurrent=1, reason="fragile downstream")
    assert (limit.max_concurrent, limit.reason, limit.by) == (1, "fragile downstream", "tester")
    iid = client.start("fan", 20)
    assert client.wait(iid, timeout=60).output == list(range(20))
    spans = _intervals(log)
    assert len(spans) == 20
    overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    assert overlaps == [], "no two executions ran at once"


@pytest.mark.slow
def test_a_rate_limit_holds_across_two_worker_processes(client, flow_workers):
    log, _ = flow_workers
    client.limit_activity("slow", per_second=5)
    iid = client.start("fan", 20)
    assert client.wait(iid, timeout=60).output == list(range(20))
    starts = [start for start, _ in _intervals(log)]
    per_second = Counter(int(s) for s in starts)
    assert max(per_second.values()) <= 5, per_second
    # Four windows of five (each 1.1 s): the last starts 3.3 s after the first.
    assert starts[-1] - starts[0] >= 3.2, "20 starts at 5/s take more than 3 s"


@pytest.mark.slow
def test_removing_a_limit_lets_the_rest_run_at_full_speed(client, flow_workers):
    log, _ = flow_workers
    client.limit_activity("slow", per_second=0.5)
    iid = client.start("fan", 20)
    wait_for(lambda: len(_intervals(log)) >= 1, timeout=30)
    assert client.remove_activity_limit("slow")
    assert not client.remove_activity_limit("slow")
    assert client.wait(iid, timeout=30).output == list(range(20))
    starts = [start for start, _ in _intervals(log)]
    # At 0.5/s the 19 others would take 38 s; without the limit they all start at once.
    assert starts[-1] - starts[1] < 5.0


app = tenuto.App()


@app.activity
def echo(x: int) -> int:
    return x


@app.orchestrator
def fan(ctx, n):
    return (yield ctx.when_all([ctx.call_activity(echo, i) for i in range(n)]))


@app.orchestrator
def held(ctx, x):
    """Runs until it gets the event ``go``."""
    yield ctx.wait_for_event("go")
    return x


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give max_concurrent or per_second"),
        ({"max_concurrent": 0}, "at least 1"),
        ({"max_concurrent": 1.5}, "whole number"),
        ({"per_second": 0}, "positive"),
        ({"per_second": float("inf")}, "positive"),
    ],
)
def test_bad_limits_are_refused(client, args, message):
    with pytest.raises(ValidationError, match=message):
        client.limit_activity("echo", **args)
    assert client.limits() == []


def test_limits_show_with_reason_actor_and_source(client):
    client.limit_activity("echo", max_concurrent=3, per_second=2.5, reason="api quota")
    client.limit_orchestrator("held", 2)
    by_kind = {lim.kind: lim for lim in client.limits()}
    assert by_kind["activity"].per_second == 2.5 and by_kind["activity"].source == "client"
    assert by_kind["orchestrator"].max_concurrent == 2
    assert [lim.name for lim in client.activity_limits()] == ["echo"]
    client.limit_activity("echo", max_concurrent=5)
    assert client.activity_limits()[0].max_concurrent == 5, "a new limit replaces the old"
    assert client.remove_orchestrator_limit("held")
    assert [lim.kind for lim in client.limits()] == ["activity"]


def test_a_paused_instance_never_starts_its_work_whatever_the_limits(client, start_worker):
    client.limit_activity("echo", max_concurrent=100)
    client.pause_orchestrator("fan", "frozen", force=True)  # before any worker registered the name
    iid = client.start("fan", 3)
    worker = start_worker(app)
    settle(worker)
    assert client.status(iid).runtime_status is Status.PAUSED
    client.resume_orchestrator("fan")
    assert client.wait(iid, timeout=10).output == [0, 1, 2]


def test_a_held_activity_type_stays_held_under_a_limit(client, start_worker):
    client.limit_activity("echo", max_concurrent=1)
    client.pause_activity(
        "echo", "downstream down", force=True
    )  # before any worker registered the name
    iid = client.start("fan", 3)
    worker = start_worker(app)
    wait_for(lambda: client.status(iid).held_activities == ("echo",), timeout=10)
    settle(worker)
    assert client.status(iid).runtime_status is Status.RUNNING
    client.resume_activity("echo")
    assert client.wait(iid, timeout=10).output == [0, 1, 2]


def test_a_limit_declared_in_code_is_set_by_the_worker_unless_a_client_set_one(
    client, start_worker
):
    coded = tenuto.App()

    @coded.activity(max_concurrent=2)
    def work(x: int) -> int:
        return x

    start_worker(coded)
    (limit,) = client.activity_limits()
    assert (limit.name, limit.max_concurrent, limit.source) == ("work", 2, "code")
    client.limit_activity("work", max_concurrent=7)
    start_worker(coded)
    assert client.activity_limits()[0].max_concurrent == 7, "the client's limit stays"


def test_orchestrator_limit_keeps_the_others_pending_in_priority_then_start_order(
    client, start_worker
):
    client.limit_orchestrator("held", 2, reason="two at a time")
    ids = [client.start("held", i, instance_id=f"h{i}") for i in range(3)]
    client.start("held", 9, instance_id="urgent", priority=10)
    worker = start_worker(app)

    def running() -> list[str]:
        return sorted(
            st.instance_id for st in client.query(status=[Status.RUNNING], name="held").items
        )

    wait_for(lambda: len(running()) == 2, timeout=10)
    settle(worker)
    assert running() == ["h0", "urgent"], "the highest priority first, then the oldest"
    client.raise_event("urgent", "go")
    client.wait("urgent", timeout=10)
    wait_for(lambda: running() == ["h0", "h1"], timeout=10)
    settle(worker)
    assert client.status(ids[2]).runtime_status is Status.PENDING
    client.remove_orchestrator_limit("held")
    wait_for(lambda: running() == ["h0", "h1", "h2"], timeout=10)


def test_priority_must_be_a_whole_number(client):
    with pytest.raises(ValidationError, match="priority"):
        client.start("held", 1, priority="high")  # type: ignore[arg-type]
