"""User code may not take the engine down: activities and orchestrators that raise any
``BaseException``, whose errors cannot be turned into text, or that block the event loop
of ``async`` activities fail (or are held up) alone; the worker goes on."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

import tenuto
from tenuto import RetryPolicy, Status

from helpers import wait_for

app = tenuto.App()
TWICE = RetryPolicy(max_attempts=2, first_delay=0, backoff=1)
attempts: dict[str, int] = {}
_lock = threading.Lock()


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Custom(BaseException):
    pass


RAISED: dict[str, BaseException] = {
    "SystemExit": SystemExit(3),
    "KeyboardInterrupt": KeyboardInterrupt(),
    "GeneratorExit": GeneratorExit(),
    "Custom": Custom("a BaseException of our own"),
    "CancelledError": asyncio.CancelledError(),
    "BaseExceptionGroup": BaseExceptionGroup("several", [KeyboardInterrupt(), ValueError()]),
    "Unprintable": Unprintable(),
    "Surrogate": FileNotFoundError(2, "No such file", "\udcff.txt"),
}


def _count(kind: str) -> None:
    with _lock:
        attempts[kind] = attempts.get(kind, 0) + 1


@app.activity
def raise_it(kind: str) -> None:
    _count(kind)
    raise RAISED[kind]


@app.activity
async def raise_it_async(kind: str) -> None:
    _count(kind)
    raise RAISED[kind]


@app.activity
def echo(x: str) -> str:
    return x


@app.orchestrator
def calls(ctx, args):
    activity, kind = args
    try:
        yield ctx.call_activity(activity, kind, retry=TWICE)
    except tenuto.ActivityFailed as failed:
        return [failed.type, failed.attempts, failed.failure.message]
    return "no error"


@app.orchestrator
def raises_itself(ctx, kind):
    yield ctx.call_activity(echo, kind)
    raise RAISED[kind]


@app.orchestrator
def just_echo(ctx, x):
    return (yield ctx.call_activity(echo, x))


@pytest.fixture(autouse=True)
def _fresh():
    attempts.clear()


@pytest.mark.parametrize("activity", ["raise_it", "raise_it_async"])
def test_an_activity_raising_any_base_exception_fails_and_the_worker_goes_on(
    client, start_worker, activity
):
    # One slot: a lost slot would stop everything after the first activity.
    start_worker(app, concurrency=1)
    for kind, exc in RAISED.items():
        iid = client.start(calls, [activity, kind])
        error_type, tries, message = client.wait(iid, timeout=20).output
        assert error_type == tenuto.status.type_name(type(exc))
        assert tries == 2 and attempts[kind] == 2
        if kind == "Unprintable":
            assert "could not be turned into text" in message
        if kind == "Surrogate":  # escaped, so that it can be stored
            assert "\\udcff.txt" in message
        attempts.clear()
    assert client.wait(client.start(just_echo, "after"), timeout=10).output == "after"


def test_an_orchestrator_raising_any_base_exception_fails_alone(client, start_worker):
    worker = start_worker(app)
    for kind, exc in RAISED.items():
        iid = client.start(raises_itself, kind)
        final = client.wait(iid, timeout=10)
        assert final.runtime_status is Status.FAILED
        assert final.failure is not None
        assert final.failure.type == tenuto.status.type_name(type(exc))
    assert worker._thread is not None and worker._thread.is_alive()
    assert client.wait(client.start(just_echo, "after"), timeout=10).output == "after"


# -- an async activity that blocks its event loop ---------------------------------------

blocking = threading.Event()
quick_started: list[float] = []


@app.activity
async def blocks_the_loop(seconds: float) -> str:
    blocking.set()
    time.sleep(seconds)  # the mistake: a blocking call in async code
    blocking.clear()
    return "unblocked"


@app.activity
async def quick(x: int) -> int:
    quick_started.append(tenuto.activity_info().started_at)
    await asyncio.sleep(0)
    return x


@app.orchestrator
def blocker(ctx, seconds):
    return (yield ctx.call_activity(blocks_the_loop, seconds))


@app.orchestrator
def quickly(ctx, x):
    return (yield ctx.call_activity(quick, x))


def test_a_blocked_event_loop_delays_no_command_and_starts_nothing_paused(
    client, start_worker, caplog
):
    caplog.set_level(logging.WARNING, logger="tenuto.worker")
    quick_started.clear()
    start_worker(app)
    slow = client.start(blocker, 4.0)
    wait_for(blocking.is_set, what="the loop to be blocked")
    iid = client.start(quickly, 1)
    # Its activity gets queued while the loop is blocked; the pause must neither wait
    # for the loop nor let the activity start once the loop is free again.
    wait_for(lambda: client.status(iid).runtime_status is Status.RUNNING)
    began = time.monotonic()
    client.pause(iid, reason="maintenance")
    returned = time.time()
    assert time.monotonic() - began < 2.0, "pause() waited for the blocked event loop"
    assert client.wait(slow, timeout=20).output == "unblocked"
    assert wait_for(
        lambda: next((r for r in caplog.records if "event loop" in r.getMessage()), None)
    )
    assert [t for t in quick_started if t > returned] == []
    assert client.status(iid).runtime_status is Status.PAUSED
    client.resume(iid)
    assert client.wait(iid, timeout=10).output == 1


# -- one item that cannot be written -----------------------------------------------------


@app.activity
def produce(x: str) -> str:
    return x + "ison"


@app.orchestrator
def produces(ctx, x):
    return (yield ctx.call_activity(produce, x))


def _poison_history(db_url: str) -> None:
    """A real fault of the database for one value: a trigger that refuses history rows
    containing "poison" (standing in for a value the database cannot store, which
    validation did not foresee)."""
    if db_url.startswith("sqlite"):
        import sqlite3

        from tenuto.store.sqlite import parse_url

        conn = sqlite3.connect(parse_url(db_url)[0])
        conn.execute(
            "CREATE TRIGGER refuse_value BEFORE INSERT ON history WHEN NEW.data LIKE '%poison%' "
            "BEGIN SELECT RAISE(ABORT, 'this value cannot be stored'); END"
        )
        conn.commit()
        conn.close()
        return
    import psycopg

    from tenuto.store.postgres import parse_url

    conninfo, schema = parse_url(db_url)
    with psycopg.connect(conninfo, options=f"-c search_path={schema}") as pg:
        pg.execute(
            "CREATE FUNCTION refuse_value() RETURNS trigger AS $$ BEGIN IF NEW.data::text LIKE "
            "'%poison%' THEN RAISE EXCEPTION 'this value cannot be stored'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        pg.execute(
            "CREATE TRIGGER refuse_value BEFORE INSERT ON history FOR EACH ROW "
            "EXECUTE FUNCTION refuse_value()"
        )


@pytest.mark.parametrize("where", ["input", "result"])
def test_a_step_that_cannot_be_stored_fails_its_instance_and_no_other(
    db_url, client, start_worker, where
):
    _poison_history(db_url)
    start_worker(app)
    bad_input = "poison" if where == "input" else "po"  # the activity appends "ison"
    ids = client.start_many(produces, ["fine-1", bad_input, "fine-2", "fine-3"])
    finals = {iid: client.wait(iid, timeout=30) for iid in ids}
    bad = finals[ids[1]]
    assert bad.runtime_status is Status.FAILED
    assert bad.failure is not None and bad.failure.type == "tenuto.StepNotStored"
    assert "cannot be stored" in bad.failure.message
    fine = [finals[i].output for i in ids if i != ids[1]]
    assert fine == ["fine-1ison", "fine-2ison", "fine-3ison"]
    # And the worker keeps working.
    assert client.wait(client.start(produces, "later"), timeout=10).output == "laterison"


# -- an activity that never returns ------------------------------------------------------

released = threading.Event()


@app.activity
def never_returns(x: int) -> int:
    released.wait(60)  # for ever, as far as the test goes
    return x


@app.orchestrator
def stuck(ctx, x):
    return (yield ctx.call_activity(never_returns, x))


def test_an_activity_that_never_returns_holds_only_its_own_slot(client, start_worker):
    released.clear()
    worker = start_worker(app, concurrency=2)
    iid = client.start(stuck, 1)
    wait_for(lambda: worker.running_activities == 1, what="the activity running")
    client.pause(iid, reason="it hangs")
    assert client.status(iid).runtime_status is Status.PAUSED
    # The other slot serves everything else.
    others = client.start_many(just_echo, [f"x{i}" for i in range(5)])
    assert [client.wait(i, timeout=10).output for i in others] == [f"x{i}" for i in range(5)]
    released.set()
    client.resume(iid)
    assert client.wait(iid, timeout=10).output == 1
