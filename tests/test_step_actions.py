"""What a step writes for its actions (:mod:`tenuto._step`), with no store."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tenuto import history as h
from tenuto._step import Decision, build
from tenuto.actions import PauseSelf
from tenuto.status import Status
from tenuto.store.base import InstanceRow


@dataclass(frozen=True)
class CallEntity:
    """An action this engine does not know (a newer engine's, or a new one not wired
    up yet), shaped like a PauseSelf."""

    task_id: int
    reason: str | None = None


def _decision(action: object) -> Decision:
    row = InstanceRow("i", "orch", Status.RUNNING, "e1", history_len=2, lease="w")
    return Decision(
        row=row,
        now=10.0,
        new_events=[],
        consumed=[],
        actions=[action],
        outcome=None,  # type: ignore[list-item]
    )


def test_a_pause_self_action_writes_a_suspension() -> None:
    ep = build(_decision(PauseSelf(task_id=1, reason="check")))
    [row] = ep.history
    assert row.event.type == h.EXECUTION_SUSPENDED
    assert row.event.data["source"] == "orchestration"


def test_an_unknown_action_is_refused_not_taken_for_a_pause() -> None:
    with pytest.raises(TypeError, match="CallEntity"):
        build(_decision(CallEntity(task_id=1)))
