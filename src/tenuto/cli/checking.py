"""Commands that check code against stored histories: ``tenuto replay-check``."""

from __future__ import annotations

import sys

import click

from ..client import Client
from ..replay_check import ReplayResult, replay_check
from ..status import Status
from .params import DB_OPTION, JSON_OPTION
from .render import plural, print_json, print_rich, status_text, table, text
from .serving import load_app


@click.command("replay-check")
@click.argument("app_spec", metavar="MODULE:APP")
@click.option(
    "--status",
    "-s",
    multiple=True,
    type=click.Choice([s.value for s in Status], case_sensitive=False),
    help="Only instances in this status (repeat for several) [default: PENDING, RUNNING "
    "and PAUSED].",
)
@click.option("--name", "-n", default=None, help="Only instances of this orchestrator.")
@click.option(
    "--id",
    "ids",
    multiple=True,
    metavar="ID",
    help="Only this instance, whatever its status (repeat for several).",
)
@DB_OPTION
@JSON_OPTION
def replay_check_command(
    app_spec: str,
    status: tuple[str, ...],
    name: str | None,
    ids: tuple[str, ...],
    db: str | None,
    as_json: bool,
) -> None:
    """Check that the code in MODULE:APP still matches the instances' histories.

    Replays the stored history of every matching instance (by default the unfinished
    instances of the app's orchestrators) against the code, changing nothing, and names
    each instance whose history the code no longer matches, with the mismatch: a worker
    running this code would pause it. Run it before resuming instances paused by a
    mismatch, and before deploying a change. Exit code 0 when all replay, 1 when any
    does not.

    \b
    Examples:
      tenuto replay-check orders:app
      tenuto replay-check orders:app --status PAUSED --json
      tenuto replay-check orders:app --id order-17
    """
    app = load_app(app_spec)
    with Client(db, check_names=False) as client:
        results = replay_check(
            app, client, status=list(status) or None, name=name, ids=list(ids) or None
        )
    bad = [r for r in results if not r.ok]
    if as_json:
        print_json(
            {
                "checked": len(results),
                "ok": not bad,
                "incompatible": [r.to_json() for r in bad],
            }
        )
    else:
        _report(app_spec, results, bad)
    sys.exit(1 if bad else 0)


def _report(app_spec: str, results: list[ReplayResult], bad: list[ReplayResult]) -> None:
    if not bad:
        click.echo(f"{app_spec} replays all {plural(len(results))} checked.")
        return
    click.echo(f"{app_spec} does not replay {len(bad)} of {plural(len(results))} checked;")
    click.echo(f"a worker running it would pause {'it' if len(bad) == 1 else 'them'}:")
    grid = table("Instance", "Status", "Mismatch", no_wrap=("Instance",))
    for r in bad:
        assert r.status is not None
        grid.add_row(text(r.instance_id), status_text(r.status), text(r.problem or ""))
    print_rich(grid)


COMMANDS = [replay_check_command]
