"""Version 2 of the ``order`` orchestrator: a fraud check added before the reservation,
without a patch. Instances started under version 1 no longer match their history."""

from __future__ import annotations

from orders_common import register
from orders_v1 import block_while_replaying

import tenuto

app = tenuto.App()
register(app)


@app.orchestrator
def order(ctx, item):
    block_while_replaying(ctx)
    yield ctx.call_activity("check_fraud", item)
    reserved = yield ctx.call_activity("reserve", item)
    approval = yield ctx.wait_for_event("approve")
    shipped = yield ctx.call_activity("ship", item)
    return {"version": 2, "steps": [reserved, approval, shipped]}
