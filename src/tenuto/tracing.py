"""OpenTelemetry tracing (``pip install 'tenuto[otel]'``): off unless enabled.

``tenuto.tracing.enable()`` (or ``enable(provider)``; ``tenuto worker/serve --otel``)
makes this process emit spans through the OpenTelemetry API:

* ``create_orchestration:<name>`` when a client starts an instance, a child of the
  caller's current span. Its W3C ``traceparent`` is stored with the instance, so the
  instance's spans join the caller's trace in whichever process runs them;
* ``orchestration:<name>`` for each execution of the orchestrator code (each step),
  child of the instance's stored context, with the instance id, execution id, name,
  version and, on the last step, the final status; pauses and resumes since the previous
  step are its span events (``paused`` with reason, by and source; ``resumed``);
* ``activity:<name>`` for each activity attempt, child of the step that scheduled it
  (its context is stored with the activity), with the attempt number; activity code
  runs with it as the current span, so its own spans nest under it;
* a sub-orchestration's instance is started under the step that created it.

On the Durable Task gRPC path the same contexts travel as ``parentTraceContext``
(activity requests and ``ExecutionStarted`` events sent to SDK workers; a
``CreateInstanceRequest``'s is stored with the instance).

Disabled (the default), nothing is imported and every hook is one ``None`` check.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator, Sequence
from typing import Any

from . import history as h
from .store.base import ActivityRow, InstanceRow

_tracer: Any = None
_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def enable(provider: Any = None) -> None:
    """Emit spans through ``provider`` (an OpenTelemetry ``TracerProvider``; default:
    the global one, as configured by the application or ``opentelemetry-instrument``)."""
    global _tracer
    try:
        from opentelemetry import trace
    except ImportError:
        raise ImportError("tracing needs OpenTelemetry: pip install 'tenuto[otel]'") from None
    _tracer = (provider or trace.get_tracer_provider()).get_tracer("tenuto")


def disable() -> None:
    """Stop emitting spans."""
    global _tracer
    _tracer = None


def enabled() -> bool:
    return _tracer is not None


def valid_traceparent(value: str | None) -> str | None:
    """``value`` if it is a W3C traceparent, else ``None`` (foreign input is not trusted)."""
    return value if value and _TRACEPARENT.match(value) else None


def _traceparent(span: Any) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def _parent(traceparent: str | None) -> Any:
    """The OpenTelemetry context of a stored traceparent (``None``: a new trace)."""
    if valid_traceparent(traceparent) is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


#: A trace context that came with a request from another system (a Durable Task SDK
#: client's ``parentTraceContext``), for :func:`start_span` of the same call.
_incoming: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tenuto_incoming_traceparent", default=None
)


@contextlib.contextmanager
def incoming(traceparent: str | None) -> Iterator[None]:
    """Start instances, within this block, in the trace of ``traceparent`` (a W3C
    traceparent another system sent; ignored if it is not one): under it when tracing is
    on, stored as it is when tracing is off (so that SDK workers still see it)."""
    token = _incoming.set(valid_traceparent(traceparent))
    try:
        yield
    finally:
        _incoming.reset(token)


def start_span(name: str) -> str | None:
    """The span of a client starting instances of ``name``, under the caller's current
    span (or the :func:`incoming` context); returns its traceparent, to store with them
    (when tracing is off: the incoming traceparent, if any, else ``None``)."""
    parent = _incoming.get()
    if _tracer is None:
        return parent
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        f"create_orchestration:{name}",
        context=_parent(parent),
        kind=SpanKind.PRODUCER,
        attributes={"tenuto.orchestrator": name},
    ) as span:
        return _traceparent(span)


@contextlib.contextmanager
def step_span(row: InstanceRow, history: Sequence[h.Event]) -> Iterator[Any]:
    """The span of one orchestration step of ``row``; ``history``: the events read for
    it (pauses and resumes since the previous step become span events). Yields the span,
    or ``None`` when tracing is off."""
    if _tracer is None:
        yield None
        return
    attributes = {
        "tenuto.instance_id": row.instance_id,
        "tenuto.orchestrator": row.name,
        "tenuto.execution_id": row.execution_id,
    }
    if row.version is not None:
        attributes["tenuto.version"] = row.version
    with _tracer.start_as_current_span(
        f"orchestration:{row.name}", context=_parent(row.trace_parent), attributes=attributes
    ) as span:
        for event in _since_last_step(history):
            if event.type == h.EXECUTION_SUSPENDED:
                fields = {k: str(v) for k, v in event.data.items() if v is not None}
                span.add_event("paused", fields, timestamp=int(event.ts * 1e9))
            elif event.type == h.EXECUTION_RESUMED:
                fields = {k: str(v) for k, v in event.data.items() if v is not None}
                span.add_event("resumed", fields, timestamp=int(event.ts * 1e9))
        yield span


def _since_last_step(history: Sequence[h.Event]) -> Sequence[h.Event]:
    for i in range(len(history) - 1, -1, -1):
        if history[i].type == h.ORCHESTRATOR_STARTED:
            return history[i + 1 :]
    return history


def step_traceparent(span: Any) -> str | None:
    """The traceparent under which a step's activities and children run."""
    return None if span is None else _traceparent(span)


def step_finished(span: Any, status: str | None) -> None:
    if span is not None and status is not None:
        span.set_attribute("tenuto.status", status)


@contextlib.contextmanager
def activity_span(row: ActivityRow) -> Iterator[None]:
    """The span of one activity attempt, current while its code runs."""
    if _tracer is None:
        yield
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    with _tracer.start_as_current_span(
        f"activity:{row.name}",
        context=_parent(row.trace_parent),
        kind=SpanKind.SERVER,
        attributes={
            "tenuto.instance_id": row.instance_id,
            "tenuto.activity": row.name,
            "tenuto.task_id": row.task_id,
            "tenuto.attempt": row.attempt,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))
            raise


def tracked(event: str, instance_id: str, fields: dict[str, Any], seq: int, at: float) -> None:
    """A drained tracking record as a span ``tenuto.<event>`` (no duration, at the time of
    the change), when tracing is on: the central log's records, in the trace backend."""
    if _tracer is None:
        return
    attributes: dict[str, Any] = {"tenuto.instance_id": instance_id, "tenuto.seq": seq}
    for key, value in fields.items():
        if value is not None:  # OpenTelemetry takes no null attribute
            attributes[f"tenuto.{key}"] = (
                value if isinstance(value, str | int | float) else str(value)
            )
    start = int(at * 1e9)
    span = _tracer.start_span(f"tenuto.{event}", start_time=start, attributes=attributes)
    span.end(end_time=start)
