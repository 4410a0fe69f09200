"""Pausing and resuming: one instance, every instance a filter selects (``--all``), or a
whole type with a standing pause (``--orchestrator NAME``, ``--activity NAME``); and
``pauses``, the standing pauses."""

from __future__ import annotations

from datetime import datetime

import click

from ..client import Client
from ..entities import is_entity_id
from ..filters import Filter
from ..status import InstanceStatus, StandingPause
from .bulk import bulk_options, check_bulk_flags, go_ahead
from .limits import show_limits
from .opening import client_for
from .params import (
    ALL_OPTION,
    BY_OPTION,
    DB_OPTION,
    JSON_OPTION,
    REASON_OPTION,
    WHEN,
    acts_on_many,
    filter_options,
    type_options,
    type_target,
)
from .render import (
    plural,
    print_json,
    report_count,
    show_standing_pauses,
    standing_summary,
    time_text,
)
from .work import report_drained


@click.command()
@click.argument("instance_id", metavar="[ID]", required=False)
@ALL_OPTION
@filter_options
@type_options
@REASON_OPTION
@click.option(
    "--resume-at",
    type=WHEN,
    default=None,
    help="Resume by itself at this time: ISO 8601, or from now such as +30m or +2h.",
)
@click.option(
    "--wait-drained",
    type=click.FloatRange(min=0),
    is_flag=False,
    flag_value=600.0,
    default=None,
    metavar="[SECONDS]",
    help="After pausing one instance, wait (up to SECONDS, default 600) until nothing of "
    "it runs: work that had started finishes, its results wait for the resume. Exits 1 "
    "if it still runs by then.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --orchestrator or --activity: pause a name no worker has registered and "
    "no instance uses (refused otherwise: most likely a typo).",
)
@bulk_options
@BY_OPTION
@DB_OPTION
@JSON_OPTION
def pause(
    instance_id: str | None,
    all_: bool,
    flt: Filter,
    orchestrator: str | None,
    activity: str | None,
    entity_type: str | None,
    reason: str | None,
    resume_at: datetime | None,
    wait_drained: float | None,
    force: bool,
    dry_run: bool,
    yes: bool,
    by: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Pause an instance, many (--all), or a whole orchestrator or activity type.

    With --all it pauses every PENDING or RUNNING instance the filters select. When this
    returns nothing more of the instance starts until it is resumed; work
    already running finishes and waits. Pausing a paused instance changes nothing, except
    that --resume-at sets (or moves) the time it resumes by itself.

    --orchestrator NAME pauses every instance of NAME, and holds those started while the
    pause stands. --activity NAME holds every execution of that activity, in every
    orchestration (the instances stay RUNNING, waiting); running ones finish.
    --entity-type NAME holds every entity of NAME (their operations queue). See them
    with 'tenuto pauses'. An entity id, @name@key, pauses that entity.

    \b
    Examples:
      tenuto pause billing-2024-05 --reason "business hours" --resume-at +8h
      tenuto pause billing-2024-05 --reason "db upgrade" --wait-drained 300
      tenuto pause --all --name backup --reason "storage outage"
      tenuto pause --all --reason "incident 1234"      (every live instance)
      tenuto pause --all --name backup --dry-run       (how many, changing nothing)
      tenuto pause --orchestrator backup --reason "business hours" --resume-at +8h
      tenuto pause --activity charge_card --reason "billing upgrade"
      tenuto pause @counter@user-42 --reason "fixing its state"
      tenuto pause --entity-type counter --reason "deploy"
    """
    target = type_target(instance_id, all_, flt, orchestrator, activity, entity_type)
    if wait_drained is not None and (target is not None or all_):
        raise click.UsageError("--wait-drained waits for one instance: give its ID")
    if force and target is None:
        raise click.UsageError("--force goes with --orchestrator NAME or --activity NAME")
    check_bulk_flags(all_, dry_run, yes)
    with client_for(db, actor=by) as client:
        if target is not None:
            kind, name = target
            if kind == "orchestrator":
                changed = client.pause_orchestrator(name, reason, resume_at=resume_at, force=force)
            elif kind == "entity":
                changed = client.pause_entity_type(name, reason, resume_at=resume_at)
            else:
                changed = client.pause_activity(name, reason, resume_at=resume_at, force=force)
            _report_type_change(client, kind, name, changed, paused=True, as_json=as_json)
            return
        if acts_on_many(instance_id, all_, flt, "pause", types=True):
            if not go_ahead(client, "pause", flt, dry_run=dry_run, yes=yes, as_json=as_json):
                return
            count = client.pause_many(flt, reason=reason, resume_at=resume_at)
            report_count(count, "Paused", as_json)
            return
        assert instance_id is not None
        if is_entity_id(instance_id):
            changed = client.pause(instance_id, reason, resume_at=resume_at)
            _report_entity(client, instance_id, changed, "Paused", "already paused", as_json)
            return
        was_paused = resume_at is not None and client.status(instance_id).pause is not None
        changed = client.pause(instance_id, reason, resume_at=resume_at)
        st = client.status(instance_id)
        if changed and was_paused and st.pause is not None and not as_json:
            # Already paused: the call set (or moved) its scheduled resume.
            click.echo(
                f"{st.instance_id} was already paused; it now resumes by itself at "
                f"{time_text(st.pause.resume_at)}."
            )
            return
        if wait_drained is None:
            _report_change(st, changed, "Paused", "already paused", as_json)
            return
        if not as_json:
            _report_change(st, changed, "Paused", "already paused", as_json)
            click.echo("Waiting for the work that had started to finish...")
        report_drained(client.wait_drained(instance_id, timeout=wait_drained), as_json)


@click.command()
@click.argument("instance_id", metavar="[ID]", required=False)
@ALL_OPTION
@filter_options
@type_options
@REASON_OPTION
@bulk_options
@BY_OPTION
@click.option(
    "--deliver-failure",
    is_flag=True,
    help="Paused by a failed call: hand the failure to the code instead of running it again.",
)
@DB_OPTION
@JSON_OPTION
def resume(
    instance_id: str | None,
    all_: bool,
    flt: Filter,
    orchestrator: str | None,
    activity: str | None,
    entity_type: str | None,
    reason: str | None,
    dry_run: bool,
    yes: bool,
    by: str | None,
    deliver_failure: bool,
    db: str | None,
    as_json: bool,
) -> None:
    """Resume an instance, many (--all), or a whole orchestrator or activity type.

    With --all it resumes every PAUSED instance the filters select. An instance continues
    exactly where it stopped; resuming a running instance changes nothing.
    Resuming an orchestrator resumes exactly the instances its standing pause paused
    (those paused on their own stay paused); resuming an activity starts its held
    executions in the order they were scheduled.

    \b
    Examples:
      tenuto resume billing-2024-05 --reason "night window"
      tenuto resume --all --name backup --reason "storage is back"
      tenuto resume --orchestrator backup --reason "night window"
      tenuto resume --activity charge_card --reason "billing is back"
      tenuto resume order-17 --deliver-failure   # let the code handle the failure
    """
    target = type_target(instance_id, all_, flt, orchestrator, activity, entity_type)
    if deliver_failure and instance_id is None:
        raise click.UsageError("--deliver-failure resumes one instance: give its ID")
    check_bulk_flags(all_, dry_run, yes)
    with client_for(db, actor=by) as client:
        if target is not None:
            kind, name = target
            if kind == "orchestrator":
                changed = client.resume_orchestrator(name, reason)
            elif kind == "entity":
                changed = client.resume_entity_type(name, reason)
            else:
                changed = client.resume_activity(name, reason)
            _report_type_change(client, kind, name, changed, paused=False, as_json=as_json)
            return
        if acts_on_many(instance_id, all_, flt, "resume", types=True):
            if not go_ahead(client, "resume", flt, dry_run=dry_run, yes=yes, as_json=as_json):
                return
            report_count(client.resume_many(flt, reason=reason), "Resumed", as_json)
            return
        assert instance_id is not None
        if is_entity_id(instance_id):
            changed = client.resume(instance_id, reason, deliver_failure=deliver_failure)
            _report_entity(client, instance_id, changed, "Resumed", "not paused", as_json)
            return
        changed = client.resume(instance_id, reason, deliver_failure=deliver_failure)
        _report_change(client.status(instance_id), changed, "Resumed", "not paused", as_json)


@click.command()
@DB_OPTION
@JSON_OPTION
def pauses(db: str | None, as_json: bool) -> None:
    """List the standing pauses of orchestrator and activity types, and of schedules.

    Oldest first, with reason, who, since when, and when they resume by themselves.
    Start and end them with 'tenuto pause' and 'tenuto resume' with --orchestrator NAME
    or --activity NAME ('tenuto schedule pause|resume' for schedules). Flow-control
    limits, pauses that let some work through, follow ('tenuto limits').

    \b
    Examples:
      tenuto pauses
      tenuto pauses --json
    """
    with client_for(db, read_only=True) as client:
        standing = client.standing_pauses()
        limits = client.limits()
    if as_json:
        print_json([sp.to_json() for sp in standing])
    else:
        show_standing_pauses(standing)
        if limits:  # a limit is a pause that lets some work through: shown next to them
            show_limits(limits)


def _report_change(st: InstanceStatus, changed: bool, done: str, noop: str, as_json: bool) -> None:
    if as_json:
        print_json({"changed": changed, "instance": st.to_json()})
    elif changed:
        click.echo(f"{done} {st.instance_id} (now {st.runtime_status.value}).")
    else:
        click.echo(f"{st.instance_id} was {noop}; nothing changed ({st.runtime_status.value}).")


#: What a standing pause, and the end of one, does (kind -> message).
_PAUSED = {
    "orchestrator": "every instance held until resumed",
    "activity": "no execution starts anywhere until resumed; running ones finish",
    "entity": "operations queue for every entity of it until resumed",
}
_RESUMED = {
    "orchestrator": "the instances it paused continue (those paused on their own stay paused)",
    "activity": "held executions start in the order they were scheduled",
    "entity": "queued operations run, in the order they were sent",
}


def _report_type_change(
    client: Client, kind: str, name: str, changed: bool, *, paused: bool, as_json: bool
) -> None:
    standing = client.standing_pauses()
    if as_json:
        print_json({"changed": changed, "standing_pauses": [sp.to_json() for sp in standing]})
        return
    this = next((sp for sp in standing if (sp.kind, sp.name) == (kind, name)), None)
    if not changed:
        state = "already paused" if paused else "not paused"
        click.echo(f"{kind.capitalize()} {name} was {state}; nothing changed{_about(this)}.")
    elif paused:
        click.echo(f"Paused {kind} {name}: {_PAUSED[kind]}{_scheduled(this)}.")
    else:
        click.echo(f"Resumed {kind} {name}: {_RESUMED[kind]}.")


def _report_entity(
    client: Client, entity_id: str, changed: bool, done: str, noop: str, as_json: bool
) -> None:
    st = client.get_entity(entity_id)
    if as_json:
        print_json({"changed": changed, "entity": None if st is None else st.to_json()})
    elif changed:
        queued = "" if st is None else f"; {plural(st.pending_operations, 'operation')} queued"
        click.echo(f"{done} entity {entity_id}{queued}.")
    else:
        click.echo(f"Entity {entity_id} was {noop}; nothing changed.")


def _about(sp: StandingPause | None) -> str:
    return "" if sp is None else f" ({standing_summary(sp)})"


def _scheduled(sp: StandingPause | None) -> str:
    if sp is None or sp.resume_at is None:
        return ""
    return f" (resumes by itself at {time_text(sp.resume_at)})"


COMMANDS = [pause, resume, pauses]
