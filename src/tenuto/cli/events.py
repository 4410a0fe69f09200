"""``tenuto events``: the tracking records of every process (the outbox), as a tail."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from ..client import Client
from ..events import MAX_EVENTS, MAX_SEQ, EventsPage, TrackedEvent
from .params import DB_OPTION

#: How long ``--follow`` waits before it reads again when nothing came.
_FOLLOW_POLL = 0.25


@click.command()
@click.option(
    "--after",
    type=click.IntRange(0, MAX_SEQ),
    default=None,
    metavar="SEQ",
    help="Print the records after this one (0: every record kept) [default: the last "
    "--limit records].",
)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_EVENTS),
    default=20,
    show_default=True,
    help="Most records printed (without --follow).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing records as they come.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines (one object a line).")
@DB_OPTION
def events(after: int | None, limit: int, follow: bool, as_json: bool, db: str | None) -> None:
    """Print the tracking records: every state change (started, paused with its reason,
    actor and source, resumed, completed, ...), whoever made it, in order.

    Records are numbered (SEQ) by the tenuto serve or tenuto worker process that
    drains them into its log; they are kept an hour after that. Times are in UTC.
    With --follow, stop with Ctrl-C; pass the last SEQ printed as --after to
    continue where you stopped.

    \b
    Examples:
      tenuto events                               (the last 20)
      tenuto events --follow --json >> audit.jsonl
      tenuto events --after 1200 --limit 1000
    """
    with Client(db) as client:
        state = client.store.read(lambda r: r.drain_state())
        if state.pending and (state.holder is None or (state.lease_until or 0) < time.time()):
            click.echo(
                f"{state.pending} tracking record(s) not numbered yet: run tenuto serve or "
                "tenuto worker on this database (they drain them)",
                err=True,
            )
        if after is None:
            after = max(0, state.sequenced - limit)
        if not follow:
            _print(client.events(after, limit=limit), as_json)
            return
        with _until_signalled() as stopped:
            while not stopped.is_set():
                page = client.events(after, limit=MAX_EVENTS)
                _print(page, as_json)
                after = page.next_cursor
                if not page.items:
                    stopped.wait(_FOLLOW_POLL)


@contextmanager
def _until_signalled() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM: ``--follow`` stops between two reads, never in
    the middle of one (an interrupted database call would end in an error)."""
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _print(page: EventsPage, as_json: bool) -> None:
    if page.missed:
        click.echo(f"({page.missed} record(s) trimmed before they could be read)", err=True)
    for e in page.items:
        click.echo(
            json.dumps(e.to_json(), ensure_ascii=False, default=str) if as_json else _line(e)
        )


def _line(e: TrackedEvent) -> str:
    """``SEQ TIME EVENT ID key=value...``, the time in UTC to the second."""
    fields = " ".join(
        f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
        for k, v in e.fields.items()
        if v is not None
    )
    at = e.at.strftime("%Y-%m-%d %H:%M:%S")
    return f"{e.seq} {at} {e.event} {e.instance_id} {fields}".rstrip()


COMMANDS = [events]
