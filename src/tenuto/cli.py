"""The ``tenuto`` command line.

Every command works on the database named by ``--db`` (default ``$TENUTO_DB``, then
``sqlite:///tenuto.db``) through :class:`tenuto.Client`, prints tables for people and
JSON with ``--json``, and fails with a one-line message on stderr:

* exit 1: the operation failed (unknown id, finished instance, unknown orchestrator,
  invalid cursor, database unreachable, ...): every tenuto error, and the ``ValueError``
  and ``TypeError`` the client raises for invalid values;
* exit 2: the command line is wrong (unknown option, malformed JSON, date, duration or
  status name, an ID together with ``--all``, ...).

Set ``TENUTO_DEBUG=1`` to see the traceback instead of the one-line message.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from .app import App
from .client import Client
from .errors import TenutoError, WaitTimeout
from .status import HistoryEvent, InstanceStatus, Status

if TYPE_CHECKING:
    from rich.text import Text

    _ParamType = click.ParamType[Any]
else:
    _ParamType = click.ParamType  # generic only from click 8.4

# -- errors ----------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _failures() -> tuple[type[BaseException], ...]:
    """Exceptions reported as a one-line error with exit code 1."""
    kinds: list[type[BaseException]] = [TenutoError, ValueError, TypeError, ImportError]
    kinds.append(sqlite3.Error)
    for module, name in (("psycopg", "Error"), ("psycopg_pool", "PoolTimeout")):
        if module in sys.modules:  # only if the PostgreSQL store was used
            kinds.append(getattr(sys.modules[module], name))
    return tuple(kinds)


class _UsageError(click.UsageError):
    """A usage error shown on one line, with a pointer to the command's help."""

    def show(self, file: Any = None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {_one_line(self.format_message())}{hint}", err=True)


class _Cli(click.Group):
    """The ``tenuto`` group: turns every failure of a command into a one-line message on
    stderr and exit code 1, and usage errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if type(exc).show is not click.UsageError.show:  # e.g. "no arguments: help"
                raise
            raise _UsageError(exc.format_message(), exc.ctx or ctx) from None
        except click.ClickException:
            raise
        except _failures() as exc:
            if os.environ.get("TENUTO_DEBUG"):
                raise
            message = str(exc) or type(exc).__name__
            if isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("psycopg"):
                message = f"database error: {message}"
            raise click.ClickException(_one_line(message)) from None


# -- parameter types -------------------------------------------------------------------

_DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``2h``, ``1d``, ``1w`` or a combination such as ``1h30m``."""
    text = text.strip().lower()
    if not _DURATION_RE.match(text):
        raise ValueError(f"invalid duration {text!r}: write e.g. 90s, 30m, 2h, 1d or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long") from None


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or time (UTC unless it carries an offset), ``now``, or a time
    relative to now: ``+30m`` (in 30 minutes), ``-2h`` (2 hours ago)."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if value.lower() == "now":
        return now
    if value[:1] in "+-" and value[1:2].isdigit():
        delta = parse_duration(value[1:])
        try:
            return now + delta if value[0] == "+" else now - delta
        except OverflowError:
            raise ValueError(f"invalid time {text!r}: too far from now") from None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: use ISO 8601 (2024-05-01, 2024-05-01T09:30:00Z, "
            "2024-05-01T09:30+02:00), now, or a duration from now such as +30m or -2h"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class _When(_ParamType):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _Json(_ParamType):
    """A JSON value from the command line, or from stdin for ``-``."""

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        text = sys.stdin.read() if value == "-" else value
        try:
            return json.loads(text, parse_constant=_not_json)
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at position {exc.pos}"
        except ValueError as exc:
            problem = str(exc)
        source = "stdin" if value == "-" else repr(_short(value, 40))
        self.fail(
            f"{source} is not valid JSON ({problem}); "
            'quote strings as \'"text"\', e.g. \'{"volume": "vol-1"}\'',
            param,
            ctx,
        )


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


WHEN = _When()
JSON_VALUE = _Json()

# -- shared options --------------------------------------------------------------------

DB_OPTION = click.option(
    "--db",
    envvar="TENUTO_DB",
    show_envvar=True,
    default=None,
    metavar="URL",
    help="Database URL: sqlite:///path.db or postgresql://user@host/db "
    "[default: sqlite:///tenuto.db].",
)
JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (stable, for scripts) instead of a table."
)
REASON_OPTION = click.option("--reason", "-r", default=None, help="Why (recorded in the history).")
BY_OPTION = click.option(
    "--by", default=None, metavar="ACTOR", help="Who does it [default: user@host]."
)
ALL_OPTION = click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Act on every instance the filters select, instead of one ID.",
)


