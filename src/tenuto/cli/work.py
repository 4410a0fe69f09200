"""What is in flight: an instance's pending work (the sections of ``tenuto status``,
and what ``tenuto pause --wait-drained`` waits for) and ``tenuto workers``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from ..status import Status
from ..work import PendingWork, QueuedActivity, WorkerInfo
from .opening import client_for
from .params import DB_OPTION, JSON_OPTION
from .render import (
    PAUSE_STYLE,
    duration_text,
    plural,
    print_json,
    print_rich,
    seconds_since,
    table,
    text,
    time_text,
)


def pending_rows(work: PendingWork) -> list[tuple[str, Any]]:
    """The rows ``tenuto status`` shows of what runs and what waits."""
    rows: list[tuple[str, Any]] = [("Warning", text(w, "bold red")) for w in work.warnings]
    for a in work.running:
        started = f", started {time_text(a.started_at)}" if a.started_at else ""
        rows.append(
            (
                "Running",
                text(f"{a.name} (task {a.task_id}, attempt {a.attempt}{started}) on {a.worker}"),
            )
        )
    for r in work.waiting_results:
        outcome = "completed" if r.ok else "failed"
        rows.append(
            (
                "Result waiting",
                text(
                    f"{r.name or '?'} (task {r.task_id}) {outcome} at "
                    f"{time_text(r.finished_at)}; handed over at the next step"
                    + (" (after the resume)" if work.status is Status.PAUSED else ""),
                    PAUSE_STYLE,
                ),
            )
        )
    for q in work.held:
        rows.append(("Held", text(_queued(q), PAUSE_STYLE)))
    for q in work.queued:
        rows.append(("Queued", text(_queued(q))))
    for t in work.timers:
        rows.append(("Timer", text(f"task {t.task_id} fires at {time_text(t.fire_at)}")))
    for e in work.events:
        until = f" until {time_text(e.timeout_at)}" if e.timeout_at else ""
        rows.append(("Waiting for", text(f"event {e.name!r}{until}")))
    for c in work.children:
        quiet = "" if c.drained or c.status.is_terminal else ", still running work"
        rows.append(("Child", text(f"{c.instance_id} ({c.name}, {c.status.value}{quiet})")))
    rows.append(("Drained", text(_drained(work), "green" if work.drained else "")))
    return rows


def _queued(q: QueuedActivity) -> str:
    why = f" by a {q.held_by}" if q.held_by else ""
    when = f", may start at {time_text(q.start_at)}" if q.start_at else ""
    return f"{q.name} (task {q.task_id}, attempt {q.attempt}) not started{why}{when}"


def _drained(work: PendingWork) -> str:
    if not work.drained:
        return "no: work of it is still running"
    if work.status is Status.PAUSED:
        return "yes: paused and quiet, nothing of it runs until it is resumed"
    return "yes: nothing of it is running now"


def report_drained(work: PendingWork, as_json: bool) -> None:
    """What ``tenuto pause --wait-drained`` prints once the instance is drained."""
    if as_json:
        print_json(work.to_json())
        return
    waiting = len(work.waiting_results)
    results = f"; {plural(waiting, 'result')} waiting for the resume" if waiting else ""
    click.echo(f"{work.instance_id} is paused and quiet{results}: go ahead.")


class _Echo(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"Warning: {record.getMessage()}", err=True)


@contextmanager
def echo_warnings() -> Iterator[None]:
    """Print the client's warnings (an orchestrator no live worker serves) on stderr."""
    logger = logging.getLogger("tenuto.client")
    handler = _Echo(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def show_workers(workers: list[WorkerInfo]) -> None:
    if not workers:
        print_rich(text("No live workers."))
        return
    columns = ["ID", "Host", "PID", "Up", "Seen", "Running", "Serves"]
    result = table(*columns, no_wrap=["ID", "Host", "PID", "Up", "Seen", "Running"])
    for w in workers:
        result.add_row(
            text(w.id),
            text(w.host),
            text(w.pid),
            text(duration_text(seconds_since(w.started_at))),
            text(f"{duration_text(seconds_since(w.last_seen))} ago"),
            text(w.running),
            text(_serves(w)),
        )
    print_rich(result, text(f"{plural(len(workers), 'worker')}.", "dim"))


def _serves(w: WorkerInfo) -> str:
    orchestrators = "any" if w.orchestrators is None else ", ".join(w.orchestrators) or "none"
    activities = "any" if w.activities is None else ", ".join(w.activities) or "none"
    return f"orchestrators: {orchestrators}; activities: {activities}"


@click.command()
@DB_OPTION
@JSON_OPTION
def workers(db: str | None, as_json: bool) -> None:
    """List the live workers: host, process, uptime, last heartbeat, activities running
    now, and the orchestrators and activities they serve.

    Durable Task SDK workers connected over gRPC are listed too (kind sdk, under the
    host and process of the gRPC server). A worker gone for longer than its lease
    is not listed.

    \b
    Examples:
      tenuto workers
      tenuto workers --json
    """
    with client_for(db, read_only=True) as client:
        found = client.workers()
    if as_json:
        print_json([w.to_json() for w in found])
    else:
        show_workers(found)


COMMANDS = [workers]
