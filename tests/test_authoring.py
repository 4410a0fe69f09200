"""Orchestrators as generators, coroutines and plain functions; activities sync and async."""

from __future__ import annotations

import pytest

import tenuto
from tenuto import Status

app = tenuto.App()


@app.activity
def add_one(x: int) -> int:
    return x + 1


@app.activity
async def add_ten(x: int) -> int:
    return x + 10


@app.activity
def no_input() -> str:
    return "constant"


@app.activity(name="renamed")
def some_function(x: str) -> str:
    return x.upper()


@app.orchestrator
def generator_style(ctx: tenuto.OrchestrationContext, x: int):  # type: ignore[no-untyped-def]
    a = yield ctx.call_activity(add_one, x)
    b = yield ctx.call_activity(add_ten, a)
    c = yield ctx.call_activity("renamed", "abc")
    d = yield ctx.call_activity(no_input)
    return [a, b, c, d]


@app.orchestrator
async def async_style(ctx: tenuto.OrchestrationContext, x: int) -> list[object]:
    a = await ctx.call_activity(add_one, x)
    b = await ctx.call_activity(add_ten, a)
    c = await ctx.call_activity("renamed", "abc")
    d = await ctx.call_activity(no_input)
    return [a, b, c, d]


@app.orchestrator
def plain_function(ctx: tenuto.OrchestrationContext, x: int) -> int:
    return x * 2


@app.orchestrator
def without_input(ctx: tenuto.OrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity(add_one, 41))


@pytest.mark.parametrize("orchestrator", [generator_style, async_style])
def test_both_styles_run_on_one_engine(client, start_worker, orchestrator) -> None:
    start_worker(app)
    iid = client.start(orchestrator, 1)
    result = client.wait(iid, timeout=10)
    assert result.runtime_status is Status.COMPLETED
    assert result.output == [2, 12, "ABC", "constant"]
    assert result.input == 1
    assert result.completed_at is not None and result.completed_at >= result.created_at


def test_both_styles_write_the_same_history(client, start_worker) -> None:
    start_worker(app)
    gen = client.wait(client.start(generator_style, 5), timeout=10)
    coro = client.wait(client.start(async_style, 5), timeout=10)

    def shape(iid: str) -> list[tuple[str, object]]:
        return [
            (e.type, e.data.get("name"))
            for e in client.history(iid)
            if e.type != "ExecutionStarted"
        ]

    assert shape(gen.instance_id) == shape(coro.instance_id)


def test_plain_function_orchestrator_completes(client, start_worker) -> None:
    start_worker(app)
    assert client.wait(client.start(plain_function, 21), timeout=10).output == 42


def test_orchestrator_without_input(client, start_worker) -> None:
    start_worker(app)
    assert client.wait(client.start("without_input"), timeout=10).output == 42


def test_registered_names_resolve_functions_and_strings() -> None:
    assert app.get_orchestrator(generator_style).name == "generator_style"
    assert app.get_activity(some_function).name == "renamed"
    assert app.get_activity("renamed").fn is some_function


def test_decorators_return_the_function_unchanged() -> None:
    assert add_one(1) == 2
    assert plain_function(None, 3) == 6  # type: ignore[arg-type]


def test_duplicate_registration_is_refused() -> None:
    local = tenuto.App()

    @local.activity
    def twice() -> None: ...

    with pytest.raises(ValueError, match="already registered"):
        local.activity(name="twice")(lambda: None)


def test_unregistered_function_reference_is_a_clear_error() -> None:
    def stray() -> None: ...

    with pytest.raises(TypeError, match="not a registered orchestrator or activity"):
        app.get_activity(stray)
