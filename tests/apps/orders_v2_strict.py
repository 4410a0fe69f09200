"""Version 2 of the ``order`` orchestrator under ``App(on_nondeterminism="fail")``."""

from __future__ import annotations

from orders_common import register

import tenuto

app = tenuto.App(on_nondeterminism="fail")
register(app)


@app.orchestrator
def order(ctx, item):
    yield ctx.call_activity("check_fraud", item)
    reserved = yield ctx.call_activity("reserve", item)
    approval = yield ctx.wait_for_event("approve")
    shipped = yield ctx.call_activity("ship", item)
    return {"version": 2, "steps": [reserved, approval, shipped]}
