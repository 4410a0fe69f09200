"""An app for tests that run workers as subprocesses and kill them.

Activities and orchestrators append what they do to the file named by ``$CRASH_LOG``.
If the file named by ``$BLOCK_STEP`` exists, the orchestrator blocks inside its step
(so a test can kill the worker in the middle of an orchestration step).
"""

from __future__ import annotations

import os
import time

import tenuto

app = tenuto.App()
ACTIVITY_SECONDS = float(os.environ.get("ACTIVITY_SECONDS", "0.2"))


def _log(line: str) -> None:
    with open(os.environ["CRASH_LOG"], "a") as f:
        f.write(line + "\n")
        f.flush()


@app.activity
def work(x: int) -> int:
    info = tenuto.activity_info()
    _log(f"start {info.instance_id} {x} {os.getpid()} {info.started_at!r}")
    time.sleep(ACTIVITY_SECONDS)
    _log(f"end {info.instance_id} {x} {os.getpid()}")
    return x + 1


@app.orchestrator
def chain(ctx, n):
    results = []
    for i in range(n):
        results.append((yield ctx.call_activity(work, i)))
        block = os.environ.get("BLOCK_STEP")
        if block and os.path.exists(block) and not ctx.is_replaying:
            _log(f"blocked {ctx.instance_id} {i} {os.getpid()}")
            time.sleep(3600)
    return results


@app.orchestrator
def fan(ctx, n):
    return (yield ctx.when_all([ctx.call_activity(work, i) for i in range(n)]))
