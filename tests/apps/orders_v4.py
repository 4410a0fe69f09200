"""Version 4 of the ``order`` orchestrator: the old path of version 3's patch removed.
Instances started under version 3 replay; those from before the patch do not."""

from __future__ import annotations

from orders_common import register

import tenuto

app = tenuto.App()
register(app)


@app.orchestrator
def order(ctx, item):
    ctx.deprecate_patch("fraud-check")
    yield ctx.call_activity("check_fraud", item)
    reserved = yield ctx.call_activity("reserve", item)
    approval = yield ctx.wait_for_event("approve")
    shipped = yield ctx.call_activity("ship", item)
    return {"version": 4, "steps": [reserved, approval, shipped]}
