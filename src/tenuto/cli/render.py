"""What people see: styled tables on a terminal (plain and wide when piped), JSON for
scripts, and the views of an instance, a page of instances and the standing pauses.

rich is imported only when something is printed as a table."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from ..status import InstanceStatus, PauseInfo, StandingPause, Status

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

STATUS_STYLE = {
    Status.PENDING: "cyan",
    Status.RUNNING: "blue",
    Status.PAUSED: "bold yellow",
    Status.COMPLETED: "green",
    Status.FAILED: "bold red",
    Status.TERMINATED: "magenta",
}
PAUSE_STYLE = "yellow"

# -- printing --------------------------------------------------------------------------


def print_rich(*renderables: Any) -> None:
    """Print rich renderables: styled on a terminal; plain, wide (ids and reasons are
    neither wrapped nor cut) and without trailing blanks when piped, for grep and co."""
    from rich.console import Console

    if sys.stdout.isatty():
        Console(highlight=False).print(*renderables, sep="\n")
        return
    console = Console(highlight=False, width=int(os.environ.get("COLUMNS") or 200))
    with console.capture() as captured:
        console.print(*renderables, sep="\n")
    for line in captured.get().splitlines():
        click.echo(line.rstrip())


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def table(*columns: str, no_wrap: Sequence[str] = ()) -> Table:
    """A borderless table with bold headers; the ``no_wrap`` columns are never wrapped."""
    from rich.table import Table

    result = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        result.add_column(column, no_wrap=column in no_wrap)
    return result


# -- text ------------------------------------------------------------------------------


def text(value: Any, style: str = "") -> Text:
    """User data as rich text (never interpreted as markup)."""
    from rich.text import Text

    return Text("" if value is None else str(value), style=style)


def short(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def compact(value: Any) -> str:
    """A JSON value on one line."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def value_text(value: Any, limit: int = 80) -> str:
    """A JSON value on one line, cut at ``limit`` characters."""
    return short(compact(value), limit)


def time_text(when: datetime | None, ms: bool = False) -> str:
    if when is None:
        return ""
    result = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f" if ms else "%Y-%m-%d %H:%M:%S")
    return (result[:-3] if ms else result) + "Z"


def duration_text(seconds: float) -> str:
    if seconds < 1:
        return f"{max(seconds, 0) * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def seconds_since(when: datetime) -> float:
    return (datetime.now(UTC) - when).total_seconds()


def since_text(when: datetime) -> str:
    """``2024-05-01 09:30:00Z (5m 3s ago)``."""
    return f"{time_text(when)} ({duration_text(seconds_since(when))} ago)"


def plural(count: int, what: str = "instance") -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def status_text(status: Status) -> Text:
    return text(status.value, STATUS_STYLE[status])


def paused_by(pause: PauseInfo, name: str | None = None) -> str:
    """Who paused an instance: an actor, ``itself``, or an actor's standing pause of the
    instance's orchestrator (``name``, when known)."""
    if pause.source == "orchestration":
        return "itself"
    if pause.source == "orchestrator":
        of = f" of orchestrator {name}" if name else ""
        return f"{pause.by or ''} (standing pause{of})".lstrip()
    if pause.source in _WHAT_TO_DO:
        return f"{pause.by or 'tenuto'} ({_WHAT_PAUSED[pause.source]})"
    return pause.by or ""


#: Pauses by tenuto itself: what caused them, and what to do about them.
_WHAT_PAUSED = {
    "nondeterminism": "its code no longer matches its history",
    "failure": "a call failed its last attempt",
}
_WHAT_TO_DO = {
    "nondeterminism": "deploy code that matches (tenuto replay-check tells), then resume",
    "failure": "resume to run the call again, or resume --deliver-failure to raise it",
}


def report_count(count: int, done: str, as_json: bool) -> None:
    """What a command on many instances did: ``Paused 3 instances.``, or its JSON."""
    if as_json:
        print_json({"count": count})
    else:
        click.echo(f"{done} {plural(count)}.")


