"""``tenuto schedule create|list|show|pause|resume|trigger|backfill|delete``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click

from ..client import Client
from ..errors import ValidationError
from ..schedules import DEFAULT_CATCHUP, OVERLAPS, ScheduleInfo
from .params import BY_OPTION, DB_OPTION, JSON_OPTION, JSON_VALUE, REASON_OPTION, WHEN
from .params import parse_duration as _parse_duration
from .render import (
    plural,
    print_json,
    print_rich,
    standing_summary,
    table,
    text,
    time_text,
    value_text,
)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return _parse_duration(value)
    except ValidationError as exc:
        raise click.BadParameter(str(exc)) from None


F = TypeVar("F", bound=Callable[..., Any])


def _duration_option(*names: str, help: str) -> Callable[[F], F]:
    return click.option(*names, default=None, metavar="DURATION", callback=_duration, help=help)


@click.group()
def schedule() -> None:
    """Start an orchestrator by itself: every N, or at cron times.

    Workers fire schedules (each fire time once, whatever the number of workers); a
    run is an ordinary instance named SCHEDULE@FIRE-TIME. A paused schedule is a
    standing pause (see 'tenuto pauses'). Every subcommand takes --db URL.

    \b
    Examples:
      tenuto schedule create nightly backup --cron "0 2 * * *" --timezone Europe/Paris
      tenuto schedule create heartbeat ping --every 30s --input '{"target": "db"}'
      tenuto schedule pause nightly --reason "storage migration" --resume-at +6h
      tenuto schedule list
    """


@schedule.command()
@click.argument("schedule_id")
@click.argument("orchestrator")
@click.option("--input", "input_", type=JSON_VALUE, default=None, help="JSON input of every run.")
@_duration_option("--every", help="Fire every DURATION (30s, 15m, 1h, 1d), aligned to the epoch.")
@click.option("--cron", default=None, help='Fire at the times of a cron expression ("0 2 * * *").')
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of --cron.")
@click.option("--start-at", type=WHEN, default=None, help="No fire time before this.")
@click.option("--end-at", type=WHEN, default=None, help="No fire time after this.")
@click.option(
    "--overlap",
    type=click.Choice(OVERLAPS),
    default="skip",
    show_default=True,
    help="What a fire time does while the latest run is unfinished.",
)
@_duration_option(
    "--catchup-window",
    help=f"Run a missed fire time if at most this old (default {int(DEFAULT_CATCHUP.seconds)}s).",
)
@_duration_option("--jitter", help="Delay each run by up to DURATION (spread, stable).")
@click.option("--pause-on-failure", is_flag=True, help="Pause the schedule when a run fails.")
@click.option("--replace", is_flag=True, help="Update the schedule if the id is taken.")
@DB_OPTION
@JSON_OPTION
def create(
    schedule_id: str,
    orchestrator: str,
    input_: Any,
    every: timedelta | None,
    cron: str | None,
    timezone: str,
    start_at: datetime | None,
    end_at: datetime | None,
    overlap: str,
    catchup_window: timedelta | None,
    jitter: timedelta | None,
    pause_on_failure: bool,
    replace: bool,
    db: str | None,
    as_json: bool,
) -> None:
    """Create a schedule of ORCHESTRATOR (give --every or --cron).

    \b
    Examples:
      tenuto schedule create nightly backup --cron "0 2 * * *" --timezone Europe/Paris
      tenuto schedule create poll check --every 1m --overlap buffer_one
    """
    with Client(db) as client:
        info = client.create_schedule(
            schedule_id,
            orchestrator,
            input_,
            every=every,
            cron=cron,
            timezone=timezone,
            start_at=start_at,
            end_at=end_at,
            overlap=overlap,
            catchup_window=catchup_window or DEFAULT_CATCHUP,
            jitter=jitter,
            pause_on_failure=pause_on_failure,
            replace=replace,
        )
    if as_json:
        print_json(info.to_json())
    else:
        click.echo(f"Schedule {info.schedule_id}: {_when(info)}; next {_next(info)}.")


@schedule.command(name="list")
@click.option("--orchestrator", default=None, help="Only the schedules of this orchestrator.")
@DB_OPTION
@JSON_OPTION
def list_(orchestrator: str | None, db: str | None, as_json: bool) -> None:
    """List the schedules with their next fire time, pause and latest run."""
    with Client(db) as client:
        infos = client.schedules(orchestrator=orchestrator)
    if as_json:
        print_json([i.to_json() for i in infos])
        return
    if not infos:
        print_rich(text("No schedules. Create one with 'tenuto schedule create'."))
        return
    columns = ["Schedule", "Orchestrator", "When", "Next fire", "Latest run"]
    result = table(*columns, no_wrap=["Next fire", "Latest run"])
    for info in infos:
        latest = info.last_runs[0] if info.last_runs else None
        result.add_row(
            text(info.schedule_id, "bold"),
            text(info.orchestrator),
            text(_when(info)),
            text("PAUSED", "yellow") if info.paused else text(_next(info)),
            text("-" if latest is None else latest.status.value if latest.status else "purged"),
        )
    print_rich(result, text(f"{plural(len(infos), 'schedule')}.", "dim"))


@schedule.command()
@click.argument("schedule_id")
@DB_OPTION
@JSON_OPTION
def show(schedule_id: str, db: str | None, as_json: bool) -> None:
    """Show a schedule: timing, pause, next fire times and latest runs."""
    with Client(db) as client:
        info = client.schedule(schedule_id)
    if as_json:
        print_json(info.to_json())
        return
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Schedule", info.schedule_id)
    grid.add_row("Orchestrator", info.orchestrator)
    grid.add_row("Input", value_text(info.input))
    grid.add_row("When", _when(info))
    grid.add_row("Overlap", info.overlap)
    grid.add_row("Catch-up", _span(info.catchup_window.total_seconds()))
    if info.pause is not None:
        grid.add_row("State", text(f"PAUSED, {standing_summary(info.pause)}", "yellow"))
        if info.pause.resume_at is not None:
            grid.add_row("Resumes at", time_text(info.pause.resume_at))
    grid.add_row("Next fires", ", ".join(time_text(t) for t in info.next_fires) or "none")
    if info.buffered is not None:
        grid.add_row("Buffered", time_text(info.buffered))
    print_rich(grid)
    if info.last_runs:
        runs = table("Run", "Status", no_wrap=["Run"])
        for run in info.last_runs:
            runs.add_row(text(run.instance_id), text(run.status.value if run.status else "purged"))
        print_rich(runs)


@schedule.command()
@click.argument("schedule_id", required=False)
@click.option("--orchestrator", default=None, help="Every schedule of this orchestrator.")
@REASON_OPTION
@click.option("--resume-at", type=WHEN, default=None, help="Resume by itself at this time.")
@BY_OPTION
@DB_OPTION
def pause(
    schedule_id: str | None,
    orchestrator: str | None,
    reason: str | None,
    resume_at: datetime | None,
    by: str | None,
    db: str | None,
) -> None:
    """Pause a schedule (or with --orchestrator, all of that orchestrator's): no run
    starts until resumed; fire times missed meanwhile are skipped unless within the
    catch-up window at resume.

    \b
    Examples:
      tenuto schedule pause nightly --reason "storage migration" --resume-at +6h
      tenuto schedule pause --orchestrator backup --reason "outage"
    """
    with Client(db) as client:
        if schedule_id is not None:
            changed = client.pause_schedule(schedule_id, reason, resume_at=resume_at, by=by)
            click.echo(f"Paused schedule {schedule_id}." if changed else "Already paused.")
        else:
            _need_target(orchestrator)
            count = client.pause_schedules(
                orchestrator=orchestrator, reason=reason, resume_at=resume_at, by=by
            )
            click.echo(f"Paused {plural(count, 'schedule')}.")


@schedule.command()
@click.argument("schedule_id", required=False)
@click.option("--orchestrator", default=None, help="Every schedule of this orchestrator.")
@REASON_OPTION
@BY_OPTION
@DB_OPTION
def resume(
    schedule_id: str | None,
    orchestrator: str | None,
    reason: str | None,
    by: str | None,
    db: str | None,
) -> None:
    """Resume a paused schedule (or with --orchestrator, all of that orchestrator's)."""
    with Client(db) as client:
        if schedule_id is not None:
            changed = client.resume_schedule(schedule_id, reason, by=by)
            click.echo(f"Resumed schedule {schedule_id}." if changed else "It was not paused.")
        else:
            _need_target(orchestrator)
            count = client.resume_schedules(orchestrator=orchestrator, reason=reason, by=by)
            click.echo(f"Resumed {plural(count, 'schedule')}.")


@schedule.command()
@click.argument("schedule_id")
@click.option("--overlap", type=click.Choice(OVERLAPS), default=None, help="Instead of its own.")
@DB_OPTION
@JSON_OPTION
def trigger(schedule_id: str, overlap: str | None, db: str | None, as_json: bool) -> None:
    """Start a run now (even if the schedule is paused), by its overlap policy."""
    with Client(db) as client:
        iid = client.trigger_schedule(schedule_id, overlap=overlap)
    if as_json:
        print_json({"instance_id": iid})
    elif iid is None:
        click.echo("Not started: the latest run is unfinished (overlap policy).")
    else:
        click.echo(f"Started {iid}.")


@schedule.command()
@click.argument("schedule_id")
@click.option("--start", "start", type=WHEN, required=True, help="The first fire time.")
@click.option("--end", "end", type=WHEN, required=True, help="The last fire time.")
@DB_OPTION
@JSON_OPTION
def backfill(
    schedule_id: str, start: datetime, end: datetime, db: str | None, as_json: bool
) -> None:
    """Start the runs of the fire times from --start to --end that have none.

    \b
    Example:
      tenuto schedule backfill nightly --start 2026-01-01 --end 2026-01-31
    """
    with Client(db) as client:
        ids = client.backfill_schedule(schedule_id, start, end)
    if as_json:
        print_json({"started": ids})
    else:
        click.echo(f"Started {plural(len(ids), 'run')}.")


@schedule.command()
@click.argument("schedule_id")
@DB_OPTION
def delete(schedule_id: str, db: str | None) -> None:
    """Delete a schedule (its runs stay)."""
    with Client(db) as client:
        client.delete_schedule(schedule_id)
    click.echo(f"Deleted schedule {schedule_id}.")


def _need_target(orchestrator: str | None) -> None:
    if orchestrator is None:
        raise click.UsageError("give a SCHEDULE_ID, or --orchestrator NAME for all of its")


def _when(info: ScheduleInfo) -> str:
    if info.every is not None:
        return f"every {_span(info.every.total_seconds())}"
    zone = "" if info.timezone == "UTC" else f" {info.timezone}"
    return f"{info.cron}{zone}"


def _span(seconds: float) -> str:
    """``90`` as ``1m30s``, ``86400`` as ``1d`` (the form --every takes)."""
    parts, rest = [], seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{int(count)}{unit}")
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)


def _next(info: ScheduleInfo) -> str:
    if info.paused:
        return "paused"
    return time_text(info.next_fires[0]) if info.next_fires else "none (ended)"


COMMANDS = [schedule]
