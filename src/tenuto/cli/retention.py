"""``tenuto retention show|set|clear``: the retention policy stored in the database."""

from __future__ import annotations

import click

from ..client import Client
from ..retention import Retention
from .params import DB_OPTION, JSON_OPTION
from .render import print_json, print_rich, table


@click.group()
def retention() -> None:
    """How long finished instances are kept (the policy every worker applies).

    A policy stored here wins over each worker's own (tenuto worker/serve --retain,
    App(retention=...)); with none stored, each worker applies its own. Every
    subcommand takes --db URL.

    \b
    Examples:
      tenuto retention set COMPLETED=30d,FAILED=90d --db postgresql://tenuto@db/tenuto
      tenuto retention show
    """


def _rules(policy: Retention) -> list[dict[str, object]]:
    return [
        {
            "status": r.status.value,
            "orchestrator": r.orchestrator,
            "keep_seconds": r.keep.total_seconds(),
            "keep": str(r).rsplit("=", 1)[1],
        }
        for r in policy.rules
    ]


@retention.command()
@DB_OPTION
@JSON_OPTION
def show(db: str | None, as_json: bool) -> None:
    """Show the stored retention policy.

    \b
    Example:
      tenuto retention show --db postgresql://tenuto@db/tenuto
    """
    with Client(db) as client:
        policy = client.retention()
    if as_json:
        print_json(
            None
            if policy is None
            else {"rules": _rules(policy), "export_to": policy.export_to, "source": "stored"}
        )
        return
    if policy is None:
        click.echo(
            "No retention policy is stored: each worker applies its own (--retain, "
            "App(retention=...)), and without one keeps every instance."
        )
        return
    t = table("orchestrator", "status", "kept for")
    for rule in _rules(policy):
        t.add_row(str(rule["orchestrator"] or "(any)"), str(rule["status"]), str(rule["keep"]))
    print_rich(t)
    click.echo(f"Stored in the database: it rules every worker. Policy: {policy}")
    if policy.export_to:
        click.echo(f"Purged instances are exported first to {policy.export_to}")


@retention.command(name="set")
@click.argument("spec", metavar="RULES")
@click.option(
    "--export-to",
    default=None,
    metavar="FOLDER",
    help="Append each purged instance to a JSON Lines file in FOLDER (on each worker's "
    "host) before it is deleted.",
)
@DB_OPTION
def set_(spec: str, export_to: str | None, db: str | None) -> None:
    """Store a retention policy for every worker of the database.

    RULES: STATUS=DURATION or ORCHESTRATOR:STATUS=DURATION, comma-separated, for the
    final statuses COMPLETED, FAILED and TERMINATED (durations such as 12h, 30d, 2w).

    \b
    Examples:
      tenuto retention set COMPLETED=30d,FAILED=90d,TERMINATED=30d
      tenuto retention set COMPLETED=30d,nightly:COMPLETED=7d --export-to /var/tenuto/purged
    """
    try:
        policy = Retention.parse(spec, export_to)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'RULES'") from None
    with Client(db) as client:
        client.set_retention(policy)
    click.echo(f"Stored retention policy {policy}")


@retention.command()
@DB_OPTION
def clear(db: str | None) -> None:
    """Remove the stored policy (each worker then applies its own)."""
    with Client(db) as client:
        client.set_retention(None)
    click.echo("Removed the stored retention policy")


COMMANDS = [retention]
