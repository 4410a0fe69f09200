"""An app for the schedule and flow-control tests that run workers as subprocesses.

Activities append ``start``/``end`` lines (instance, wall-clock time, pid) to the file
named by ``$FLOW_LOG``.
"""

from __future__ import annotations

import os
import time

import tenuto

app = tenuto.App()
SLOW_SECONDS = float(os.environ.get("SLOW_SECONDS", "0.05"))


def _log(*fields: object) -> None:
    with open(os.environ["FLOW_LOG"], "a") as f:
        f.write(" ".join(str(x) for x in fields) + "\n")
        f.flush()


@app.activity
def record(x: object) -> object:
    info = tenuto.activity_info()
    _log("start", info.instance_id, repr(time.time()), os.getpid())
    _log("end", info.instance_id, repr(time.time()), os.getpid())
    return x


@app.activity
def slow(x: int) -> int:
    info = tenuto.activity_info()
    _log("start", f"{info.instance_id}/{x}", repr(time.time()), os.getpid())
    time.sleep(SLOW_SECONDS)
    _log("end", f"{info.instance_id}/{x}", repr(time.time()), os.getpid())
    return x


@app.orchestrator
def tick(ctx, x):
    return (yield ctx.call_activity(record, x))


@app.orchestrator
def fan(ctx, n):
    return (yield ctx.when_all([ctx.call_activity(slow, i) for i in range(n)]))
