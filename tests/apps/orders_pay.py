"""The ``pay`` orchestrator: reserve, charge (which fails while ``$FAIL_FLAG`` exists,
twice before it gives up, then pauses the instance), ship. Handed the failure
(``resume --deliver-failure``), its except branch returns what failed.

``pay_or_fail`` does the same with a policy that raises: the instance FAILS (for
rewinds and restarts)."""

from __future__ import annotations

from orders_common import register

import tenuto

app = tenuto.App()
register(
    app, charge_retry=tenuto.RetryPolicy(max_attempts=2, first_delay=0.05, on_exhausted="pause")
)


@app.orchestrator
def pay(ctx, item):
    reserved = yield ctx.call_activity("reserve", item)
    try:
        charged = yield ctx.call_activity("charge", item)
    except tenuto.ActivityFailed as error:
        return {"reserved": reserved, "charge_failed": error.failure.message}
    shipped = yield ctx.call_activity("ship", item)
    return {"reserved": reserved, "charged": charged, "shipped": shipped}


@app.orchestrator
def pay_or_fail(ctx, item):
    reserved = yield ctx.call_activity("reserve", item)
    raising = tenuto.RetryPolicy(max_attempts=2, first_delay=0.05, on_exhausted="raise")
    charged = yield ctx.call_activity("charge", item, retry=raising)
    shipped = yield ctx.call_activity("ship", item)
    return {"reserved": reserved, "charged": charged, "shipped": shipped}
