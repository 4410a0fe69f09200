"""The app that chaos worker processes run (``tenuto worker chaos.app:app``).

Environment:

``CHAOS_LOG``
    a file every activity attempt appends ``start``/``end`` lines to, and every
    self-inflicted kill a ``kill`` line (``O_APPEND`` writes of one short line are atomic).
``CHAOS_KILL``
    ``POINT@N``: the process sends itself SIGKILL at the N-th time it reaches ``POINT``:
    ``activity`` (halfway through an activity), ``step`` (inside orchestrator code, in an
    orchestration step), ``commit`` (in a tracking hook, which runs after a transaction
    committed and before the worker acts on it: caches, wake-ups, other work). Empty:
    never.
``CHAOS_ACTIVITY_SECONDS``
    how long an activity runs (default 0.01 s).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import tenuto
from tenuto import tracking

app = tenuto.App()

ACTIVITY_SECONDS = float(os.environ.get("CHAOS_ACTIVITY_SECONDS", "0.01"))
_point, _, _at = os.environ.get("CHAOS_KILL", "").partition("@")
_countdown = {_point: int(_at)} if _point and _at else {}


def _log(*fields: object) -> None:
    path = os.environ.get("CHAOS_LOG")
    if not path:
        return
    line = (" ".join(str(f) for f in fields) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def maybe_die(point: str) -> None:
    """SIGKILL this process if this is the N-th time it reaches ``point``."""
    left = _countdown.get(point)
    if left is None:
        return
    _countdown[point] = left - 1
    if left <= 1:
        _log("kill", point, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)


if _point == "commit":
    tracking.observers.append(lambda event, data: maybe_die("commit"))


@app.activity
def step(x: int) -> int:
    info = tenuto.activity_info()
    _log("start", info.instance_id, info.task_id, os.getpid(), repr(info.started_at))
    time.sleep(ACTIVITY_SECONDS / 2)
    maybe_die("activity")
    time.sleep(ACTIVITY_SECONDS / 2)
    _log("end", info.instance_id, info.task_id, os.getpid(), repr(time.time()))
    return 2 * x + 1


@app.orchestrator
def flow(ctx: tenuto.OrchestrationContext, spec: dict[str, Any]) -> Any:
    """A chain of activities, then a fan-out, then (optionally) an external event."""
    out: list[Any] = []
    for i in range(spec["chain"]):
        out.append((yield ctx.call_activity(step, i)))
        if not ctx.is_replaying:
            maybe_die("step")
        ctx.set_custom_status({"done": i + 1})
    if spec["fan"]:
        tasks = [ctx.call_activity(step, 100 + j) for j in range(spec["fan"])]
        out.extend((yield ctx.when_all(tasks)))
    if spec["event"]:
        out.append((yield ctx.wait_for_event("go")))
    return out


def expected_output(instance_id: str, spec: dict[str, Any]) -> list[Any]:
    """What ``flow`` returns for ``spec`` when the event carries ``event_data``."""
    out: list[Any] = [2 * i + 1 for i in range(spec["chain"])]
    out += [2 * (100 + j) + 1 for j in range(spec["fan"])]
    if spec["event"]:
        out.append(event_data(instance_id))
    return out


def event_data(instance_id: str) -> str:
    return f"go-{instance_id}"
