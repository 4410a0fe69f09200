"""The tracking log: one structured record per instance state change.

Records go to the ``tenuto`` logger (Python ``logging``) at INFO, or WARNING for
failures. Each carries its fields in ``record.tenuto`` (a dict with at least ``event``
and ``instance_id``), and a readable ``key=value`` message::

    instance paused: instance_id=backup-1 reason='business hours' by=alice

Events: ``started``, ``paused``, ``pause_rescheduled`` (a pause's scheduled resume set
or moved), ``resumed``, ``completed``, ``failed``, ``terminated``,
``continued_as_new``, ``purged``, ``event_raised``, ``activity_retry``,
``activity_failed``, ``lease_lost``, ``restarted``, ``failure_retried`` (a call that paused its
instance runs again on resume). A pause by tenuto itself (its code no longer matches its
history, a call failed its last attempt) is a WARNING too.
Use :class:`JsonFormatter` to write them as JSON lines.

Every record is also written to the store's outbox, in the transaction of the change
it records; ``tenuto serve`` and ``tenuto worker`` drain it (:mod:`tenuto.outbox`), so
the log of whichever of them holds the drainer's lease has every change, whoever made
it. Drained records carry two more fields: ``seq`` (their place in the outbox's order:
a log shipper drops a ``seq`` it has seen) and ``at`` (when the change was made, ISO
8601). A
process that drains logs only what it drains; any other logs its own changes as they
commit (:data:`log_locally`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("tenuto")
# A library logs; the application decides where it goes (nothing shows unless configured).
logger.addHandler(logging.NullHandler())

_WARN = frozenset({"failed", "activity_failed", "lease_lost"})
#: Pause sources that need someone to act (see docs/changing-code.md).
_WARN_PAUSES = frozenset({"nondeterminism", "failure"})

#: Callbacks run for every tracked change this process commits (metrics subscribe here).
observers: list[Callable[[str, dict[str, Any]], None]] = []

#: Whether this process logs the changes it commits itself. A drainer turns this off:
#: its process then logs every change once, as drained, its own included.
log_locally = True


def track(event: str, instance_id: str, **fields: Any) -> None:
    """Record one state change of one instance, made by this process and committed."""
    data = {"event": event, "instance_id": instance_id, **fields}
    for observer in observers:
        observer(event, data)
    if log_locally:
        _log(data)


def emit(event: str, instance_id: str, fields: dict[str, Any], seq: int, at: float) -> None:
    """Log one record drained from the outbox (made by any process at epoch ``at``)."""
    when = datetime.fromtimestamp(at, UTC).isoformat()
    _log({"event": event, "instance_id": instance_id, **fields, "seq": seq, "at": when})


def _log(data: dict[str, Any]) -> None:
    event = data["event"]
    warn = event in _WARN or (event == "paused" and data.get("source") in _WARN_PAUSES)
    level = logging.WARNING if warn else logging.INFO
    if logger.isEnabledFor(level):
        text = " ".join(
            f"{k}={v!r}" if isinstance(v, str) and k != "instance_id" else f"{k}={v}"
            for k, v in data.items()
            if k != "event" and v is not None
        )
        logger.log(level, "instance %s: %s", event.replace("_", " "), text, extra={"tenuto": data})


class JsonFormatter(logging.Formatter):
    """Formats records as one JSON object per line, tracking fields included."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "tenuto", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)
