"""``tenuto export`` and ``tenuto import``: instances with their histories, to a file and
back (for archives, and for moving from one store to another)."""

from __future__ import annotations

import sys
import time

import click

from .. import export as ex
from ..status import Status, to_timestamp
from ..store import open_store
from .params import DB_OPTION, WHEN


@click.command(name="export")
@click.option(
    "--status",
    "-s",
    multiple=True,
    type=click.Choice([s.value for s in Status], case_sensitive=False),
    help="Only instances in this status (repeat for several).",
)
@click.option("--name", "-n", default=None, help="Only instances of this orchestrator.")
@click.option("--since", type=WHEN, default=None, help="Only instances created at or after.")
@click.option("--until", type=WHEN, default=None, help="Only instances created before.")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="FILE",
    help="Where to write ('-': standard output, JSON Lines only).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "parquet"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines (one instance per line), or Parquet (needs pyarrow).",
)
@DB_OPTION
def export_(
    status: tuple[str, ...],
    name: str | None,
    since: object,
    until: object,
    to: str,
    fmt: str,
    db: str | None,
) -> None:
    """Write instances, with their status, input, output and full history, to FILE.

    \b
    Examples:
      tenuto export --status completed --since -30d --to done.jsonl
      tenuto export --name backup --to backup.parquet --format parquet
    """
    flt = ex.ExportFilter(
        statuses=tuple(Status(s.upper()) for s in status),
        name=name,
        since=None if since is None else to_timestamp(since),  # type: ignore[arg-type]
        until=None if until is None else to_timestamp(until),  # type: ignore[arg-type]
    )
    if fmt == "parquet" and to == "-":
        raise click.BadParameter("Parquet needs a file: give --to FILE", param_hint="'--to'")
    store = open_store(db)
    try:
        lines = ex.export_lines(store, flt)
        if fmt == "parquet":
            count = ex.write_parquet(to, lines)
        elif to == "-":
            count = ex.write_jsonl(sys.stdout, lines)
        else:
            with open(to, "w", encoding="utf-8") as out:
                count = ex.write_jsonl(out, lines)
    finally:
        store.close()
    if to != "-":
        click.echo(f"Exported {count} instance{'s' if count != 1 else ''} to {to}")


@click.command(name="import")
@click.argument("path", metavar="FILE")
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Keep instances whose id the store holds already, and skip them in FILE "
    "(default: refuse the import, writing nothing).",
)
@DB_OPTION
def import_(path: str, skip_existing: bool, db: str | None) -> None:
    """Load an export (JSON Lines, or Parquet by its .parquet name) into the store,
    keeping ids, histories and pauses.

    Unfinished instances come in PAUSED, so that nothing runs in two stores at once: a
    PAUSED one keeps its pause, a PENDING or RUNNING one gets a pause of its own
    (source "import"): resume them once the old store is stopped.

    \b
    Example (SQLite to PostgreSQL):
      tenuto export --db sqlite:///tenuto.db --to all.jsonl
      tenuto import all.jsonl --db postgresql://tenuto@db/tenuto
    """
    store = open_store(db)
    try:
        if not skip_existing:
            taken = ex.taken_ids(store, ex.read_records(path))
            if taken:
                more = f" and {len(taken) - 3} more" if len(taken) > 3 else ""
                raise click.ClickException(
                    f"{len(taken)} instance id(s) of {path} exist in the store already "
                    f"({', '.join(repr(t) for t in taken[:3])}{more}); nothing was imported. "
                    "Purge them, import into another store, or pass --skip-existing to keep "
                    "the stored ones"
                )
        count = ex.import_records(
            store, ex.read_records(path), now=time.time(), skip_existing=skip_existing
        )
    finally:
        store.close()
    click.echo(f"Imported {count} instance{'s' if count != 1 else ''} from {path}")


COMMANDS = [export_, import_]