@dataclass(frozen=True)
class Filters:
    """The instance filters of ``list`` and of the ``--all`` forms."""

    status: tuple[str, ...] = ()
    name: str | None = None
    id_prefix: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    @property
    def given(self) -> bool:
        return any(
            (self.status, self.name, self.id_prefix, self.created_after, self.created_before)
        )

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Client.query`` and the ``*_many`` methods."""
        return {
            "status": list(self.status) or None,
            "name": self.name,
            "id_prefix": self.id_prefix,
            "created_from": self.created_after,
            "created_to": self.created_before,
        }


_FILTER_OPTIONS = [
    click.option(
        "--status",
        "-s",
        multiple=True,
        type=click.Choice([s.value for s in Status], case_sensitive=False),
        help="Only instances in this status (repeat for several; any case).",
    ),
    click.option("--name", "-n", default=None, help="Only instances of this orchestrator."),
    click.option("--id-prefix", default=None, help="Only instances whose id starts with this."),
    click.option(
        "--created-after", type=WHEN, default=None, help="Only instances created at or after."
    ),
    click.option(
        "--created-before", type=WHEN, default=None, help="Only instances created before."
    ),
]


def filter_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the filter options; the command receives them as ``flt: Filters``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flt = Filters(**{key: kwargs.pop(key) for key in Filters.__dataclass_fields__})
        return fn(*args, flt=flt, **kwargs)

    for option in reversed(_FILTER_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def _bulk(instance_id: str | None, all_: bool, flt: Filters, verb: str) -> bool:
    """Whether the command acts on many instances (``--all``) rather than one ID.

    One ID, or ``--all`` (with or without filters): never both, never neither, and
    filters never without ``--all``, so nothing acts on many instances by accident."""
    if instance_id is not None and all_:
        raise click.UsageError("give an instance ID or --all, not both")
    if flt.given and not all_:
        raise click.UsageError(
            "--status, --name, --id-prefix and --created-* select instances for --all: "
            f"add --all to {verb} every match, or drop them and give one ID"
        )
    if instance_id is None and not all_:
        raise click.UsageError(
            f"give the ID of the instance to {verb}, or --all (with filters such as "
            "--name or --status) to act on many"
        )
    return all_


# -- output ----------------------------------------------------------------------------

STATUS_STYLE = {
    Status.PENDING: "cyan",
    Status.RUNNING: "blue",
    Status.PAUSED: "bold yellow",
    Status.COMPLETED: "green",
    Status.FAILED: "bold red",
    Status.TERMINATED: "magenta",
}
PAUSE_STYLE = "yellow"


def _print(*renderables: Any) -> None:
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


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _text(value: Any, style: str = "") -> Text:
    """User data as rich text (never interpreted as markup)."""
    from rich.text import Text

    return Text("" if value is None else str(value), style=style)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(value: Any, limit: int = 80) -> str:
    """A JSON value on one line, cut at ``limit`` characters."""
    return _short(_compact(value), limit)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _time(when: datetime | None, ms: bool = False) -> str:
    if when is None:
        return ""
    text = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f" if ms else "%Y-%m-%d %H:%M:%S")
    return (text[:-3] if ms else text) + "Z"


def _duration(seconds: float) -> str:
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


def _since(when: datetime) -> float:
    return (datetime.now(UTC) - when).total_seconds()


def _ago(when: datetime) -> str:
    return f"{_duration(_since(when))} ago"


def _status_text(status: Status) -> Text:
    return _text(status.value, STATUS_STYLE[status])


def _show_status(st: InstanceStatus) -> None:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, Any]] = [
        ("Instance", _text(st.instance_id)),
        ("Name", _text(st.name)),
        ("Status", _status_text(st.runtime_status)),
    ]
    if st.pause is not None:
        rows += [
            ("Paused since", _text(f"{_time(st.pause.since)} ({_ago(st.pause.since)})")),
            ("Paused by", _text(st.pause.by if st.pause.source != "orchestration" else "itself")),
            ("Reason", _text(st.pause.reason or "(none given)")),
        ]
        if st.pause.resume_at is not None:
            rows.append(("Resumes at", _text(_time(st.pause.resume_at))))
    rows += [
        ("Created", _text(_time(st.created_at))),
        ("Updated", _text(_time(st.updated_at))),
    ]
    if st.completed_at is not None:
        rows.append(("Completed", _text(_time(st.completed_at))))
    if st.parent_instance_id is not None:
        rows.append(("Parent", _text(st.parent_instance_id)))
    rows.append(("Input", _text(_compact(st.input))))
    if st.output is not None or st.runtime_status is Status.COMPLETED:
        rows.append(("Output", _text(_compact(st.output))))
    if st.custom_status is not None:
        rows.append(("Custom status", _text(_compact(st.custom_status))))
    if st.failure is not None:
        rows.append(("Failure", _text(str(st.failure), "red")))
    for key, value in rows:
        grid.add_row(key, value)
    _print(grid)


def _show_list(items: list[InstanceStatus], next_cursor: str | None) -> None:
    from rich.table import Table

    if not items:
        _print(_text("No instances match."))
        return
    paused = any(st.pause is not None for st in items)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "Name", "Status", "Created", "Updated"):
        table.add_column(column, no_wrap=column != "Name")
    if paused:
        for column in ("Paused since", "By", "Reason"):
            table.add_column(column, style=PAUSE_STYLE, no_wrap=column != "Reason")
    for st in items:
        row = [
            _text(st.instance_id),
            _text(st.name),
            _status_text(st.runtime_status),
            _text(_time(st.created_at)),
            _text(_time(st.updated_at)),
        ]
        if paused:
            p = st.pause
            if p is None:
                row += [_text(""), _text(""), _text("")]
            else:
                reason = p.reason or ""
                if p.resume_at is not None:
                    reason = f"{reason} (resumes at {_time(p.resume_at)})".strip()
                by = "itself" if p.source == "orchestration" else p.by
                row += [_text(f"{_time(p.since)} ({_ago(p.since)})"), _text(by), _text(reason)]
        table.add_row(*row)
    count = _plural(len(items))
    if next_cursor:
        footer = f"{count} shown; more match. Next page: add --cursor {next_cursor}"
    else:
        footer = f"{count}."
    _print(table, _text(footer, "dim"))


def _failure_text(failure: Any) -> str:
    if isinstance(failure, dict):
        return f"{failure.get('type')}: {failure.get('message')}"
    return str(failure)


def _event_details(event: HistoryEvent, tasks: dict[Any, str]) -> str:
    """One line of what an event says, naming the task that a result belongs to."""
    d, kind = event.data, event.type
    task = tasks.get(d.get("task_id"), f"task {d.get('task_id')}")
    if kind == "ExecutionStarted":
        text = f"{d.get('name')}({_value(d.get('input'), 60)})"
        if d.get("generation"):
            text += f", generation {d['generation']}"
        if d.get("parent_instance_id"):
            text += f", child of {d['parent_instance_id']}"
        return text
    if kind == "TaskScheduled":
        tasks[d.get("task_id")] = str(d.get("name"))
        return f"activity {d.get('name')}({_value(d.get('input'), 60)})"
    if kind == "TaskCompleted":
        return f"{task} → {_value(d.get('result'))}"
    if kind in ("TaskFailed", "SubOrchestrationInstanceFailed"):
        attempts = d.get("attempts")
        tries = f" after {attempts} attempts" if attempts and attempts > 1 else ""
        return f"{task} failed{tries}: {_short(_failure_text(d.get('failure')), 100)}"
    if kind == "TimerCreated":
        tasks[d.get("task_id")] = "timer"
        return f"timer due at {_iso(d.get('fire_at'))}"
    if kind == "TimerFired":
        return f"timer due at {_iso(d.get('fire_at'))} fired"
    if kind == "SubOrchestrationInstanceCreated":
        tasks[d.get("task_id")] = f"sub-orchestration {d.get('name')}"
        return f"{d.get('name')}({_value(d.get('input'), 60)}) as instance {d.get('instance_id')}"
    if kind == "SubOrchestrationInstanceCompleted":
        return f"{task} → {_value(d.get('result'))}"
    if kind == "EventRaised":
        return f"{d.get('name')} = {_value(d.get('data'))}"
    if kind == "ExecutionSuspended":
        by = d.get("by")
        who = {"orchestration": "itself", "parent": f"with its parent, by {by}"}
        text = "paused " + who.get(str(d.get("source")), f"by {by}")
        if d.get("reason"):
            text += f": {d['reason']}"
        if d.get("resume_at"):
            text += f" (resumes at {_iso(d['resume_at'])})"
        return text
    if kind == "ExecutionResumed":
        return f"resumed by {d.get('by')}" + (f": {d['reason']}" if d.get("reason") else "")
    if kind == "ExecutionTerminated":
        return f"terminated by {d.get('by')}" + (f": {d['reason']}" if d.get("reason") else "")
    if kind == "ExecutionCompleted":
        if d.get("status") == "FAILED":
            return f"FAILED: {_short(_failure_text(d.get('failure')), 100)}"
        return f"{d.get('status', 'COMPLETED')} → {_value(d.get('result'))}"
    if kind == "ContinuedAsNew":
        return f"new input {_value(d.get('input'))}"
    return _value(d) if d else ""


def _iso(value: Any) -> str:
    try:
        return _time(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _show_history(events: list[HistoryEvent], verbose: bool) -> None:
    """A timeline; pause periods are marked with a bar (┏ ┃ ┗) and shaded."""
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("#", justify="right", style="dim")
    table.add_column("Time", no_wrap=True)
    table.add_column("Event", no_wrap=True)
    table.add_column("Details")
    tasks: dict[Any, str] = {}
    paused_since: datetime | None = None
    for event in events:
        details = _event_details(event, tasks)
        if event.type == "OrchestratorStarted" and not verbose:
            continue
        mark, style = "", ""
        if event.type == "ExecutionSuspended" and paused_since is None:
            paused_since, mark, style = event.timestamp, "┏", PAUSE_STYLE
        elif paused_since is not None and event.type in ("ExecutionResumed", "ExecutionTerminated"):
            held = (event.timestamp - paused_since).total_seconds()
            details += f" (paused for {_duration(held)})"
            paused_since, mark, style = None, "┗", PAUSE_STYLE
        elif paused_since is not None:
            mark, style = "┃", PAUSE_STYLE
        table.add_row(
            _text(mark, PAUSE_STYLE),
            _text(event.sequence),
            _text(_time(event.timestamp, ms=True)),
            _text(event.type, style or "bold"),
            _text(details),
            style=style,
        )
    if paused_since is not None:
        table.add_row(
            _text("┃", PAUSE_STYLE),
            _text(""),
            _text(""),
            _text("(paused)", PAUSE_STYLE),
            _text(f"still paused, for {_duration(_since(paused_since))}", PAUSE_STYLE),
        )
    _print(table)


def _plural(count: int, what: str = "instance") -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


# -- commands --------------------------------------------------------------------------


@click.group(
    cls=_Cli,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 success, 1 the operation failed (e.g. unknown id, finished "
    "instance), 2 invalid command line (e.g. bad JSON, date or status). "
    "Set TENUTO_DEBUG=1 to see tracebacks. Run 'tenuto COMMAND --help' for examples.",
)
@click.version_option(package_name="tenuto")
def main() -> None:
    """tenuto: durable orchestrations with first-class pause and resume.

    Every command takes --db URL (default $TENUTO_DB, then sqlite:///tenuto.db) and,
    where it prints something, --json for scripts.
    """


@main.command()
@click.argument("name")
@click.argument("input_json", metavar="[INPUT_JSON]", required=False, type=JSON_VALUE)
@click.option("--id", "instance_id", default=None, help="The instance id [default: random].")
@click.option("--start-at", type=WHEN, default=None, help="Delay the first step (ISO or +30m).")
@DB_OPTION
@JSON_OPTION
def start(
    name: str,
    input_json: Any,
    instance_id: str | None,
    start_at: datetime | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Start an instance of orchestrator NAME; prints its instance id.

    INPUT_JSON is the input as JSON (quote strings: '"vol-1"'); '-' reads it from stdin.

    \b
    Examples:
      tenuto start backup '"vol-1"'
      tenuto start billing '{"month": "2024-05"}' --id billing-2024-05
      tenuto start report --start-at +2h
      cat input.json | tenuto start audit -
    """
    with Client(db) as client:
        iid = client.start(name, input_json, instance_id=instance_id, start_at=start_at)
        if as_json:
            _print_json(client.status(iid).to_json())
        else:
            click.echo(iid)


@main.command()
@click.argument("instance_id", metavar="ID")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Wait up to SECONDS for the instance to finish, then show it (PAUSED is not finished).",
)
@DB_OPTION
@JSON_OPTION
def status(instance_id: str, wait: float | None, db: str | None, as_json: bool) -> None:
    """Show an instance: status, pause (reason, by, since), input, output, failure.

    \b
    Examples:
      tenuto status billing-2024-05
      tenuto status billing-2024-05 --wait 60 --json
    """
    with Client(db) as client:
        st = client.status(instance_id)
        if wait and not st.is_terminal:
            try:
                st = client.wait(instance_id, timeout=wait)
            except WaitTimeout:
                st = client.status(instance_id)
        if as_json:
            _print_json(st.to_json())
        else:
            _show_status(st)


