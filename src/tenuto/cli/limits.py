"""``tenuto limit`` and ``tenuto limits``: flow-control limits."""

from __future__ import annotations

from collections.abc import Sequence

import click

from ..client import Client
from ..limits import Limit
from .params import BY_OPTION, DB_OPTION, JSON_OPTION, REASON_OPTION
from .render import plural, print_json, print_rich, table, text, time_text


@click.command()
@click.option("--activity", default=None, metavar="NAME", help="Limit this activity.")
@click.option("--orchestrator", default=None, metavar="NAME", help="Limit this orchestrator.")
@click.option("--max-concurrent", type=int, default=None, help="Activity: most running at once.")
@click.option("--per-second", type=float, default=None, help="Activity: most starts a second.")
@click.option("--max-running", type=int, default=None, help="Orchestrator: most RUNNING at once.")
@click.option("--remove", is_flag=True, help="Lift the limit.")
@REASON_OPTION
@BY_OPTION
@DB_OPTION
@JSON_OPTION
def limit(
    activity: str | None,
    orchestrator: str | None,
    max_concurrent: int | None,
    per_second: float | None,
    max_running: int | None,
    remove: bool,
    reason: str | None,
    by: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Limit an activity or orchestrator across every worker (a pause that lets some
    work through): it applies at once to work not started yet. Paused work never
    starts, whatever the limits.

    \b
    Examples:
      tenuto limit --activity charge_card --max-concurrent 5 --per-second 20 -r "PSP quota"
      tenuto limit --orchestrator migrate --max-running 2
      tenuto limit --activity charge_card --remove
    """
    if (activity is None) == (orchestrator is None):
        raise click.UsageError("give one of --activity NAME and --orchestrator NAME")
    with Client(db) as client:
        if remove:
            if activity is not None:
                removed = client.remove_activity_limit(activity, by=by)
            else:
                removed = client.remove_orchestrator_limit(orchestrator or "", by=by)
            if as_json:
                print_json({"removed": removed})
            else:
                click.echo("Limit removed." if removed else "There was no limit; nothing changed.")
            return
        if activity is not None:
            if max_running is not None:
                raise click.UsageError("--max-running is for --orchestrator")
            set_ = client.limit_activity(activity, max_concurrent, per_second, reason=reason, by=by)
        else:
            if max_concurrent is not None or per_second is not None:
                raise click.UsageError("an orchestrator takes --max-running")
            if max_running is None:
                raise click.UsageError("give --max-running N")
            set_ = client.limit_orchestrator(orchestrator or "", max_running, reason=reason, by=by)
    if as_json:
        print_json(set_.to_json())
    else:
        click.echo(f"Limited {set_.kind} {set_.name}: {_what(set_)}.")


@click.command()
@DB_OPTION
@JSON_OPTION
def limits(db: str | None, as_json: bool) -> None:
    """List the flow-control limits, with reason and actor.

    \b
    Example:
      tenuto limits --db postgresql://tenuto@db/tenuto
    """
    with Client(db) as client:
        found = client.limits()
    if as_json:
        print_json([lim.to_json() for lim in found])
    else:
        show_limits(found)


def show_limits(found: Sequence[Limit]) -> None:
    if not found:
        print_rich(text("No limits."))
        return
    columns = ["Kind", "Name", "Limit", "By", "Since", "Reason"]
    result = table(*columns, no_wrap=["Kind", "Limit", "Since"])
    for lim in found:
        result.add_row(
            text(lim.kind),
            text(lim.name, "bold"),
            text(_what(lim)),
            text(lim.by),
            text(time_text(lim.since)),
            text(lim.reason or "-"),
        )
    print_rich(result, text(f"{plural(len(found), 'limit')}.", "dim"))


def _what(lim: Limit) -> str:
    if lim.kind == "orchestrator":
        return f"{lim.max_concurrent} running"
    parts = []
    if lim.max_concurrent is not None:
        parts.append(f"{lim.max_concurrent} at once")
    if lim.per_second is not None:
        parts.append(f"{lim.per_second:g}/s")
    return ", ".join(parts)


COMMANDS = [limit, limits]
