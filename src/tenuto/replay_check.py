"""Replaying stored histories against code, changing nothing: does the code still match
what the instances did? Before resuming instances paused by a mismatch, and before
deploying a change, ``tenuto replay-check MODULE:APP`` (or :func:`replay_check`) says
which instances the code in hand would pause; :func:`tenuto.testing.replay` does the
same for one saved history, in a unit test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from . import actions
from . import history as h
from .app import App
from .errors import ValidationError
from .filters import Filter
from .replay import Replayer
from .status import Failure, Status
from .store.base import InstanceRow, Reader, Selection

if TYPE_CHECKING:
    from .client import Client

#: The instances a check replays unless told otherwise: those that still run code.
DEFAULT_STATUSES = (Status.PENDING, Status.RUNNING, Status.PAUSED)
_PAGE = 200


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """How a history replayed against the code.

    ``mismatch`` says where the code no longer matches the history (the step, what the
    history recorded, what the code does now), ``None`` if it matches. Replayed to the
    end, the code either waits (``next_actions``: what it would do next, as
    descriptions), or has finished: ``completed`` with ``output``, or ``failure``.
    """

    instance_id: str
    name: str
    #: The instance's status (``None`` for a saved history).
    status: Status | None
    events: int
    mismatch: str | None = None
    completed: bool = False
    output: Any = None
    failure: Failure | None = None
    next_actions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the code replays this history: no mismatch, and, for an instance
        that still runs, no failure the code raises now where it did not before."""
        return self.problem is None

    @property
    def problem(self) -> str | None:
        """Why the code does not replay this history (``None`` if it does)."""
        if self.mismatch is not None:
            return self.mismatch
        live = self.status is None or not self.status.is_terminal
        if live and self.failure is not None and not self._failed_before:
            return f"the code now fails: {self.failure.type}: {self.failure.message}"
        return None

    #: Whether the history itself ends with the failure (a saved FAILED instance).
    _failed_before: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "status": None if self.status is None else self.status.value,
            "events": self.events,
            "ok": self.ok,
            "problem": self.problem,
            "mismatch": self.mismatch,
            "completed": self.completed,
            "output": self.output,
            "failure": None if self.failure is None else self.failure.to_json(),
            "next_actions": self.next_actions,
        }


def replay_events(
    app: App,
    name: str,
    events: Sequence[h.Event],
    *,
    instance_id: str = "replay",
    execution_id: str = "replay",
    status: Status | None = None,
) -> ReplayResult:
    """Replay one history against orchestrator ``name`` of ``app``; nothing is written.
    An orchestrator ``app`` does not have is a mismatch too (its worker could not run
    the instance)."""
    if name not in app.orchestrator_names:
        return ReplayResult(
            instance_id,
            name,
            status,
            len(events),
            mismatch=f"orchestrator {name!r} is not registered in this app",
        )
    replayer = Replayer(
        app, app.get_orchestrator(name), instance_id, execution_id, on_nondeterminism="pause"
    )
    replayer.replay(events)
    outcome = replayer.outcome
    return ReplayResult(
        instance_id,
        name,
        status,
        len(events),
        mismatch=None if replayer.mismatch is None else replayer.mismatch.mismatch,
        completed=isinstance(outcome, actions.Completed),
        output=outcome.output if isinstance(outcome, actions.Completed) else None,
        failure=outcome.failure if isinstance(outcome, actions.Failed) else None,
        next_actions=[_describe(a) for a in replayer.take_actions()],
        _failed_before=any(
            e.type == h.EXECUTION_COMPLETED and e.data.get("status") == Status.FAILED.value
            for e in events
        ),
    )


def _describe(action: actions.Action) -> str:
    if isinstance(action, actions.PatchMarker):
        return f"records the marker of patch {action.patch!r}"
    return action.describe()


def replay_check(
    app: App,
    client: Client,
    *,
    status: Sequence[Status | str] | None = None,
    name: str | None = None,
    ids: Sequence[str] | None = None,
) -> list[ReplayResult]:
    """Replay the stored history of every matching instance against the code of
    ``app``, changing nothing; one result per instance, in id order (see
    :attr:`ReplayResult.ok`).

    By default the instances that still run code (PENDING, RUNNING, PAUSED) of the
    orchestrators ``app`` registers; ``status`` and ``name`` (one orchestrator) narrow
    that down. ``ids``: those instances, whatever their status (unless ``status``).
    A ``name`` that ``app`` does not register is refused (:class:`~tenuto.ValidationError`).
    """
    statuses = Filter(status=status).status or (() if ids else DEFAULT_STATUSES)
    if name is not None and name not in app.orchestrator_names:
        known = ", ".join(sorted(app.orchestrator_names)) or "none"
        raise ValidationError(
            f"orchestrator {name!r} is not registered in this app (it has: {known})"
        )
    names: list[str | None] = [name] if name is not None else list(app.orchestrator_names)
    selections = [
        Selection(statuses=statuses, name=n, ids=tuple(ids or ()))
        for n in (names if ids is None else [name])
    ]
    store = client.store
    rows = [row for s in selections for row in store.read(partial(_selected, selection=s))]
    return [
        replay_events(
            app,
            row.name,
            store.read(partial(_history, instance_id=row.instance_id)),
            instance_id=row.instance_id,
            execution_id=row.execution_id,
            status=row.status,
        )
        for row in sorted(rows, key=lambda r: r.instance_id)
    ]


def _selected(r: Reader, selection: Selection) -> list[InstanceRow]:
    rows: list[InstanceRow] = []
    after: str | None = None
    while page := r.page_ids(selection, after, _PAGE):
        rows += r.query(Selection(ids=tuple(page)), len(page), None)
        after = page[-1]
    return rows


def _history(r: Reader, instance_id: str) -> list[h.Event]:
    return r.load_history(instance_id)
