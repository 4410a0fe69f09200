"""Entities for the tests that run workers as subprocesses (tests/test_entities.py).

``slow`` operations append a line to ``$ENTITY_LOG`` when they begin and when they end,
sleeping ``$ENTITY_OP_SECONDS`` between, so a test can kill the worker in the middle of
a batch, or see whether two workers ever ran one entity at once.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import tenuto

app = tenuto.App()


def _log(line: str) -> None:
    with open(os.environ["ENTITY_LOG"], "a") as f:
        f.write(line + "\n")


@app.entity
def counter(ctx: tenuto.EntityContext, amount: int | None = None) -> object:
    value = ctx.get_state(0)
    if ctx.operation == "add":
        ctx.set_state(value + amount)
        return value + amount
    if ctx.operation == "get":
        return value
    if ctx.operation == "fail":
        ctx.set_state(-1)  # never stored: the operation raises
        ctx.signal_entity(ctx.entity_id, "add", 1000)  # never sent either
        raise ValueError(f"failing on purpose at {value}")
    if ctx.operation == "reset":
        ctx.delete_state()
        return None
    if ctx.operation == "slow":
        _log(f"begin {ctx.entity_id} {amount} {os.getpid()}")
        time.sleep(float(os.environ.get("ENTITY_OP_SECONDS", "0.05")))
        _log(f"end {ctx.entity_id} {amount} {os.getpid()}")
        ctx.set_state(value + amount)
        return None
    raise ValueError(f"unknown operation {ctx.operation!r}")


@app.entity
class Journal:
    """Appends what it is told; ``start`` starts an orchestration that calls it back."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def append(self, line: str) -> int:
        self.lines.append(line)
        return len(self.lines)

    def start(self, n: int) -> str:
        return self._ctx.start_orchestration("add_to", [str(self._ctx.entity_id), n])


@app.orchestrator
def add_to(ctx: tenuto.OrchestrationContext, args: list) -> object:
    entity, n = args
    return (yield ctx.call_entity(entity, "append", f"from orchestration {n}"))


@app.orchestrator
def call_and_signal(ctx: tenuto.OrchestrationContext, key: str) -> object:
    first = yield ctx.call_entity(f"@counter@{key}", "add", 5)
    ctx.signal_entity(tenuto.EntityId("counter", key), "add", 10)
    ctx.signal_entity(f"@counter@{key}", "add", 100, signal_time=timedelta(seconds=1.5))
    second = yield ctx.call_entity(f"@counter@{key}", "get")
    return [first, second]


@app.orchestrator
def calls(ctx: tenuto.OrchestrationContext, args: list) -> object:
    entity, operation, times = args
    results = []
    for i in range(times):
        results.append((yield ctx.call_entity(entity, operation, i)))
    return results


@app.orchestrator
def critical(ctx: tenuto.OrchestrationContext, name: str) -> object:
    """In a critical section over two journals: in, a pause of 0.3 s, out."""
    with (yield ctx.lock_entities("@journal@shared", "@journal@other")):
        yield ctx.call_entity("@journal@shared", "append", f"{name} in")
        yield ctx.create_timer(timedelta(seconds=0.3))
        yield ctx.call_entity("@journal@other", "append", name)
        yield ctx.call_entity("@journal@shared", "append", f"{name} out")
    return name


@app.orchestrator
async def critical_async(ctx: tenuto.OrchestrationContext, name: str) -> object:
    async with ctx.lock_entities("@journal@shared"):
        await ctx.call_entity("@journal@shared", "append", f"{name} in")
        await ctx.create_timer(timedelta(seconds=0.3))
        await ctx.call_entity("@journal@shared", "append", f"{name} out")
    return name


@app.orchestrator
def lock_then(ctx: tenuto.OrchestrationContext, then: str) -> object:
    """Locks ``@counter@held``, then fails, or waits for an event (to be terminated)."""
    with (yield ctx.lock_entities("@counter@held")):
        yield ctx.call_entity("@counter@held", "add", 1)
        if then == "fail":
            raise RuntimeError("failing inside the critical section")
        yield ctx.wait_for_event("never")
    return "unreachable"


@app.orchestrator
def call_failing(ctx: tenuto.OrchestrationContext, key: str) -> object:
    yield ctx.call_entity(f"@counter@{key}", "add", 7)
    try:
        yield ctx.call_entity(f"@counter@{key}", "fail")
    except tenuto.EntityOperationFailed as error:
        return [error.operation, error.failure.type, error.failure.message]
    return "no error"


@app.orchestrator
def call_outside_lock(ctx: tenuto.OrchestrationContext, _: object) -> object:
    with (yield ctx.lock_entities("@counter@l1")):
        yield ctx.call_entity("@counter@l2", "get")
    return "unreachable"


@app.orchestrator
def replayed(ctx: tenuto.OrchestrationContext, key: str) -> object:
    """Calls, a critical section that waits for an event, a signal: replayed from its
    history by a worker that never ran it."""
    entity = f"@counter@{key}"
    a = yield ctx.call_entity(entity, "add", 1)
    with (yield ctx.lock_entities(entity)):
        b = yield ctx.call_entity(entity, "add", 1)
        yield ctx.wait_for_event("go")
        c = yield ctx.call_entity(entity, "add", 1)
    ctx.signal_entity(entity, "add", 100)
    d = yield ctx.call_entity(entity, "get")
    return [a, b, c, d]
