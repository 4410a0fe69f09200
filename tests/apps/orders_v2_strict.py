"""Version 2 of the ``order`` orchestrator under ``App(on_nondeterminism="fail")``."""

from __future__ import annotations

from orders_common import register
from orders_v2 import order

import tenuto

app = tenuto.App(on_nondeterminism="fail")
register(app)
app.orchestrator(order)
