"""An app for pending-work tests run by worker subprocesses.

``slow`` runs until the file named by its input exists (the test creates it to let it
finish); ``inspect`` calls it, then waits for event ``decision`` with a timeout, and
``parent`` runs ``inspect`` as a sub-orchestration.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import tenuto

app = tenuto.App()


@app.activity
def slow(release: str) -> str:
    deadline = time.monotonic() + 120
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "done"


@app.orchestrator
def inspect(ctx, release):
    got = yield ctx.call_activity(slow, release)
    decision = yield ctx.wait_for_event("decision", timeout=timedelta(hours=1))
    return [got, decision]


@app.orchestrator
def parent(ctx, release):
    return (yield ctx.call_sub_orchestrator(inspect, release))
