"""Durable entities, through worker processes on both backends: calls and signals from
orchestrations and clients, delayed signals, critical sections, failures, an entity
starting an orchestration, a worker killed with SIGKILL in the middle of a batch, and
pauses of an entity and of an entity type."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import tenuto
from tenuto import EntityId, Status
from test_crash import WorkerProcess

from helpers import wait_for


@pytest.fixture
def entity_log(tmp_path: Path) -> Path:
    log = tmp_path / "entity.log"
    log.touch()
    return log


@pytest.fixture
def spawn(db_url: str, entity_log: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``tenuto worker entity_app:app`` processes (1 s leases), stopped at the end."""
    workers: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        w = WorkerProcess(db_url, {"ENTITY_LOG": str(entity_log), **env}, app="entity_app:app")
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()


def state(client: tenuto.Client, entity: str) -> object:
    found = client.get_entity(entity)
    return None if found is None else found.state


def test_called_and_signalled_from_orchestrations_and_clients(client, spawn):
    spawn()
    client.signal_entity("@counter@a", "add", 1)
    iid = client.start("call_and_signal", "a")
    done = client.wait(iid, timeout=30)
    assert done.runtime_status is Status.COMPLETED, done.failure
    # The client's signal came first; the orchestration's signal ran before its "get".
    assert done.output == [6, 16]
    # The delayed signal lands 1.5 s after it was sent (in the step before the last).
    wait_for(lambda: state(client, "@counter@a") == 116, timeout=15)
    read = client.get_entity(EntityId("Counter", "a"))
    assert read is not None and read.has_state and read.locked_by is None
    assert done.completed_at is not None
    assert read.last_modified >= done.completed_at + timedelta(seconds=1)
    assert read.pending_operations == 0 and read.pause is None


def test_client_signal_at_a_time(client, spawn):
    spawn()
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    client.signal_entity("@counter@later", "add", 2, signal_time=at)
    client.signal_entity("@counter@now", "add", 1)
    wait_for(lambda: state(client, "@counter@now") == 1, timeout=15)
    pending = client.get_entity("@counter@later")
    assert pending is not None and pending.pending_operations + pending.has_state == 1
    wait_for(lambda: state(client, "@counter@later") == 2, timeout=15)
    assert client.get_entity("@counter@later").last_modified >= at  # type: ignore[union-attr]


def test_operations_apply_in_order_exactly_once(client, spawn):
    spawn()
    for i in range(30):
        client.signal_entity("@journal@order", "append", f"signal {i}")
    iid = client.start("calls", ["@journal@order", "append", 5])
    done = client.wait(iid, timeout=30)
    assert done.runtime_status is Status.COMPLETED
    assert done.output == [31, 32, 33, 34, 35]
    lines = state(client, "@journal@order")["lines"]  # type: ignore[index]
    assert lines == [f"signal {i}" for i in range(30)] + list(range(5))


def test_critical_sections_do_not_interleave(client, spawn):
    spawn()
    ids = [client.start("critical", f"g{i}") for i in range(3)]
    ids += [client.start("critical_async", f"a{i}") for i in range(2)]
    # A client's signal sent while a section holds the journal waits for its end.
    wait_for(lambda: (client.get_entity("@journal@shared") or _nothing).locked_by, timeout=15)
    client.signal_entity("@journal@shared", "append", "client")
    for iid in ids:
        done = client.wait(iid, timeout=60)
        assert done.runtime_status is Status.COMPLETED, done.failure
    lines = state(client, "@journal@shared")["lines"]  # type: ignore[index]
    assert len(lines) == 11
    sections = [line for line in lines if line != "client"]
    for i in range(0, len(sections), 2):
        name = sections[i].split()[0]
        assert sections[i : i + 2] == [f"{name} in", f"{name} out"], lines
    at = lines.index("client")
    assert at % 2 == 0 or lines[at - 1].endswith("out"), lines
    for entity in ("@journal@shared", "@journal@other"):
        assert client.get_entity(entity).locked_by is None  # type: ignore[union-attr]


