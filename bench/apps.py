"""The tenuto application every tenuto workload runs (importable by worker processes).

Activities are trivial (return input + 1), except ``stamp``, which also reports when it
started, for the pause/resume latency workload (e).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Generator
from typing import Any

import tenuto

app = tenuto.App()

#: ``host:port`` of a UDP socket to which ``stamp`` reports its start (workload e).
STAMP_ADDR_ENV = "BENCH_STAMP_ADDR"
_stamp_sock: socket.socket | None = None


@app.activity
def inc(x: int) -> int:
    """The trivial activity: return input + 1."""
    return x + 1


@app.activity
def stamp(x: int) -> int:
    """``inc`` that also sends ``"<instance id> <started_at>"`` to ``$BENCH_STAMP_ADDR``."""
    global _stamp_sock
    addr = os.environ.get(STAMP_ADDR_ENV)
    if addr:
        info = tenuto.activity_info()
        if _stamp_sock is None:
            _stamp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        host, port = addr.rsplit(":", 1)
        _stamp_sock.sendto(f"{info.instance_id} {info.started_at!r}".encode(), (host, int(port)))
    return x + 1


@app.orchestrator
def chain(ctx: tenuto.OrchestrationContext, n: int) -> Generator[Any, Any, int]:
    """``n`` sequential ``inc`` activities; returns ``n``."""
    x = 0
    for _ in range(n):
        x = yield ctx.call_activity(inc, x)
    return x


@app.orchestrator
def ticker(ctx: tenuto.OrchestrationContext, n: int) -> Generator[Any, Any, int]:
    """``n`` sequential ``stamp`` activities (workload e)."""
    x = 0
    for _ in range(n):
        x = yield ctx.call_activity(stamp, x)
    return x


@app.orchestrator
def waiter(ctx: tenuto.OrchestrationContext, x: int) -> Generator[Any, Any, int]:
    """One activity, then wait for the event ``go`` (workloads f and g)."""
    y = yield ctx.call_activity(inc, x)
    yield ctx.wait_for_event("go")
    return int(y)
