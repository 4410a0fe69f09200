"""An app for the pause race tests: worker subprocesses whose activities log when each
attempt started, so a test can compare every start with the pause windows it saw.

Each activity appends ``start INSTANCE ACTIVITY STARTED_AT`` to ``$RACE_LOG``.
"""

from __future__ import annotations

import os
import time

import tenuto

app = tenuto.App()
#: Retried at once, for ever (as far as a test goes): each retry is a chance to start.
AT_ONCE = tenuto.RetryPolicy(max_attempts=1_000_000, first_delay=0, backoff=1)


def _log_start(name: str) -> None:
    info = tenuto.activity_info()
    with open(os.environ["RACE_LOG"], "a") as f:
        f.write(f"start {info.instance_id} {name} {info.started_at!r}\n")


@app.activity
def always_fails(x: int) -> None:
    _log_start("always_fails")
    raise ConnectionError("the downstream is down")


@app.activity
def step(x: int) -> int:
    _log_start("step")
    time.sleep(0.002)
    return x


@app.orchestrator
def retrying(ctx, x):
    return (yield ctx.call_activity(always_fails, x, retry=AT_ONCE))


@app.orchestrator
def stepping(ctx, n):
    """``n`` activities one after another (``n < 0``: for ever)."""
    i = 0
    while n < 0 or i < n:
        yield ctx.call_activity(step, i)
        i += 1
    return i


@app.orchestrator
def fanning(ctx, n):
    return (yield ctx.when_all([ctx.call_activity(step, i) for i in range(n)]))


@app.orchestrator
def parent(ctx, n):
    return (yield ctx.call_sub_orchestrator(stepping, n))
