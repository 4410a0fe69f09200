"""Running finished instances again: ``tenuto rewind`` (a failed one, from before its
failure) and ``tenuto restart`` (a finished one, from the beginning)."""

from __future__ import annotations

import click

from ..client import Client
from .params import BY_OPTION, DB_OPTION, JSON_OPTION, REASON_OPTION
from .render import print_json


@click.command()
@click.argument("instance_id", metavar="ID")
@REASON_OPTION
@BY_OPTION
@DB_OPTION
@JSON_OPTION
def rewind(
    instance_id: str, reason: str | None, by: str | None, db: str | None, as_json: bool
) -> None:
    """Run a FAILED instance again from before its failure.

    The failure and the calls that failed are forgotten: a worker replays the instance
    and runs the failed activities and sub-orchestrations again, while those that
    succeeded keep their results and do not run again. The rewind is recorded in the
    history with the reason and who did it. Fix the cause first (a downstream service,
    a bug in an activity); for a bug in the orchestrator itself, deploy the fix and
    check it with 'tenuto replay-check'.

    \b
    Examples:
      tenuto rewind order-17 --reason "payment service fixed"
    """
    with Client(db, actor=by) as client:
        client.rewind(instance_id, reason)
        st = client.status(instance_id)
    if as_json:
        print_json({"instance": st.to_json()})
    else:
        click.echo(f"Rewound {instance_id} (now {st.runtime_status.value}).")


@click.command()
@click.argument("instance_id", metavar="ID")
@click.option(
    "--new-id",
    is_flag=True,
    help="Start the new run under a new random id; the finished instance stays.",
)
@REASON_OPTION
@BY_OPTION
@DB_OPTION
@JSON_OPTION
def restart(
    instance_id: str,
    new_id: bool,
    reason: str | None,
    by: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Start a finished instance again from the beginning, with its original input.

    By default the new run replaces the finished instance (and its history) under the
    same id; with --new-id it gets a new id and the finished instance stays.

    \b
    Examples:
      tenuto restart order-17 --reason "run it with the fixed pricing"
      tenuto restart order-17 --new-id --json
    """
    with Client(db, actor=by) as client:
        started = client.restart(instance_id, new_instance_id=new_id, reason=reason)
        st = client.status(started)
    if as_json:
        print_json({"instance": st.to_json()})
    else:
        click.echo(f"Restarted {instance_id} as {started} (now {st.runtime_status.value}).")


COMMANDS = [rewind, restart]