def test_only_locked_entities_may_be_called_in_a_section(client, spawn):
    spawn()
    iid = client.start("call_outside_lock")
    done = client.wait(iid, timeout=30)
    assert done.runtime_status is Status.FAILED
    assert done.failure.type == "tenuto.errors.LockingRulesViolation"  # type: ignore[union-attr]
    wait_for(lambda: client.get_entity("@counter@l1").locked_by is None, timeout=15)  # type: ignore[union-attr]


def test_a_failing_operation_changes_nothing_and_the_caller_gets_the_error(client, spawn):
    spawn()
    iid = client.start("call_failing", "f")
    done = client.wait(iid, timeout=30)
    assert done.runtime_status is Status.COMPLETED
    assert done.output == ["fail", "ValueError", "failing on purpose at 7"]
    # The failed operation's signal (+1000) was never sent: the state goes 7 -> 8.
    client.signal_entity("@counter@f", "add", 1)
    wait_for(lambda: state(client, "@counter@f") == 8, timeout=15)


@pytest.mark.parametrize("end", ["fail", "terminate"])
def test_locks_are_released_when_the_holder_fails_or_is_terminated(client, spawn, end):
    spawn()
    iid = client.start("lock_then", end)
    wait_for(lambda: state(client, "@counter@held") == 1, timeout=15)
    if end == "terminate":
        assert client.get_entity("@counter@held").locked_by == iid  # type: ignore[union-attr]
        client.signal_entity("@counter@held", "add", 10)  # waits for the lock
        time.sleep(0.3)
        assert state(client, "@counter@held") == 1
        client.terminate(iid, "test")
    else:
        client.signal_entity("@counter@held", "add", 10)
    done = client.wait(iid, timeout=30)
    assert done.runtime_status is (Status.FAILED if end == "fail" else Status.TERMINATED)
    wait_for(lambda: state(client, "@counter@held") == 11, timeout=15)
    assert client.get_entity("@counter@held").locked_by is None  # type: ignore[union-attr]


def test_an_entity_starts_an_orchestration(client, spawn):
    spawn()
    iid = client.start("calls", ["@journal@starter", "start", 1])
    done = client.wait(iid, timeout=30)
    assert done.runtime_status is Status.COMPLETED
    (child,) = done.output  # type: ignore[misc]
    started = client.wait(child, timeout=30)
    assert started.name == "add_to" and started.output == 1
    assert state(client, "@journal@starter") == {"lines": ["from orchestration 0"]}


def test_kill_9_during_a_batch_loses_nothing_and_applies_nothing_twice(client, spawn, entity_log):
    worker = spawn(ENTITY_OP_SECONDS="0.1")
    for i in range(1, 41):
        client.signal_entity("@counter@k", "slow", i)
    wait_for(lambda: len(begun(entity_log)) >= 8, timeout=30)
    worker.kill()
    # Killed in a batch: operations had begun whose effect is not stored.
    stored = state(client, "@counter@k") or 0
    assert stored < sum(int(line.split()[2]) for line in begun(entity_log))
    spawn(ENTITY_OP_SECONDS="0.01")
    wait_for(lambda: state(client, "@counter@k") == sum(range(1, 41)), timeout=60)
    read = client.get_entity("@counter@k")
    assert read is not None and read.pending_operations == 0
    # The killed batch ran again elsewhere (its first operations began twice), yet
    # each was applied once: the sum is exact.
    amounts = [int(line.split()[2]) for line in begun(entity_log)]
    assert sorted(set(amounts)) == list(range(1, 41)) and len(amounts) > 40


def begun(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("begin")]


def test_two_workers_never_run_one_entity_at_once(client, spawn, entity_log):
    spawn(ENTITY_OP_SECONDS="0.01")
    spawn(ENTITY_OP_SECONDS="0.01")
    keys = [f"w{i}" for i in range(4)]
    for i in range(1, 31):
        for key in keys:
            client.signal_entity(f"@counter@{key}", "slow", i)
    for key in keys:
        wait_for(lambda key=key: state(client, f"@counter@{key}") == 465, timeout=60)
    running: dict[str, str] = {}
    for line in entity_log.read_text().splitlines():
        what, entity, _, pid = line.split()
        if what == "begin":
            assert entity not in running, f"{entity} ran on {running.get(entity)} and {pid}"
            running[entity] = pid
        else:
            assert running.pop(entity) == pid
    assert not running


