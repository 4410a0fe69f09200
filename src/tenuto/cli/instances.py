"""Commands on orchestration instances: start, status, list, terminate, raise, history
and purge. (Pausing and resuming are in :mod:`.pausing`.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..client import Client
from ..errors import WaitTimeout
from ..filters import Filter
from .bulk import bulk_options, check_bulk_flags, go_ahead
from .opening import client_for
from .params import (
    ALL_OPTION,
    BY_OPTION,
    DB_OPTION,
    JSON_OPTION,
    JSON_VALUE,
    REASON_OPTION,
    TAG,
    WHEN,
    acts_on_many,
    filter_options,
)
from .render import print_json, report_count, show_list, show_status
from .timeline import show_history
from .work import echo_warnings, pending_rows


@click.command()
@click.argument("name")
@click.argument("input_json", metavar="[INPUT_JSON]", required=False, type=JSON_VALUE)
@click.option("--id", "instance_id", default=None, help="The instance id [default: random].")
@click.option("--start-at", type=WHEN, default=None, help="Delay the first step (ISO or +30m).")
@click.option(
    "--version", "version", default=None, metavar="VERSION", help="A version label to store."
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    type=TAG,
    metavar="KEY=VALUE",
    help="A tag to store with the instance; repeat for several.",
)
@DB_OPTION
@JSON_OPTION
def start(
    name: str,
    input_json: Any,
    instance_id: str | None,
    start_at: datetime | None,
    version: str | None,
    tags: tuple[tuple[str, str], ...],
    db: str | None,
    as_json: bool,
) -> None:
    """Start an instance of orchestrator NAME; prints its instance id.

    INPUT_JSON is the input as JSON (quote strings: '"vol-1"'); '-' reads it from stdin.
    While a standing pause of NAME stands (see 'tenuto pauses') the instance starts
    PAUSED, and runs once that pause is resumed.

    \b
    Examples:
      tenuto start backup '"vol-1"'
      tenuto start billing '{"month": "2024-05"}' --id billing-2024-05
      tenuto start report --start-at +2h
      tenuto start backup '"vol-1"' --version 2 --tag team=storage --tag env=prod
      cat input.json | tenuto start audit -
    """
    with Client(db) as client, echo_warnings():
        iid = client.start(
            name,
            input_json,
            instance_id=instance_id,
            start_at=start_at,
            version=version,
            tags=dict(tags) if tags else None,
        )
        if as_json:
            print_json(client.status(iid).to_json())
        else:
            click.echo(iid)


@click.command()
@click.argument("instance_id", metavar="ID")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Wait up to SECONDS for the instance to finish, then show it (PAUSED is not "
    "finished). Exits 1 after showing it if it has not finished by then.",
)
@DB_OPTION
@JSON_OPTION
def status(instance_id: str, wait: float | None, db: str | None, as_json: bool) -> None:
    """Show an instance: status, pause (reason, by, since), activities held by a standing
    pause, what it has in flight (activities running and on which worker, results
    waiting for the resume, timers, awaited events, children, whether it is drained),
    version, tags, input, output, failure. (--json: the status alone; the pending work
    is GET /api/instances/ID/work, or Client.pending_work.)

    \b
    Examples:
      tenuto status billing-2024-05
      tenuto status billing-2024-05 --wait 60 --json
    """
    timed_out = False
    with client_for(db, read_only=True) as client:
        st = client.status(instance_id)
        if wait is not None and not st.is_terminal:
            try:
                st = client.wait(instance_id, timeout=wait)
            except WaitTimeout:
                st, timed_out = client.status(instance_id), True
        if as_json:
            print_json(st.to_json())
        else:
            # What is in flight: only a live instance has any.
            work = None if st.is_terminal else client.pending_work(instance_id)
            standing = client.standing_pauses() if st.held_activities else ()
            show_status(st, standing, pending_rows(work) if work is not None else ())
    if timed_out:
        # A script must tell "finished" from "gave up waiting" by the exit code alone.
        click.echo(
            f"Error: instance {instance_id!r} is still {st.runtime_status.value} after {wait:g} s",
            err=True,
        )
        raise click.exceptions.Exit(1)


@click.command("list")
@filter_options
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="Instances per page.",
)
@click.option("--cursor", default=None, help="Continue after a previous page (its next cursor).")
@DB_OPTION
@JSON_OPTION
def list_(flt: Filter, limit: int, cursor: str | None, db: str | None, as_json: bool) -> None:
    """List instances, newest first, a page at a time.

    Paused instances show since when, by whom and why; running ones that wait on an
    activity held by a standing pause show which. Times are ISO 8601 (UTC unless they
    carry an offset), 'now', or relative to now such as -2h.

    \b
    Examples:
      tenuto list --status paused
      tenuto list --name backup --status running --status pending
      tenuto list --created-after -1d --json
      tenuto list --cursor <next cursor of the previous page>
    """
    with client_for(db, read_only=True) as client:
        page = client.query(flt, limit=limit, cursor=cursor)
    if as_json:
        print_json({"items": [st.to_json() for st in page.items], "next_cursor": page.next_cursor})
    else:
        show_list(page.items, page.next_cursor)


@click.command()
@click.argument("instance_id", metavar="[ID]", required=False)
@ALL_OPTION
@filter_options
@REASON_OPTION
@click.option(
    "--recursive/--no-recursive",
    default=True,
    show_default=True,
    help="Also terminate its live sub-orchestrations.",
)
@bulk_options
@BY_OPTION
@DB_OPTION
@JSON_OPTION
def terminate(
    instance_id: str | None,
    all_: bool,
    flt: Filter,
    reason: str | None,
    recursive: bool,
    dry_run: bool,
    yes: bool,
    by: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """End a live instance (paused ones too) as TERMINATED, or with --all every live
    one the filters select.

    \b
    Examples:
      tenuto terminate billing-2024-05 --reason obsolete
      tenuto terminate --all --name backup --status paused --dry-run
      tenuto terminate --all --id-prefix test- --reason cleanup --yes
    """
    check_bulk_flags(all_, dry_run, yes)
    with client_for(db, actor=by) as client:
        if acts_on_many(instance_id, all_, flt, "terminate"):
            if go_ahead(client, "terminate", flt, dry_run=dry_run, yes=yes, as_json=as_json):
                count = client.terminate_many(flt, reason=reason, recursive=recursive)
                report_count(count, "Terminated", as_json)
            return
        assert instance_id is not None
        client.terminate(instance_id, reason, recursive=recursive)
        st = client.status(instance_id)
    if as_json:
        print_json(st.to_json())
    else:
        click.echo(f"Terminated {instance_id}.")


@click.command("raise")
@click.argument("instance_id", metavar="ID")
@click.argument("event")
@click.argument("data", metavar="[DATA_JSON]", required=False, type=JSON_VALUE)
@DB_OPTION
@JSON_OPTION
def raise_(instance_id: str, event: str, data: Any, db: str | None, as_json: bool) -> None:
    """Send the external event EVENT, with DATA_JSON ('-' reads stdin), to an instance.

    A paused instance receives it after it is resumed, in the order events were raised.

    \b
    Examples:
      tenuto raise billing-2024-05 approval '{"ok": true}'
      tenuto raise billing-2024-05 cancel
    """
    with client_for(db) as client:
        client.raise_event(instance_id, event, data)
    if as_json:
        print_json({"instance_id": instance_id, "event": event, "data": data})
    else:
        click.echo(f"Raised event {event!r} on {instance_id}.")


@click.command()
@click.argument("instance_id", metavar="ID")
@click.option("--verbose", "-v", is_flag=True, help="Also show each orchestrator step.")
@DB_OPTION
@JSON_OPTION
def history(instance_id: str, verbose: bool, db: str | None, as_json: bool) -> None:
    """Show an instance's history as a timeline, oldest first.

    Pause periods are marked with a bar from the pause (┏, with who and why) to the
    resume (┗, with who, why and how long it was paused).

    \b
    Examples:
      tenuto history billing-2024-05
      tenuto history billing-2024-05 --json
    """
    with client_for(db, read_only=True) as client:
        events = client.history(instance_id)
    if as_json:
        print_json({"instance_id": instance_id, "events": [e.to_json() for e in events]})
    else:
        show_history(events, verbose)


@click.command()
@click.argument("instance_id", metavar="[ID]", required=False)
@ALL_OPTION
@filter_options
@bulk_options
@DB_OPTION
@JSON_OPTION
def purge(
    instance_id: str | None,
    all_: bool,
    flt: Filter,
    dry_run: bool,
    yes: bool,
    db: str | None,
    as_json: bool,
) -> None:
    """Delete a finished instance and its history, or with --all every finished
    (COMPLETED, FAILED, TERMINATED) one the filters select.

    \b
    Examples:
      tenuto purge billing-2024-05
      tenuto purge --all --status completed --created-before -30d
      tenuto purge --all --created-before -30d --dry-run
    """
    check_bulk_flags(all_, dry_run, yes)
    with client_for(db) as client:
        if acts_on_many(instance_id, all_, flt, "purge"):
            if not go_ahead(client, "purge", flt, dry_run=dry_run, yes=yes, as_json=as_json):
                return
            count = client.purge_many(flt)
        else:
            assert instance_id is not None
            client.purge(instance_id)
            count = 1
    report_count(count, "Purged", as_json)


COMMANDS = [start, status, list_, terminate, raise_, history, purge]
