"""Pauses from several sources: an instance can be held by its own pause (a client's, or
its own self-pause), by its parent's, and by a standing pause of its orchestrator at the
same time. A pause that ends by itself (the parent resumed, the standing pause ended, a
scheduled resume came) releases the instance only if nothing else still holds it; an
explicit pause makes the pause the instance's own; an explicit resume releases it
whatever paused it. (docs/pause-semantics.md, "Pauses from several sources".)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import tenuto
from tenuto import Status

from helpers import settle, wait_for

app = tenuto.App()


@app.orchestrator
def child(ctx, x):
    return (yield ctx.wait_for_event("go"))


@app.orchestrator
def parent(ctx, x):
    return (yield ctx.call_sub_orchestrator(child, x, instance_id=f"{ctx.instance_id}-child"))


@app.orchestrator
def cautious_child(ctx, x):
    yield ctx.pause("check by hand")
    return (yield ctx.wait_for_event("go"))


@app.orchestrator
def cautious_parent(ctx, x):
    return (
        yield ctx.call_sub_orchestrator(cautious_child, x, instance_id=f"{ctx.instance_id}-child")
    )


def _running_family(client: tenuto.Client, name: str = "parent") -> tuple[str, str]:
    p = client.start(name, 1, instance_id="P")
    wait_for(lambda: _source(client, "P-child") is None and _is(client, "P-child", Status.RUNNING))
    return p, "P-child"


def _is(client: tenuto.Client, iid: str, status: Status) -> bool:
    try:
        return client.status(iid).runtime_status is status
    except tenuto.InstanceNotFound:
        return False


def _source(client: tenuto.Client, iid: str) -> str | None:
    try:
        pause = client.status(iid).pause
    except tenuto.InstanceNotFound:
        return None
    return pause.source if pause else None


def _finishes(client: tenuto.Client, p: str, c: str) -> None:
    client.raise_event(c, "go", "done")
    assert client.wait(p, timeout=10).output == "done"


def test_a_parents_resume_leaves_a_child_a_standing_pause_holds(client, start_worker):
    worker = start_worker(app)
    p, c = _running_family(client)
    client.pause(p, reason="incident")
    assert _source(client, c) == "parent"
    client.pause_orchestrator("child", reason="child code is being fixed", by="ops")

    client.resume(p)
    assert client.status(p).runtime_status is Status.RUNNING
    held = client.status(c)
    assert held.runtime_status is Status.PAUSED
    assert held.pause is not None
    assert (held.pause.source, held.pause.reason, held.pause.by) == (
        "orchestrator",
        "child code is being fixed",
        "ops",
    )
    client.raise_event(c, "go", "done")
    settle(worker)
    assert client.status(c).runtime_status is Status.PAUSED

    client.resume_orchestrator("child")
    assert client.wait(p, timeout=10).output == "done"


def test_a_childs_own_pause_outlives_its_parents_pause(client, start_worker):
    worker = start_worker(app)
    p, c = _running_family(client)
    client.pause(p, reason="incident")
    client.pause(c, reason="inspect the child", by="alice")
    child_pause = client.status(c).pause
    assert child_pause is not None
    assert (child_pause.source, child_pause.reason) == ("client", "inspect the child")

    client.resume(p)
    client.raise_event(c, "go", "done")
    settle(worker)
    assert client.status(c).runtime_status is Status.PAUSED
    assert client.status(c).pause.reason == "inspect the child"

    client.resume(c)
    assert client.wait(p, timeout=10).output == "done"


def test_a_standing_pause_ending_hands_a_child_to_its_paused_parent(client, start_worker):
    worker = start_worker(app)
    p, c = _running_family(client)
    client.pause_orchestrator("child", reason="child code is being fixed")
    assert _source(client, c) == "orchestrator"
    client.pause(p, reason="incident", by="bob")

    client.resume_orchestrator("child")
    held = client.status(c)
    assert held.runtime_status is Status.PAUSED
    assert (held.pause.source, held.pause.reason, held.pause.by) == ("parent", "incident", "bob")
    client.raise_event(c, "go", "done")
    settle(worker)
    assert client.status(c).runtime_status is Status.PAUSED

    client.resume(p)
    assert client.wait(p, timeout=10).output == "done"


def test_a_self_paused_child_stays_paused_through_its_parents_resume(client, start_worker):
    start_worker(app)
    p = client.start("cautious_parent", 1, instance_id="P")
    c = "P-child"
    wait_for(lambda: _source(client, c) == "orchestration")
    client.pause(p)
    client.resume(p)
    assert client.status(c).pause.source == "orchestration"

    client.resume(c)
    _finishes(client, p, c)


def test_a_scheduled_resume_hands_an_instance_to_a_standing_pause(client, start_worker):
    worker = start_worker(app)
    c = client.start("child", 1, instance_id="alone")
    wait_for(lambda: _is(client, c, Status.RUNNING))
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    client.pause(c, reason="night window", resume_at=soon)
    client.pause_orchestrator("child", reason="release freeze")

    wait_for(lambda: _source(client, c) == "orchestrator", timeout=10)
    assert client.status(c).runtime_status is Status.PAUSED
    assert client.status(c).pause.reason == "release freeze"
    settle(worker)
    assert client.status(c).runtime_status is Status.PAUSED

    client.resume_orchestrator("child")
    client.raise_event(c, "go", "done")
    assert client.wait(c, timeout=10).output == "done"


def test_an_explicit_resume_releases_whatever_paused_the_instance(client, start_worker):
    start_worker(app)
    p, c = _running_family(client)
    client.pause(p, reason="incident")
    client.pause_orchestrator("child", reason="freeze")

    client.resume(c, reason="this one is fine")
    assert client.status(c).runtime_status is Status.RUNNING
    assert client.status(p).runtime_status is Status.PAUSED
    history = [e.type for e in client.history(c)]
    assert history.count("ExecutionResumed") == 1
