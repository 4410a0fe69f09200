"""``tenuto entity get|list|signal|clean``: durable entities. Pausing one is ``tenuto
pause @name@key``; every entity of a name, ``tenuto pause --entity-type NAME``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..client import Client
from ..entities import EntityState
from .params import DB_OPTION, JSON_OPTION, JSON_VALUE, WHEN
from .render import print_json, print_rich, since_text, table, text, time_text, value_text


@click.group()
def entity() -> None:
    """Durable entities: read, list, signal and clean them.

    An entity is written @name@key (@counter@user-42). Pause one with
    'tenuto pause @name@key', every entity of a name with
    'tenuto pause --entity-type NAME'. Every subcommand takes --db URL.

    \b
    Examples:
      tenuto entity get @counter@user-42
      tenuto entity list --name counter --key-prefix user-
      tenuto entity signal @counter@user-42 add 5
      tenuto entity clean
    """


@entity.command()
@click.argument("entity_id", metavar="@NAME@KEY")
@DB_OPTION
@JSON_OPTION
def get(entity_id: str, db: str | None, as_json: bool) -> None:
    """Show an entity: its state, lock holder, queued operations and pause.

    \b
    Example:
      tenuto entity get @counter@user-42
    """
    with Client(db) as client:
        st = client.get_entity(entity_id)
    if st is None:
        raise click.ClickException(f"no entity {entity_id}")
    if as_json:
        print_json(st.to_json())
        return
    rows = table("", "", no_wrap=[""])
    rows.add_row(text("Entity", "bold"), text(str(st.entity_id)))
    rows.add_row(
        text("State", "bold"), text(value_text(st.state, 2000) if st.has_state else "(none)")
    )
    rows.add_row(text("Last modified", "bold"), text(since_text(st.last_modified)))
    rows.add_row(text("Locked by", "bold"), text(st.locked_by or "-"))
    rows.add_row(text("Queued operations", "bold"), text(st.pending_operations))
    if st.pause is not None:
        rows.add_row(text("Paused", "bold"), text(_pause_text(st), "yellow"))
    print_rich(rows)


@entity.command(name="list")
@click.option("--name", default=None, metavar="NAME", help="Only entities of this name.")
@click.option("--key-prefix", default=None, metavar="TEXT", help="Only keys starting so.")
@click.option("--modified-from", type=WHEN, default=None, help="Last modified at or after.")
@click.option("--modified-to", type=WHEN, default=None, help="Last modified before.")
@click.option("--no-state", is_flag=True, help="Leave the states out.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--cursor", default=None, help="The next page: the cursor a list printed.")
@DB_OPTION
@JSON_OPTION
def list_(
    name: str | None,
    key_prefix: str | None,
    modified_from: datetime | None,
    modified_to: datetime | None,
    no_state: bool,
    limit: int,
    cursor: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """List entities in id order, a page at a time.

    \b
    Examples:
      tenuto entity list --name counter
      tenuto entity list --key-prefix user- --modified-from -1h --json
    """
    with Client(db) as client:
        page = client.query_entities(
            name,
            key_prefix=key_prefix,
            last_modified_from=modified_from,
            last_modified_to=modified_to,
            include_state=not no_state,
            limit=limit,
            cursor=cursor,
        )
    if as_json:
        print_json({"items": [s.to_json() for s in page.items], "next_cursor": page.next_cursor})
        return
    if not page.items:
        click.echo("No entities.")
        return
    rows = table("ENTITY", "STATE", "MODIFIED", "LOCKED BY", "QUEUED", no_wrap=["ENTITY"])
    for st in page.items:
        state = "" if no_state else value_text(st.state, 40) if st.has_state else "(none)"
        paused = " (paused)" if st.pause is not None else ""
        rows.add_row(
            text(str(st.entity_id)),
            text(state),
            text(time_text(st.last_modified)),
            text(st.locked_by or ""),
            text(f"{st.pending_operations}{paused}", "yellow" if paused else ""),
        )
    print_rich(rows)
    if page.next_cursor:
        click.echo(f"More: tenuto entity list --cursor {page.next_cursor}")


@entity.command()
@click.argument("entity_id", metavar="@NAME@KEY")
@click.argument("operation")
@click.argument("input", type=JSON_VALUE, required=False, default=None, metavar="[INPUT_JSON]")
@click.option("--at", type=WHEN, default=None, help="Apply it then: ISO 8601 or +30m.")
@DB_OPTION
@JSON_OPTION
def signal(
    entity_id: str,
    operation: str,
    input: Any,
    at: datetime | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Send an entity a one-way operation (its input is a JSON value).

    \b
    Examples:
      tenuto entity signal @counter@user-42 add 5
      tenuto entity signal @journal@ops append '"restart"' --at +10m
    """
    with Client(db) as client:
        client.signal_entity(entity_id, operation, input, signal_time=at)
    if as_json:
        print_json({"signalled": entity_id, "operation": operation})
    else:
        when = f" (applied at {time_text(at)})" if at is not None else ""
        click.echo(f"Signalled {operation} to {entity_id}{when}.")


@entity.command()
@DB_OPTION
@JSON_OPTION
def clean(db: str | None, as_json: bool) -> None:
    """Release locks of orchestrations that are gone; remove entities that hold nothing.

    \b
    Example:
      tenuto entity clean
    """
    with Client(db) as client:
        done = client.clean_entity_storage()
    if as_json:
        print_json({"removed": done.removed, "released_locks": done.released_locks})
    else:
        click.echo(f"Removed {done.removed} empty entities; released {done.released_locks} locks.")


def _pause_text(st: EntityState) -> str:
    assert st.pause is not None
    of = " (standing pause of its type)" if st.pause.source == "entity" else ""
    why = f": {st.pause.reason}" if st.pause.reason else ""
    return f"since {time_text(st.pause.since)} by {st.pause.by or '?'}{of}{why}"


COMMANDS = [entity]
