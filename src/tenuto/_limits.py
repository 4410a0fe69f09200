"""Flow-control limit operations, each inside the caller's transaction. The limits are
enforced by the store's claims (see :mod:`tenuto.store.flow`)."""

from __future__ import annotations

import math
from typing import Any

from ._control import ACTIVITY, ORCHESTRATOR, track_each
from .app import App
from .errors import ValidationError
from .store.base import Tx
from .store.flow import LimitRow

KINDS = (ACTIVITY, ORCHESTRATOR)
#: The largest count a limit takes (a 32-bit integer column), and the highest rate.
MAX_COUNT = 2**31 - 1
MAX_RATE = 1e6
CLIENT = "client"
CODE = "code"


def check_limit(max_concurrent: Any, per_second: Any, *, rate: bool = True) -> None:
    """Refuse limits that mean nothing: at least one of them, each positive."""
    if max_concurrent is None and per_second is None:
        what = "max_concurrent or per_second" if rate else "max_running"
        raise ValidationError(f"give {what}; to lift a limit, remove it")
    if max_concurrent is not None and (
        not isinstance(max_concurrent, int)
        or isinstance(max_concurrent, bool)
        or max_concurrent < 1
    ):
        raise ValidationError(
            f"{'max_concurrent' if rate else 'max_running'} must be a whole number of at "
            f"least 1 (at most {MAX_COUNT}), not {max_concurrent!r} (to stop the work "
            "entirely, pause it)"
        )
    if per_second is not None and (
        not isinstance(per_second, int | float)
        or isinstance(per_second, bool)
        or not math.isfinite(per_second)
        or not 0 < per_second <= MAX_RATE
    ):
        raise ValidationError(
            f"per_second must be a positive number of starts per second (at most "
            f"{MAX_RATE:g}), not {per_second!r}"
        )


def set_limit(
    tx: Tx,
    kind: str,
    name: str,
    *,
    max_concurrent: int | None,
    per_second: float | None,
    reason: str | None,
    by: str | None,
    now: float,
    source: str = CLIENT,
) -> bool:
    """Set (or replace) a limit; from code (``source="code"``), only where no client
    set one. Whether it was written."""
    row = LimitRow(kind, name, max_concurrent, per_second, reason, by, now, source)
    written = tx.put_limit(row, keep_client=source == CODE)
    if written:
        tx.wake()  # work the old limit held back may start
        track_each(
            tx,
            f"{kind}_limited",
            [name],
            max_concurrent=max_concurrent,
            per_second=per_second,
            reason=reason,
            by=by,
        )
    return written


def remove_limit(tx: Tx, kind: str, name: str, *, by: str | None) -> bool:
    """Remove a limit; ``False`` if there was none."""
    if tx.delete_limit(kind, name) is None:
        return False
    tx.wake()
    track_each(tx, f"{kind}_unlimited", [name], by=by)
    return True


def declare(tx: Tx, app: App, now: float, by: str) -> None:
    """Set the limits ``app`` declares (``@app.activity(max_concurrent=...)``)."""
    for name in app.activity_names:
        activity = app.get_activity(name)
        if activity.max_concurrent is not None or activity.per_second is not None:
            set_limit(
                tx,
                ACTIVITY,
                name,
                max_concurrent=activity.max_concurrent,
                per_second=activity.per_second,
                reason="declared in code",
                by=by,
                now=now,
                source=CODE,
            )