def standing_summary(sp: StandingPause) -> str:
    """``paused by ops 5m 2s ago: business hours``."""
    reason = f": {sp.reason}" if sp.reason else ""
    return f"paused by {sp.by} {duration_text(seconds_since(sp.since))} ago{reason}"


# -- views -----------------------------------------------------------------------------


def show_status(
    st: InstanceStatus,
    standing: Sequence[StandingPause] = (),
    more: Sequence[tuple[str, Any]] = (),
) -> None:
    """One instance as a two-column grid; ``standing`` gives the reasons of the activity
    pauses that hold its ``held_activities``; ``more`` rows follow its pause (what it
    has in flight)."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, Any]] = [
        ("Instance", text(st.instance_id)),
        ("Name", text(st.name)),
        ("Status", status_text(st.runtime_status)),
    ]
    if st.pause is not None:
        rows += [
            ("Paused since", text(since_text(st.pause.since))),
            ("Paused by", text(_paused_by(st))),
            ("Reason", text(st.pause.reason or "(none given)")),
        ]
        if st.pause.source in _WHAT_TO_DO:
            rows.append(("To do", text(_WHAT_TO_DO[st.pause.source])))
        if st.pause.resume_at is not None:
            rows.append(("Resumes at", text(time_text(st.pause.resume_at))))
    if st.held_activities:
        rows.append(("Held activities", text(_held(st.held_activities, standing), PAUSE_STYLE)))
    rows += more
    rows += [
        ("Created", text(time_text(st.created_at))),
        ("Updated", text(time_text(st.updated_at))),
    ]
    if st.completed_at is not None:
        rows.append(("Completed", text(time_text(st.completed_at))))
    if st.parent_instance_id is not None:
        rows.append(("Parent", text(st.parent_instance_id)))
    if st.version is not None:
        rows.append(("Version", text(st.version)))
    if st.tags:
        rows.append(("Tags", text(", ".join(f"{k}={v}" for k, v in st.tags.items()))))
    rows.append(("Input", text(compact(st.input))))
    if st.output is not None or st.runtime_status is Status.COMPLETED:
        rows.append(("Output", text(compact(st.output))))
    if st.custom_status is not None:
        rows.append(("Custom status", text(compact(st.custom_status))))
    if st.failure is not None:
        rows.append(("Failure", text(str(st.failure), "red")))
    for key, value in rows:
        grid.add_row(key, value)
    print_rich(grid)


def _paused_by(st: InstanceStatus) -> str:
    """Who paused it; for a child paused with its parent, through which parent."""
    assert st.pause is not None
    who = paused_by(st.pause, st.name)
    if st.pause.source == "parent" and st.parent_instance_id:
        return f"{who} (via parent {st.parent_instance_id})".lstrip()
    return who


def _held(names: Sequence[str], standing: Sequence[StandingPause]) -> str:
    """``charge_card (paused by ops 5m ago: billing upgrade)``, one per held activity."""
    pauses = {sp.name: sp for sp in standing if sp.kind == "activity"}
    parts = []
    for name in names:
        sp = pauses.get(name)
        parts.append(name if sp is None else f"{name} ({standing_summary(sp)})")
    return "; ".join(parts)


#: Terminal widths below which tables drop or shorten columns (see :func:`show_list`).
NARROW, MEDIUM = 100, 160


def console_width() -> int:
    """The width tables are laid out for: the terminal's, or ``$COLUMNS`` (default 200)
    when piped, as :func:`print_rich` prints them."""
    if sys.stdout.isatty():
        from rich.console import Console

        return Console().width
    return int(os.environ.get("COLUMNS") or 200)


def ago_text(when: datetime) -> str:
    """``5m 3s ago``, or ``in 2h 5m`` for a time ahead."""
    seconds = seconds_since(when)
    return f"{duration_text(seconds)} ago" if seconds >= 0 else f"in {duration_text(-seconds)}"


def show_list(items: Sequence[InstanceStatus], next_cursor: str | None) -> None:
    """A page of instances. Paused ones get since when, by whom and why; running ones
    that wait on activities held by a standing pause get those activities.

    Narrower terminals drop columns, timestamps first: below :data:`MEDIUM` columns
    the creation time goes and times read as "5m ago"; below :data:`NARROW` the name,
    the update time and who paused go too. The id, the status and the reason stay."""
    if not items:
        print_rich(text("No instances match."))
        return
    width = console_width()
    paused = any(st.pause is not None for st in items)
    held = any(_held_while_running(st) for st in items)
    columns = ["ID", "Name", "Status", "Created", "Updated"]
    if width < MEDIUM:
        columns.remove("Created")
        if paused:  # the time of the pause says more
            columns.remove("Updated")
    if width < NARROW:
        columns.remove("Name")
    # A long name wraps on a wide terminal; on a narrower one the reason and who paused
    # wrap instead (the name stays whole).
    wraps = ("Name",) if width >= MEDIUM else ()
    result = table(*columns, no_wrap=[c for c in columns if c not in wraps])
    pause_columns = ["Paused since", "By", "Reason"] if width >= NARROW else ["Paused", "Reason"]
    if paused:
        for column in pause_columns:
            result.add_column(
                column,
                style=PAUSE_STYLE,
                no_wrap=column not in ("Reason", "By"),
                min_width=20 if column == "Reason" else None,
            )
    if held:
        result.add_column("Held activities", style=PAUSE_STYLE)
    short_times = width < MEDIUM
    for st in items:
        cells = {
            "ID": text(st.instance_id),
            "Name": text(st.name),
            "Status": status_text(st.runtime_status),
            "Created": text(time_text(st.created_at)),
            "Updated": text(ago_text(st.updated_at) if short_times else time_text(st.updated_at)),
        }
        row = [cells[c] for c in columns]
        if paused:
            p = st.pause
            if p is None:
                row += [text("") for _ in pause_columns]
            else:
                reason = p.reason or ""
                if p.resume_at is not None:
                    if short_times:  # "in 2h 5m"
                        resumes = ago_text(p.resume_at)
                    else:
                        resumes = f"at {time_text(p.resume_at)}"
                    reason = f"{reason} (resumes {resumes})".strip()
                since = ago_text(p.since) if short_times else since_text(p.since)
                if width >= NARROW:
                    row += [text(since), text(paused_by(p)), text(reason)]
                else:
                    row += [text(since), text(reason)]
        if held:
            row.append(text(", ".join(_held_while_running(st))))
        result.add_row(*row)
    count = plural(len(items))
    if next_cursor:
        footer = f"{count} shown; more match. Next page: add --cursor {next_cursor}"
    else:
        footer = f"{count}."
    print_rich(result, text(footer, "dim"))


def _held_while_running(st: InstanceStatus) -> tuple[str, ...]:
    return st.held_activities if st.runtime_status is Status.RUNNING else ()


def show_standing_pauses(pauses: Sequence[StandingPause]) -> None:
    """The standing pauses; narrower terminals show times as "5m ago" (below
    :data:`MEDIUM` columns) and drop who paused (below :data:`NARROW`)."""
    if not pauses:
        print_rich(text("No standing pauses."))
        return
    width = console_width()
    columns = ["Kind", "Name", "Reason", "By", "Since", "Resumes at"]
    if width < NARROW:
        columns.remove("By")
    result = table(*columns, no_wrap=[c for c in columns if c != "Reason"])
    short_times = width < MEDIUM
    for sp in pauses:
        cells = {
            "Kind": text(sp.kind),
            "Name": text(sp.name, "bold"),
            "Reason": text(sp.reason or "(none given)"),
            "By": text(sp.by),
            "Since": text(ago_text(sp.since) if short_times else since_text(sp.since)),
            "Resumes at": text(
                ""
                if sp.resume_at is None
                else ago_text(sp.resume_at)
                if short_times
                else time_text(sp.resume_at)
            ),
        }
        result.add_row(*(cells[c] for c in columns))
    print_rich(result, text(f"{plural(len(pauses), 'standing pause')}.", "dim"))
