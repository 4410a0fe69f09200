"""Reading the command line: times, durations and JSON values, the options that many
commands share, the instance filters, and which target a command acts on."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from .. import _json
from ..errors import InvalidJSON, ValidationError
from ..filters import Filter
from ..status import Status
from .render import short

if TYPE_CHECKING:
    _ParamType = click.ParamType[Any]
else:
    _ParamType = click.ParamType  # generic only from click 8.4

# -- times and durations ---------------------------------------------------------------

_DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``2h``, ``1d``, ``1w`` or a combination such as ``1h30m``."""
    text = text.strip().lower()
    if not _DURATION_RE.match(text):
        raise ValidationError(f"invalid duration {text!r}: write e.g. 90s, 30m, 2h, 1d or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValidationError(f"invalid duration {text!r}: too long") from None


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
            raise ValidationError(f"invalid time {text!r}: too far from now") from None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
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
        except ValidationError as exc:
            self.fail(str(exc), param, ctx)


# -- JSON values -----------------------------------------------------------------------


class _Json(_ParamType):
    """A JSON value from the command line, or from stdin for ``-``."""

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        text = sys.stdin.read() if value == "-" else value
        source = "stdin" if value == "-" else repr(short(value, 40))
        try:
            return _json.parse(text, source)
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at position {exc.pos}"
        except InvalidJSON as exc:
            self.fail(str(exc), param, ctx)
        self.fail(
            f"{source} is not valid JSON ({problem}); "
            'quote strings as \'"text"\', e.g. \'{"volume": "vol-1"}\'',
            param,
            ctx,
        )


class _Tag(_ParamType):
    """A ``KEY=VALUE`` tag."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        key, sep, tag_value = str(value).partition("=")
        if not sep or not key:
            self.fail(f"invalid tag {short(str(value), 40)!r}: write KEY=VALUE", param, ctx)
        return key, tag_value


WHEN = _When()
JSON_VALUE = _Json()
TAG = _Tag()

# -- shared options --------------------------------------------------------------------


def _db_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter(
            "the database URL is empty: give one (sqlite:///tenuto.db, "
            "postgresql://user@host/dbname) or leave --db out"
        )
    return value


DB_OPTION = click.option(
    "--db",
    envvar="TENUTO_DB",
    show_envvar=True,
    default=None,
    callback=_db_url,
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

# -- instance filters ------------------------------------------------------------------


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
    """Add the filter options; the command receives them as ``flt``, a
    :class:`tenuto.Filter` (a bad value is refused, exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flt = Filter(
            status=kwargs.pop("status") or None,
            name=kwargs.pop("name"),
            id_prefix=kwargs.pop("id_prefix"),
            created_from=kwargs.pop("created_after"),
            created_to=kwargs.pop("created_before"),
        )
        return fn(*args, flt=flt, **kwargs)

    for option in reversed(_FILTER_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


# -- what a command acts on ------------------------------------------------------------

_FILTER_NAMES = "--status, --name, --id-prefix and --created-*"


def acts_on_many(
    instance_id: str | None, all_: bool, flt: Filter, verb: str, *, types: bool = False
) -> bool:
    """Whether the command acts on many instances (``--all``) rather than one ID.

    One ID, or ``--all`` (with or without filters): never both, never neither, and
    filters never without ``--all``, so nothing acts on many instances by accident.
    ``types`` says whether the command also has ``--orchestrator`` and ``--activity``
    (for the hint when no target is given)."""
    if instance_id is not None and all_:
        raise click.UsageError("give an instance ID or --all, not both")
    if flt.given and not all_:
        raise click.UsageError(
            f"{_FILTER_NAMES} select instances for --all: "
            f"add --all to {verb} every match, or drop them and give one ID"
        )
    if instance_id is None and not all_:
        more = ", or --orchestrator NAME or --activity NAME for a whole type" if types else ""
        raise click.UsageError(
            f"give the ID of the instance to {verb}, or --all (with filters such as "
            f"--name or --status) to act on many{more}"
        )
    return all_


def type_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--orchestrator NAME``, ``--activity NAME`` and ``--entity-type NAME``: a
    whole type as the target (a standing pause), instead of instances."""
    fn = click.option(
        "--entity-type",
        default=None,
        metavar="NAME",
        help="Every entity of NAME, including those created meanwhile (a standing pause).",
    )(fn)
    fn = click.option(
        "--activity",
        default=None,
        metavar="NAME",
        help="Every execution of activity NAME, in every orchestration (a standing pause).",
    )(fn)
    return click.option(
        "--orchestrator",
        default=None,
        metavar="NAME",
        help="Every instance of orchestrator NAME, including those started meanwhile "
        "(a standing pause).",
    )(fn)


#: The option that names each kind of type.
_TYPE_OPTIONS = {
    "orchestrator": "--orchestrator",
    "activity": "--activity",
    "entity": "--entity-type",
}


def type_target(
    instance_id: str | None,
    all_: bool,
    flt: Filter,
    orchestrator: str | None,
    activity: str | None,
    entity_type: str | None = None,
) -> tuple[str, str] | None:
    """``(kind, name)`` when the command acts on a whole orchestrator or activity type
    (``--orchestrator NAME`` or ``--activity NAME``), ``None`` when it acts on instances.

    A type is a target of its own: never together with the other type option, an
    instance ID, ``--all`` or the instance filters."""
    given = [
        (kind, name)
        for kind, name in (
            ("orchestrator", orchestrator),
            ("activity", activity),
            ("entity", entity_type),
        )
        if name is not None
    ]
    if not given:
        return None
    options = [_TYPE_OPTIONS[kind] for kind, _ in given]
    if len(given) > 1:
        raise click.UsageError(f"give {' or '.join(options)}, not both")
    [(kind, name)], [option] = given, options
    if not name.strip():
        raise click.UsageError(f"{option} needs the name of an {kind}")
    if instance_id is not None:
        raise click.UsageError(
            f"give an instance ID or {option}, not both: {option} {name} acts on the whole type"
        )
    if all_ or flt.given:
        raise click.UsageError(
            f"{option} acts on the whole type; it takes neither --all nor {_FILTER_NAMES} "
            "(those select instances)"
        )
    return kind, name
