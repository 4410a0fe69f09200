"""Safety on commands that act on many instances (``--all``): ``--dry-run`` shows how
many would change and the first few, and changes nothing; on a terminal, without
``--yes``, the command asks first, showing the count."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from ..client import Client
from ..filters import Filter
from .render import plural, print_json

#: How many ids a preview lists.
SAMPLE = 5


def bulk_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--dry-run`` and ``--yes`` (passed as ``dry_run`` and ``yes``)."""
    fn = click.option(
        "--yes",
        "-y",
        is_flag=True,
        help="With --all: do not ask for confirmation on a terminal.",
    )(fn)
    return click.option(
        "--dry-run",
        is_flag=True,
        help="With --all: show how many instances would change, and the first few; change nothing.",
    )(fn)


def check_bulk_flags(all_: bool, dry_run: bool, yes: bool) -> None:
    """``--dry-run`` and ``--yes`` go with ``--all``."""
    if (dry_run or yes) and not all_:
        flag = "--dry-run" if dry_run else "--yes"
        raise click.UsageError(f"{flag} goes with --all (one instance needs neither)")


def go_ahead(
    client: Client, action: str, flt: Filter, *, dry_run: bool, yes: bool, as_json: bool
) -> bool:
    """Whether the bulk ``action`` on ``flt`` should run: not on a dry run (the preview
    is printed instead), and on a terminal only once confirmed (unless ``yes``)."""
    if not dry_run and (yes or not sys.stdin.isatty()):
        return True
    preview = client.preview_many(action, flt, sample=SAMPLE)
    if dry_run:
        if as_json:
            print_json({"dry_run": True, **preview.to_json()})
        else:
            click.echo(f"Would {action} {plural(preview.count)}{_first(preview.sample)}.")
            click.echo("Dry run: nothing changed.")
        return False
    if preview.count == 0:
        return True  # nothing to confirm: the command reports 0
    question = f"{action.capitalize()} {plural(preview.count)}{_first(preview.sample)}?"
    click.confirm(question, abort=True, err=True)
    return True


def _first(sample: tuple[str, ...]) -> str:
    return f" (first: {', '.join(sample)})" if sample else ""
