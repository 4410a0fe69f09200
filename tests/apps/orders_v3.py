"""Version 3 of the ``order`` orchestrator: the fraud check of version 2, behind a patch.
Instances started under version 1 keep the old path; new ones take the new one."""

from __future__ import annotations

from orders_common import register

import tenuto

app = tenuto.App()
register(app)


@app.orchestrator
def order(ctx, item):
    checked = ctx.patched("fraud-check")
    if checked:
        yield ctx.call_activity("check_fraud", item)
    reserved = yield ctx.call_activity("reserve", item)
    approval = yield ctx.wait_for_event("approve")
    shipped = yield ctx.call_activity("ship", item)
    return {"version": 3, "checked": checked, "steps": [reserved, approval, shipped]}
