"""The ``tenuto`` command line.

Every command works on the database named by ``--db`` (default ``$TENUTO_DB``, then
``sqlite:///tenuto.db``) through :class:`tenuto.Client`, prints tables for people and
JSON with ``--json``, and fails with a one-line message on stderr:

* exit 1: the operation failed (unknown id, finished instance, unknown orchestrator,
  invalid cursor or value, database unreachable, a port in use, ...): every tenuto
  error (a value tenuto refused is a :class:`~tenuto.ValidationError`), a database
  error, and ``OSError``;
* exit 2: the command line is wrong (unknown option, malformed JSON, date, duration or
  status name, an ID together with ``--all``, ...);
* exit 70 (``EX_SOFTWARE``): an internal error, a bug in tenuto rather than a mistake in
  the command: any other exception, a plain ``ValueError`` or ``TypeError`` included. Its
  traceback is printed, then one line saying so.

Set ``TENUTO_DEBUG=1`` (or pass ``--debug``: ``tenuto --debug worker app:app``) to see
the traceback instead of the one-line message; that includes an app module that fails to
import (otherwise one line: the error, and the file and line where it happened).

The modules: :mod:`.params` reads the command line, :mod:`.render` and
:mod:`.timeline` print, and the commands are in :mod:`.instances` (start, status,
list, terminate, raise, history, purge), :mod:`.pausing` (pause, resume, pauses) and
:mod:`.serving` (worker, serve), :mod:`.retention` (retention show|set|clear),
:mod:`.transfer` (export, import), :mod:`.events` (events) and :mod:`.entities`
(entity get|list|signal|clean).
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from ..errors import TenutoError
from ..store import is_database_error
from . import (
    checking,
    entities,
    events,
    instances,
    limits,
    pausing,
    rerun,
    retention,
    schedules,
    serving,
    transfer,
    work,
)
from .params import parse_duration, parse_when
from .serving import load_app

__all__ = ["load_app", "main", "parse_duration", "parse_when"]


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


#: Exceptions reported as a one-line error with exit code 1, with database errors.
_FAILURES = (TenutoError, ImportError, OSError)
#: The exit code of an internal error (sysexits.h's EX_SOFTWARE).
INTERNAL_ERROR = 70


def _failed(exc: Exception) -> bool:
    """Whether ``exc`` is a failure of the operation (exit code 1)."""
    return isinstance(exc, _FAILURES) or is_database_error(exc)


def _debug(on: bool) -> None:
    if on:
        os.environ["TENUTO_DEBUG"] = "1"


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
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("TENUTO_DEBUG"):
                raise
            if not _failed(exc):
                raise _InternalError(exc) from exc
            message = str(exc) or type(exc).__name__
            if is_database_error(exc):
                message = f"database error: {message}"
            raise click.ClickException(_one_line(message)) from None


class _InternalError(click.ClickException):
    """An exception no command expects: a bug. Shown with its traceback, then one line
    that says so, with exit code :data:`INTERNAL_ERROR`."""

    exit_code = INTERNAL_ERROR

    def __init__(self, exc: Exception) -> None:
        super().__init__(
            f"internal error (a bug in tenuto, not in the command): {type(exc).__name__}: "
            f"{_one_line(str(exc))}; please report it with the traceback above"
        )
        self.exc = exc

    def show(self, file: Any = None) -> None:
        traceback.print_exception(self.exc, file=sys.stderr)
        click.echo(f"Error: {self.format_message()}", err=True)


@click.group(
    cls=_Cli,
    commands=[
        *instances.COMMANDS,
        *pausing.COMMANDS,
        *serving.COMMANDS,
        *retention.COMMANDS,
        *transfer.COMMANDS,
        *checking.COMMANDS,
        *rerun.COMMANDS,
        *events.COMMANDS,
        *schedules.COMMANDS,
        *limits.COMMANDS,
        *work.COMMANDS,
        *entities.COMMANDS,
    ],
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 success, 1 the operation failed (e.g. unknown id, finished "
    "instance, invalid value), 2 invalid command line (e.g. bad JSON, date or status), "
    "70 internal error (a bug in tenuto). "
    "Set TENUTO_DEBUG=1 or pass --debug to see tracebacks. "
    "Run 'tenuto COMMAND --help' for examples.",
)
@click.version_option(package_name="tenuto")
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, param, value: _debug(value),
    help="Show tracebacks instead of one-line errors (the same as TENUTO_DEBUG=1).",
)
def main() -> None:
    """tenuto: durable orchestrations with first-class pause and resume.

    Every command takes --db URL (default $TENUTO_DB, then sqlite:///tenuto.db) and,
    where it prints something, --json for scripts.
    """
