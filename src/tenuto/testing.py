"""Helpers for unit tests of orchestrators: replay a saved history against the code.

Save the history of an instance with ``tenuto history ID --json > order-17.json`` (or
``client.history(ID)``), then check in a unit test that a change of the orchestrator
still replays it::

    from tenuto.testing import replay

    def test_the_new_version_replays_old_orders():
        result = replay(app, Path("tests/histories/order-17.json").read_text())
        assert result.ok, result.problem
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import history as h
from .app import App
from .errors import ValidationError
from .replay_check import ReplayResult, replay_events
from .status import HistoryEvent, to_timestamp

__all__ = ["ReplayResult", "replay"]

#: Fields of a saved event that say where and when it is, not what it holds.
_PLACE = ("sequence", "type", "timestamp")
#: Fields that ``tenuto history --json`` shows as ISO times (stored as epoch seconds).
_TIMES = ("fire_at", "resume_at")

SavedHistory = (
    str
    | os.PathLike[str]
    | Mapping[str, Any]
    | Sequence[HistoryEvent]
    | Sequence[Mapping[str, Any]]
)


def replay(app: App, history: SavedHistory, *, name: str | None = None) -> ReplayResult:
    """Replay a saved history against the orchestrator code of ``app``.

    ``history`` is what ``tenuto history ID --json`` prints (as text, a path to a file
    holding it, or the parsed object), its list of events, or ``client.history(ID)``.
    ``name``: the orchestrator, if the history does not start with its
    ``ExecutionStarted`` event. The result says whether the code still matches
    (:attr:`~tenuto.replay_check.ReplayResult.ok`, ``mismatch``), and how far it got.
    """
    instance_id = "replay"
    if isinstance(history, os.PathLike):
        with open(history, encoding="utf-8") as f:
            history = f.read()
    if isinstance(history, str):
        try:
            history = json.loads(history)
        except ValueError as exc:
            raise ValidationError(f"a saved history must be JSON: {exc}") from None
    if isinstance(history, Mapping):
        instance_id = str(history.get("instance_id") or instance_id)
        history = history.get("events")  # type: ignore[assignment]
    if not isinstance(history, Sequence) or isinstance(history, str):
        raise ValidationError(
            "a saved history is the output of 'tenuto history ID --json' (an object with "
            "'events'), its list of events, or client.history(ID)"
        )
    events = [_event(e, i) for i, e in enumerate(history)]
    started = [e for e in events if e.type == h.EXECUTION_STARTED]
    name = name or (str(started[0].data.get("name")) if started else None)
    if name is None:
        raise ValidationError(
            "this history has no ExecutionStarted event: say which orchestrator it is "
            "with replay(app, history, name=...)"
        )
    return replay_events(app, name, events, instance_id=instance_id)


def _event(saved: object, index: int) -> h.Event:
    when: Any
    if isinstance(saved, HistoryEvent):
        kind, when, data = saved.type, saved.timestamp, dict(saved.data)
    elif isinstance(saved, Mapping) and isinstance(saved.get("type"), str):
        kind, when = saved["type"], saved.get("timestamp")
        data = {k: v for k, v in saved.items() if k not in _PLACE}
    else:
        raise ValidationError(f"event {index} of the saved history has no 'type'")
    for key in _TIMES:
        if isinstance(data.get(key), str):
            data[key] = _seconds(data[key], index)
    return h.Event(kind, _seconds(when, index), data)


def _seconds(when: Any, index: int) -> float:
    if isinstance(when, int | float):
        return float(when)
    try:
        moment = when if isinstance(when, datetime) else datetime.fromisoformat(when)
    except (TypeError, ValueError):
        raise ValidationError(
            f"event {index} of the saved history has no valid time ({when!r})"
        ) from None
    return to_timestamp(moment)