def test_pause_holds_an_entity_and_its_callers(client, spawn):
    spawn()
    client.signal_entity("@journal@p", "append", "before")
    wait_for(lambda: state(client, "@journal@p") == {"lines": ["before"]}, timeout=15)
    assert client.pause("@journal@p", "maintenance", by="ops") is True
    assert client.pause("@journal@p") is False
    for i in range(3):
        client.signal_entity("@journal@p", "append", f"queued {i}")
    iid = client.start("calls", ["@journal@p", "append", 1])
    wait_for(lambda: client.get_entity("@journal@p").pending_operations == 4, timeout=15)  # type: ignore[union-attr]
    time.sleep(0.5)  # a worker polls several times meanwhile: nothing runs
    read = client.get_entity("@journal@p")
    assert read is not None and read.state == {"lines": ["before"]}
    assert read.pause is not None and read.pause.reason == "maintenance"
    assert read.pause.by == "ops" and read.pause.source == "client"
    assert client.status(iid).runtime_status is Status.RUNNING
    assert client.resume("@journal@p", "done") is True
    done = client.wait(iid, timeout=30)
    assert done.output == [5]
    assert state(client, "@journal@p") == {
        "lines": ["before", "queued 0", "queued 1", "queued 2", 0]
    }
    assert client.resume("@journal@p") is False


def test_pause_resumes_by_itself(client, spawn):
    spawn()
    at = datetime.now(UTC) + timedelta(seconds=1)
    client.pause("@counter@r", "short", resume_at=at)
    client.signal_entity("@counter@r", "add", 4)
    read = client.get_entity("@counter@r")
    assert read is not None and read.pause is not None and read.pause.resume_at is not None
    wait_for(lambda: state(client, "@counter@r") == 4, timeout=15)
    assert datetime.now(UTC) >= at
    assert client.get_entity("@counter@r").pause is None  # type: ignore[union-attr]


def test_standing_pause_of_an_entity_type(client, spawn):
    spawn()
    client.signal_entity("@counter@s1", "add", 1)
    wait_for(lambda: state(client, "@counter@s1") == 1, timeout=15)
    assert client.pause_entity_type("Counter", "freeze", by="ops") is True
    assert client.pause_entity_type("counter") is False
    client.signal_entity("@counter@s1", "add", 1)
    client.signal_entity("@counter@s2", "add", 5)  # a new entity is held too
    client.signal_entity("@journal@free", "append", "x")  # another type is not
    wait_for(lambda: state(client, "@journal@free") == {"lines": ["x"]}, timeout=15)
    time.sleep(0.3)
    held = client.get_entity("@counter@s2")
    assert held is not None and not held.has_state and held.pending_operations == 1
    assert held.pause is not None and held.pause.source == "entity"
    assert held.pause.reason == "freeze" and held.pause.by == "ops"
    assert [p.kind for p in client.standing_pauses()] == ["entity"]
    assert client.resume_entity_type("counter") is True
    wait_for(lambda: state(client, "@counter@s2") == 5, timeout=15)
    assert state(client, "@counter@s1") == 2


def test_query_and_clean_entity_storage(client, spawn):
    spawn()
    for key in ("a1", "a2", "b1"):
        client.signal_entity(f"@counter@{key}", "add", 1)
    client.signal_entity("@journal@a1", "append", "x")
    wait_for(lambda: [s.has_state for s in client.query_entities().items] == [True] * 4, timeout=15)
    page = client.query_entities("counter", key_prefix="a", limit=1, include_state=False)
    assert [str(s.entity_id) for s in page.items] == ["@counter@a1"]
    assert page.items[0].state is None and page.items[0].has_state
    rest = client.query_entities("counter", key_prefix="a", cursor=page.next_cursor)
    assert [str(s.entity_id) for s in rest.items] == ["@counter@a2"] and rest.next_cursor is None
    future = datetime.now(UTC) + timedelta(hours=1)
    assert client.query_entities(last_modified_from=future).items == []
    client.signal_entity("@counter@a1", "reset")
    wait_for(lambda: not client.get_entity("@counter@a1").has_state, timeout=15)  # type: ignore[union-attr]
    assert client.clean_entity_storage() == tenuto.EntityCleaning(removed=1, released_locks=0)
    assert client.get_entity("@counter@a1") is None
    assert len(client.query_entities().items) == 3