@main.command("list")
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
def list_(flt: Filters, limit: int, cursor: str | None, db: str | None, as_json: bool) -> None:
    """List instances, newest first, a page at a time.

    Paused instances show since when, by whom and why. Times are ISO 8601 (UTC unless
    they carry an offset), 'now', or relative to now such as -2h.

    \b
    Examples:
      tenuto list --status paused
      tenuto list --name backup --status running --status pending
      tenuto list --created-after -1d --json
      tenuto list --cursor <next cursor of the previous page>
    """
    with Client(db) as client:
        page = client.query(**flt.kwargs(), limit=limit, cursor=cursor)
    if as_json:
        _print_json({"items": [st.to_json() for st in page.items], "next_cursor": page.next_cursor})
    else:
        _show_list(page.items, page.next_cursor)


@main.command()
@click.argument("instance_id", metavar="[ID]", required=False)
@ALL_OPTION
@filter_options
@REASON_OPTION
@click.option(
    "--resume-at",
    type=WHEN,
    default=None,
    help="Resume by itself at this time: ISO 8601, or from now such as +30m or +2h.",
)
@BY_OPTION
@DB_OPTION
@JSON_OPTION
def pause(
    instance_id: str | None,
    all_: bool,
    flt: Filters,
    reason: str | None,
    resume_at: datetime | None,
    by: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Pause an instance, or with --all every PENDING or RUNNING one the filters select.

    When this returns nothing more of the instance starts until it is resumed; work
    already running finishes and waits. Pausing a paused instance changes nothing.

    \b
    Examples:
      tenuto pause billing-2024-05 --reason "business hours" --resume-at +8h
      tenuto pause --all --name backup --reason "storage outage"
      tenuto pause --all --reason "incident 1234"      (every live instance)
    """
    with Client(db, actor=by) as client:
        if _bulk(instance_id, all_, flt, "pause"):
            count = client.pause_many(**flt.kwargs(), reason=reason, resume_at=resume_at)
            _report_count(count, "Paused", as_json)
            return
        assert instance_id is not None
        changed = client.pause(instance_id, reason, resume_at=resume_at)
        _report_change(client.status(instance_id), changed, "Paused", "already paused", as_json)


@main.command()
@click.argument("instance_id", metavar="[ID]", required=False)
@ALL_OPTION
@filter_options
@REASON_OPTION
@BY_OPTION
@DB_OPTION
@JSON_OPTION
def resume(
    instance_id: str | None,
    all_: bool,
    flt: Filters,
    reason: str | None,
    by: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Resume a paused instance, or with --all every PAUSED one the filters select.

    It continues exactly where it stopped. Resuming a running instance changes nothing.

    \b
    Examples:
      tenuto resume billing-2024-05 --reason "night window"
      tenuto resume --all --name backup --reason "storage is back"
    """
    with Client(db, actor=by) as client:
        if _bulk(instance_id, all_, flt, "resume"):
            _report_count(client.resume_many(**flt.kwargs(), reason=reason), "Resumed", as_json)
            return
        assert instance_id is not None
        changed = client.resume(instance_id, reason)
        _report_change(client.status(instance_id), changed, "Resumed", "not paused", as_json)


def _report_change(st: InstanceStatus, changed: bool, done: str, noop: str, as_json: bool) -> None:
    if as_json:
        _print_json({"changed": changed, "instance": st.to_json()})
    elif changed:
        click.echo(f"{done} {st.instance_id} (now {st.runtime_status.value}).")
    else:
        click.echo(f"{st.instance_id} was {noop}; nothing changed ({st.runtime_status.value}).")


def _report_count(count: int, done: str, as_json: bool) -> None:
    if as_json:
        _print_json({"count": count})
    else:
        click.echo(f"{done} {_plural(count)}.")


@main.command()
@click.argument("instance_id", metavar="ID")
@REASON_OPTION
@click.option(
    "--recursive/--no-recursive",
    default=True,
    show_default=True,
    help="Also terminate its live sub-orchestrations.",
)
@BY_OPTION
@DB_OPTION
@JSON_OPTION
def terminate(
    instance_id: str,
    reason: str | None,
    recursive: bool,
    by: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """End a live instance (paused ones too) as TERMINATED.

    \b
    Example:
      tenuto terminate billing-2024-05 --reason obsolete
    """
    with Client(db, actor=by) as client:
        client.terminate(instance_id, reason, recursive=recursive)
        st = client.status(instance_id)
    if as_json:
        _print_json(st.to_json())
    else:
        click.echo(f"Terminated {instance_id}.")


@main.command("raise")
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
    with Client(db) as client:
        client.raise_event(instance_id, event, data)
    if as_json:
        _print_json({"instance_id": instance_id, "event": event, "data": data})
    else:
        click.echo(f"Raised event {event!r} on {instance_id}.")


@main.command()
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
    with Client(db) as client:
        events = client.history(instance_id)
    if as_json:
        _print_json({"instance_id": instance_id, "events": [e.to_json() for e in events]})
    else:
        _show_history(events, verbose)


@main.command()
@click.argument("instance_id", metavar="[ID]", required=False)
@ALL_OPTION
@filter_options
@DB_OPTION
@JSON_OPTION
def purge(instance_id: str | None, all_: bool, flt: Filters, db: str | None, as_json: bool) -> None:
    """Delete a finished instance and its history, or with --all every finished
    (COMPLETED, FAILED, TERMINATED) one the filters select.

    \b
    Examples:
      tenuto purge billing-2024-05
      tenuto purge --all --status completed --created-before -30d
    """
    with Client(db) as client:
        if _bulk(instance_id, all_, flt, "purge"):
            count = client.purge_many(**flt.kwargs())
        else:
            assert instance_id is not None
            client.purge(instance_id)
            count = 1
    _report_count(count, "Purged", as_json)


# -- running ---------------------------------------------------------------------------


def load_app(spec: str) -> App:
    """Import ``module:attribute`` (or ``path/to/file.py:attribute``) and return the App."""
    module_name, _, attr = spec.partition(":")
    attr = attr or "app"
    if module_name.endswith(".py"):
        directory, filename = os.path.split(os.path.abspath(module_name))
        sys.path.insert(0, directory)
        module_name = filename[:-3]
    elif os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise click.BadParameter(f"{module_name}:{attr} is not a tenuto.App")
    return app


def _logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        from .tracking import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("tenuto")
    root.addHandler(handler)
    root.setLevel(level.upper())


LOG_LEVEL_OPTION = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
    default="info",
    show_default=True,
)
LOG_FORMAT_OPTION = click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)


