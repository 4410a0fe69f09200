"""Version 1 of the ``order`` orchestrator: reserve, wait for approval, ship.

If the file named by ``$BLOCK_REPLAY`` exists, replaying the first step blocks, and says
so by creating ``$BLOCK_REPLAY.reached`` (so a test can kill the worker in the middle of
a step that replays the history).
"""

from __future__ import annotations

import os
import time

from orders_common import register

import tenuto

app = tenuto.App()
register(app)


def block_while_replaying(ctx: tenuto.OrchestrationContext) -> None:
    flag = os.environ.get("BLOCK_REPLAY")
    if ctx.is_replaying and flag and os.path.exists(flag):
        open(flag + ".reached", "w").close()
        while os.path.exists(flag):
            time.sleep(0.01)


@app.orchestrator
def order(ctx, item):
    block_while_replaying(ctx)
    reserved = yield ctx.call_activity("reserve", item)
    approval = yield ctx.wait_for_event("approve")
    shipped = yield ctx.call_activity("ship", item)
    return {"version": 1, "steps": [reserved, approval, shipped]}
