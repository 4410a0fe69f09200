"""Schedules: fire times, exactly once across worker processes and a worker killed,
pause and resume (a standing pause), overlap policies, backfill, trigger, cron."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import tenuto
from tenuto import Status, ValidationError
from tenuto.schedules import ScheduleSpec, fire_time_text, parse_fire_time
from test_crash import WorkerProcess

from helpers import wait_for

SECOND = timedelta(seconds=1)


def _fire_times(client: tenuto.Client, schedule_id: str) -> list[float]:
    """The fire times of the runs of a schedule, oldest first (from their ids)."""
    page = client.query(id_prefix=f"{schedule_id}@", limit=1000)
    times = [parse_fire_time(st.instance_id) for st in page.items]
    return sorted(t.timestamp() for t in times if t is not None)


# -- fire times, without a store --------------------------------------------------------


def test_every_is_aligned_to_the_epoch_or_to_start_at():
    spec = ScheduleSpec.of(every=timedelta(minutes=15))
    assert list(spec.fires(1000.0, 3700.0)) == [1800.0, 2700.0, 3600.0]
    anchored = ScheduleSpec.of(
        every=timedelta(minutes=15), start_at=datetime.fromtimestamp(1000.0, UTC)
    )
    assert list(anchored.fires(0.0, 3000.0)) == [1000.0, 1900.0, 2800.0]


def test_cron_fire_times_follow_the_timezone_across_daylight_saving():
    spec = ScheduleSpec.of(cron="0 2 * * *", timezone="Europe/Paris")
    start = datetime(2026, 3, 27, tzinfo=UTC).timestamp()
    texts = [fire_time_text(t) for t in itertools.islice(spec.fires(start), 4)]
    # 02:00 in Paris is 01:00 UTC in winter; on 29 March 02:00 does not exist (clocks
    # jump to 03:00, cronsim fires at 03:00 = 01:00 UTC); then 00:00 UTC in summer.
    assert texts == [
        "2026-03-27T01:00:00Z",
        "2026-03-28T01:00:00Z",
        "2026-03-29T01:00:00Z",
        "2026-03-30T00:00:00Z",
    ]


def test_end_at_ends_the_fire_times():
    spec = ScheduleSpec.of(every=SECOND, end_at=datetime.fromtimestamp(103.0, UTC))
    assert list(spec.fires(100.0)) == [101.0, 102.0, 103.0]
    assert spec.next_after(103.0) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of every"),
        ({"every": SECOND, "cron": "* * * * *"}, "exactly one of every"),
        ({"cron": "61 * * * *"}, "invalid cron expression"),
        ({"cron": "not cron"}, "invalid cron expression"),
        ({"every": SECOND, "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"every": SECOND, "overlap": "queue"}, "overlap must be one of"),
        ({"every": timedelta(0)}, "every must be positive"),
        ({"every": SECOND, "catchup_window": timedelta(0)}, "catchup_window"),
        ({"every": SECOND, "start_at": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_schedules_are_refused_with_what_to_do(client, options, message):
    with pytest.raises(ValidationError, match=message):
        client.create_schedule("bad", "tick", **options)
    assert client.schedules() == []


def test_schedule_ids_are_checked(client):
    with pytest.raises(ValidationError, match="no '@'"):
        client.create_schedule("a@b", "tick", every=SECOND)
    with pytest.raises(ValidationError, match="invalid schedule id"):
        client.create_schedule("a/b", "tick", every=SECOND)


# -- the client, with in-process workers --------------------------------------------------

app = tenuto.App()


@app.activity
def echo(x: object) -> object:
    return x


@app.orchestrator
def tick(ctx, x):
    return (yield ctx.call_activity(echo, x))


@app.orchestrator
def held(ctx, x):
    """Runs until it gets the event ``go``."""
    yield ctx.wait_for_event("go")
    return x


@app.orchestrator
def broken(ctx, x):
    raise RuntimeError("this run fails")


def test_create_show_update_delete(client):
    info = client.create_schedule(
        "nightly", "tick", {"v": 1}, cron="0 2 * * *", timezone="Europe/Paris"
    )
    assert info.orchestrator == "tick" and info.input == {"v": 1}
    assert info.cron == "0 2 * * *" and info.every is None and not info.paused
    assert len(info.next_fires) == 3 and info.next_fires[0] > datetime.now(UTC)
    assert all(t.astimezone().minute == 0 for t in info.next_fires)
    with pytest.raises(tenuto.ScheduleExists):
        client.create_schedule("nightly", "tick", cron="0 3 * * *")
    updated = client.update_schedule("nightly", every=timedelta(hours=1), input={"v": 2})
    assert updated.every == timedelta(hours=1) and updated.cron is None
    assert updated.input == {"v": 2} and updated.timezone == "Europe/Paris"
    assert [s.schedule_id for s in client.schedules()] == ["nightly"]
    client.delete_schedule("nightly")
    assert client.schedules() == []
    with pytest.raises(tenuto.ScheduleNotFound):
        client.schedule("nightly")
    with pytest.raises(tenuto.ScheduleNotFound):
        client.pause_schedule("nightly")


def test_runs_are_instances_tagged_with_their_schedule(client, start_worker):
    client.create_schedule("every-second", "tick", 7, every=SECOND)
    start_worker(app)
    first = wait_for(lambda: client.query(id_prefix="every-second@").items, timeout=10)[0]
    assert first.tags == {"schedule": "every-second"}
    fire = parse_fire_time(first.instance_id)
    assert fire is not None and fire.microsecond == 0
    assert client.wait(first.instance_id, timeout=10).output == 7
    info = client.schedule("every-second")
    assert info.last_runs and info.last_runs[0].instance_id.startswith("every-second@")


def test_a_paused_schedule_is_a_standing_pause_and_starts_nothing(client, start_worker):
    client.create_schedule("s", "tick", every=SECOND, catchup_window=SECOND)
    start_worker(app)
    wait_for(lambda: _fire_times(client, "s"), timeout=10)
    assert client.pause_schedule("s", "maintenance")
    paused_at = time.time()
    assert not client.pause_schedule("s")
    (sp,) = [p for p in client.standing_pauses() if p.kind == "schedule"]
    assert (sp.name, sp.reason, sp.by) == ("s", "maintenance", "tester")
    info = client.schedule("s")
    assert info.paused and info.pause is not None and info.pause.reason == "maintenance"
    # Three fire times come and go while it is paused.
    time.sleep(3.2)
    resumed_at = time.time()
    assert client.resume_schedule("s", "done")
    assert not client.resume_schedule("s")
    wait_for(lambda: _fire_times(client, "s")[-1] > resumed_at, timeout=10)
    missed = [t for t in _fire_times(client, "s") if paused_at < t < resumed_at - 1.0]
    assert missed == [], "fire times older than the catch-up window were skipped"


def test_pause_schedule_with_resume_at_resumes_by_itself(client, start_worker):
    client.create_schedule("s", "tick", every=SECOND)
    start_worker(app)
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    client.pause_schedule("s", "short", resume_at=at)
    assert client.schedule("s").pause.resume_at == at  # type: ignore[union-attr]
    wait_for(lambda: not client.schedule("s").paused, timeout=10)
    wait_for(lambda: _fire_times(client, "s") and _fire_times(client, "s")[-1] > at.timestamp())


def test_bulk_pause_and_resume_by_orchestrator(client):
    for sid in ("a", "b"):
        client.create_schedule(sid, "tick", every=SECOND)
    client.create_schedule("c", "held", every=SECOND)
    assert client.pause_schedules(orchestrator="tick", reason="outage") == 2
    assert client.pause_schedules(orchestrator="tick") == 0
    assert {s.schedule_id for s in client.schedules() if s.paused} == {"a", "b"}
    assert client.resume_schedules(id_prefix="a") == 1
    assert {s.schedule_id for s in client.schedules() if s.paused} == {"b"}


def test_a_standing_pause_of_the_orchestrator_holds_the_runs(client, start_worker):
    client.pause_orchestrator("tick", "frozen", force=True)  # before any worker registered the name
    client.create_schedule("s", "tick", every=SECOND)
    start_worker(app)
    run = wait_for(lambda: client.query(id_prefix="s@").items, timeout=10)[0]
    assert run.runtime_status is Status.PAUSED and run.pause is not None
    assert run.pause.source == "orchestrator"


def _live(client: tenuto.Client, sid: str) -> list[tenuto.InstanceStatus]:
    return [st for st in client.query(id_prefix=f"{sid}@", limit=1000).items if not st.is_terminal]


def test_overlap_skip_starts_nothing_while_the_latest_run_is_unfinished(client, start_worker):
    client.create_schedule("s", "held", every=SECOND, overlap="skip")
    start_worker(app)
    (first,) = wait_for(lambda: _live(client, "s"), timeout=10)
    first_fire = parse_fire_time(first.instance_id).timestamp()  # type: ignore[union-attr]
    wait_for(lambda: time.time() > first_fire + 2.5, timeout=10)
    assert [st.instance_id for st in client.query(id_prefix="s@").items] == [first.instance_id]
    client.raise_event(first.instance_id, "go")
    client.wait(first.instance_id, timeout=10)
    wait_for(lambda: _live(client, "s"), timeout=10)
    times = _fire_times(client, "s")
    assert len(times) == 2 and times[1] >= first_fire + 3


def test_overlap_buffer_one_runs_one_once_the_latest_finishes(client, start_worker):
    client.create_schedule("s", "held", every=SECOND, overlap="buffer_one")
    start_worker(app)
    (first,) = wait_for(lambda: _live(client, "s"), timeout=10)
    wait_for(lambda: client.schedule("s").buffered is not None, timeout=10)
    buffered = client.schedule("s").buffered
    first_fire = parse_fire_time(first.instance_id).timestamp()  # type: ignore[union-attr]
    wait_for(lambda: time.time() > first_fire + 3.2, timeout=10)
    assert len(client.query(id_prefix="s@").items) == 1, "one buffered, not started"
    client.raise_event(first.instance_id, "go")
    client.wait(first.instance_id, timeout=10)
    (second,) = wait_for(lambda: _live(client, "s"), timeout=10)
    assert parse_fire_time(second.instance_id) == buffered, "the buffered fire time runs"


def test_overlap_allow_all_runs_them_side_by_side(client, start_worker):
    client.create_schedule("s", "held", every=SECOND, overlap="allow_all")
    start_worker(app)
    wait_for(lambda: len(_live(client, "s")) >= 3, timeout=15)


def test_overlap_terminate_previous_ends_the_unfinished_run(client, start_worker):
    client.create_schedule("s", "held", every=SECOND, overlap="terminate_previous")
    start_worker(app)
    (first,) = wait_for(lambda: _live(client, "s"), timeout=10)
    st = client.wait(first.instance_id, timeout=10)
    assert st.runtime_status is Status.TERMINATED
    assert "terminate_previous" in (st.failure.message if st.failure else "")
    assert len(_live(client, "s")) == 1


def test_trigger_runs_now_even_when_paused(client, start_worker):
    client.create_schedule("s", "tick", 3, cron="0 0 1 1 *")
    client.pause_schedule("s")
    start_worker(app)
    iid = client.trigger_schedule("s")
    assert iid is not None and iid.startswith("s@")
    assert client.wait(iid, timeout=10).output == 3


def test_backfill_starts_each_missing_fire_time_once(client):
    client.create_schedule("nightly", "tick", cron="0 2 * * *", timezone="Europe/Paris")
    start = datetime(2026, 1, 10, tzinfo=UTC)
    ids = client.backfill_schedule("nightly", start, start + timedelta(days=3))
    assert ids == [
        "nightly@2026-01-10T01:00:00Z",
        "nightly@2026-01-11T01:00:00Z",
        "nightly@2026-01-12T01:00:00Z",
    ]
    again = client.backfill_schedule("nightly", start, start + timedelta(days=4))
    assert again == ["nightly@2026-01-13T01:00:00Z"], "fire times that ran are left alone"
    assert all(client.status(i).tags == {"schedule": "nightly"} for i in ids)
    with pytest.raises(ValidationError, match="at most 1000"):
        client.backfill_schedule("nightly", start, start + timedelta(days=2000))
    with pytest.raises(ValidationError, match="not before"):
        client.backfill_schedule("nightly", start, start - timedelta(days=1))


def test_pause_on_failure_pauses_the_schedule(client, start_worker):
    client.create_schedule("s", "broken", every=SECOND, pause_on_failure=True)
    start_worker(app)
    wait_for(lambda: client.schedule("s").paused, timeout=15)
    info = client.schedule("s")
    assert info.pause is not None and "failed" in (info.pause.reason or "")
    failed = [r for r in info.last_runs if r.status is Status.FAILED]
    assert failed and failed[0].instance_id in (info.pause.reason or "")


def test_schedule_declared_in_code_is_created_by_the_worker(client, start_worker):
    declared = tenuto.App()

    @declared.schedule("declared", input=5, every=SECOND)
    @declared.orchestrator
    def ping(ctx, x):
        return x

    start_worker(declared)
    info = client.schedule("declared")
    assert (info.orchestrator, info.input, info.every) == ("ping", 5, SECOND)
    run = wait_for(lambda: client.query(id_prefix="declared@").items, timeout=10)[0]
    assert client.wait(run.instance_id, timeout=10).output == 5


# -- several worker processes -------------------------------------------------------------


@pytest.mark.slow
def test_three_workers_fire_each_fire_time_once_survive_a_kill_and_stop_while_paused(
    db_url: str, client: tenuto.Client, tmp_path: Path
):
    log = tmp_path / "flow.log"
    log.touch()
    env = {"FLOW_LOG": str(log)}
    workers = [WorkerProcess(db_url, env, app="flow:app") for _ in range(3)]
    try:
        client.create_schedule(
            "s", "tick", every=SECOND, catchup_window=timedelta(seconds=30), overlap="allow_all"
        )
        wait_for(lambda: len(_fire_times(client, "s")) >= 3, timeout=30)
        workers[0].kill()
        count = len(_fire_times(client, "s"))
        wait_for(lambda: len(_fire_times(client, "s")) >= count + 3, timeout=30)
        times = _fire_times(client, "s")
        # Once per fire time, none missed, through the kill: consecutive seconds.
        assert times == [times[0] + i for i in range(len(times))]

        # Paused, the two workers left start nothing; resumed, they fire again.
        client.update_schedule("s", catchup_window=SECOND)
        client.pause_schedule("s", "maintenance")
        paused_at = time.time()
        wait_for(lambda: time.time() > paused_at + 3.2, timeout=10)
        resumed_at = time.time()
        client.resume_schedule("s")
        wait_for(lambda: _fire_times(client, "s")[-1] > resumed_at, timeout=30)
        assert [t for t in _fire_times(client, "s") if paused_at < t < resumed_at - 1.0] == []

        # Every run completed, its activity run by a worker.
        client.pause_schedule("s")
        runs = client.wait_many(
            [st.instance_id for st in client.query(id_prefix="s@", limit=1000).items], timeout=60
        )
        assert {st.runtime_status for st in runs} == {Status.COMPLETED}
        ended = {ln.split()[1] for ln in log.read_text().splitlines() if ln.startswith("end")}
        assert ended == {st.instance_id for st in runs}
    finally:
        for w in workers:
            w.stop()


class _Clock:
    """A clock a test moves (the workers' and the client's view of now)."""

    def __init__(self, now: float) -> None:
        self.at = now

    def now(self) -> float:
        return self.at


@pytest.mark.parametrize(("window", "expected"), [(30, 10), (5, 5)])
def test_fire_times_missed_while_no_worker_ran_follow_the_catchup_window(db_url, window, expected):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = _Clock(start.timestamp())
    with tenuto.Client(db_url, clock=clock, check_names=False) as client:
        client.create_schedule(
            "s", "tick", every=SECOND, catchup_window=timedelta(seconds=window),
            overlap="allow_all",
        )  # fmt: skip
        clock.at += 10.5  # ten fire times pass with no worker running
        worker = tenuto.Worker(app, db_url, clock=clock)
        started = worker.firer.run_once()  # what a worker does when it starts
        worker.store.close()
        fired = [parse_fire_time(i).timestamp() - start.timestamp() for i in started]  # type: ignore[union-attr]
        assert fired == [float(s) for s in range(11 - expected, 11)]
        assert client.schedule("s").next_fires[0] == start + timedelta(seconds=11)


def test_the_async_client_has_the_schedule_and_limit_methods(db_url):
    import asyncio

    async def main() -> None:
        async with tenuto.AsyncClient(db_url, actor="async") as aclient:
            info = await aclient.create_schedule("a", "tick", every=SECOND)
            assert info.schedule_id == "a"
            assert await aclient.pause_schedule("a", "why")
            assert (await aclient.schedule("a")).pause.by == "async"  # type: ignore[union-attr]
            limit = await aclient.limit_activity("echo", 2, None, "quota")
            assert (limit.max_concurrent, limit.reason, limit.by) == (2, "quota", "async")
            assert [lim.name for lim in await aclient.limits()] == ["echo"]

    asyncio.run(main())