def test_bad_entity_ids_and_operations_are_refused(client):
    for bad in ("counter@a", "@counter", "@@a", "@a/b@c", 42):
        with pytest.raises(tenuto.ValidationError):
            client.signal_entity(bad, "add", 1)  # type: ignore[arg-type]
    with pytest.raises(tenuto.ValidationError, match="operation name"):
        client.signal_entity("@counter@a", "", 1)
    with pytest.raises(tenuto.InvalidCursor):
        client.query_entities(cursor="nonsense!")
    with pytest.raises(tenuto.ValidationError, match="limit"):
        client.query_entities(limit=0)
    assert client.get_entity("@counter@nobody") is None


class _Nothing:
    locked_by = None


_nothing = _Nothing()


def test_signals_to_names_no_worker_serves_are_refused(client, spawn, db_url):
    client.signal_entity("@anything@a", "op")  # no worker has registered a name yet
    spawn()
    wait_for(lambda: client.store.read(lambda r: r.known_names("entity")), timeout=15)
    with pytest.raises(tenuto.UnknownEntity, match="known entities: counter, journal"):
        client.signal_entity("@countr@a", "add", 1)
    with pytest.raises(tenuto.ValidationError):  # a refused value: HTTP 422, CLI exit 1
        client.signal_entity("@countr@a", "add", 1)
    with tenuto.Client(db_url, check_names=False) as lenient:
        lenient.signal_entity("@countr@a", "add", 1)
    assert client.get_entity("@countr@a").pending_operations == 1  # type: ignore[union-attr]
    other = tenuto.App()
    with tenuto.Client(db_url, app=other) as local, pytest.raises(tenuto.UnknownEntity):
        local.signal_entity("@counter@a", "add", 1)


def test_a_worker_that_never_ran_it_replays_entity_calls_and_locks(client, spawn):
    first = spawn()
    iid = client.start("replayed", "rp")
    wait_for(lambda: (client.get_entity("@counter@rp") or _nothing).locked_by == iid, timeout=15)
    wait_for(lambda: state(client, "@counter@rp") == 2, timeout=15)
    first.kill()
    spawn()  # a cold worker: the orchestration's next step replays its whole history
    client.raise_event(iid, "go")
    done = client.wait(iid, timeout=30)
    assert done.runtime_status is Status.COMPLETED, done.failure
    assert done.output == [1, 2, 3, 103]
    assert client.get_entity("@counter@rp").locked_by is None  # type: ignore[union-attr]
    kinds = [e.type for e in client.history(iid)]
    assert kinds.count("EntityOperationCalled") == 4 and "EntityLockGranted" in kinds
    assert "EntityUnlockSent" in kinds and "EntityOperationSignaled" in kinds


tally = tenuto.App()


@tally.entity
def points(ctx: tenuto.EntityContext, n: int = 0) -> int:
    ctx.set_state(ctx.get_state(0) + n)
    return int(ctx.get_state())


def test_async_client_entity_methods(db_url, start_worker):
    import asyncio

    start_worker(tally, poll_interval=0.1)

    async def main() -> None:
        async with tenuto.AsyncClient(db_url) as ac:
            await ac.signal_entity("@points@a", "add", 2)
            deadline = time.monotonic() + 15
            while (await ac.get_entity("@points@a") or _nothing_state).state != 2:
                assert time.monotonic() < deadline, "the signal was not applied"
                await asyncio.sleep(0.02)
            page = await ac.query_entities("points")
            assert [str(s.entity_id) for s in page.items] == ["@points@a"]
            assert await ac.pause_entity_type("points", "async") is True
            assert [p.kind for p in await ac.standing_pauses()] == ["entity"]
            assert await ac.resume_entity_type("points") is True
            assert await ac.clean_entity_storage() == tenuto.EntityCleaning(0, 0)

    asyncio.run(main())


class _NothingState:
    state = None


_nothing_state = _NothingState()


def test_deliver_failure_is_refused_for_an_entity(client):
    """An entity has no failed call to deliver: the flag is refused, nothing changes."""
    with pytest.raises(tenuto.ValidationError, match="is an entity"):
        client.resume("@counter@k", deliver_failure=True)