@main.command()
@click.argument("app_spec", metavar="MODULE:APP")
@DB_OPTION
@click.option("--concurrency", default=32, show_default=True, help="Activities running at once.")
@click.option(
    "--lease-seconds",
    default=30.0,
    show_default=True,
    help="How long a dead worker's activities stay claimed.",
)
@LOG_LEVEL_OPTION
@LOG_FORMAT_OPTION
def worker(
    app_spec: str,
    db: str | None,
    concurrency: int,
    lease_seconds: float,
    log_level: str,
    log_format: str,
) -> None:
    """Run a worker for the orchestrators and activities of MODULE:APP.

    Run as many as you like on a shared PostgreSQL database; stop with Ctrl-C or SIGTERM
    (running activities finish first).

    \b
    Example:
      tenuto worker myproject.flows:app --db postgresql://tenuto@db/tenuto
    """
    from .worker import Worker

    _logging(log_level, log_format)
    app = load_app(app_spec)
    Worker(app, db, concurrency=concurrency, lease_seconds=lease_seconds).run()


@main.command()
@click.argument("app_spec", metavar="[MODULE:APP]", required=False)
@DB_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--no-worker", is_flag=True, help="Serve the HTTP API only; run no worker.")
@click.option(
    "--token",
    "tokens",
    multiple=True,
    envvar="TENUTO_TOKEN",
    show_envvar=True,
    metavar="NAME=SECRET",
    help="Require 'Authorization: Bearer SECRET'; NAME is recorded as the actor. Repeat "
    "for several (the environment variable takes them comma-separated).",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=1),
    default=None,
    metavar="BYTES",
    help="Largest request body accepted [default: 1 MiB].",
)
@click.option("--concurrency", default=32, show_default=True, help="Activities running at once.")
@LOG_LEVEL_OPTION
@LOG_FORMAT_OPTION
def serve(
    app_spec: str | None,
    db: str | None,
    host: str,
    port: int,
    no_worker: bool,
    tokens: tuple[str, ...],
    max_body: int | None,
    concurrency: int,
    log_level: str,
    log_format: str,
) -> None:
    """Serve the HTTP API (/api/, Durable Functions routes, metrics, dashboard) and run a
    worker for MODULE:APP, in one process.

    Listens on 127.0.0.1 unless --host says otherwise; use --token when it is reachable
    from other machines.

    \b
    Examples:
      tenuto serve myproject.flows:app
      tenuto serve myproject.flows:app --host 0.0.0.0 --token ops=s3cret
      tenuto serve --no-worker --db postgresql://tenuto@db/tenuto --port 9000
    """
    from . import http

    if app_spec is None and not no_worker:
        raise click.UsageError("give MODULE:APP to run a worker, or --no-worker to serve the API")
    try:
        parsed = http.parse_tokens(list(tokens))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--token'") from None
    _logging(log_level, log_format)
    app = load_app(app_spec) if app_spec is not None else None
    if not parsed and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"Warning: serving on {host} without --token: anyone who can reach it can "
            "control every instance",
            err=True,
        )
    options: dict[str, Any] = {} if max_body is None else {"max_body": max_body}
    http.serve(
        app,
        db,
        host=host,
        port=port,
        tokens=parsed,
        worker=not no_worker,
        worker_options={"concurrency": concurrency},
        log_level=log_level.lower(),
        **options,
    )
