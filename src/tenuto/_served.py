"""Names no live worker serves: a warning when an instance may wait forever for one, and
the refusal of a standing pause of a name nothing knows (most likely a typo)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from ._control import ORCHESTRATOR
from ._json import loads
from .errors import ValidationError
from .store.base import Reader, Selection, WorkerRow

#: Most known names a message lists.
_KNOWN_SHOWN = 8


def known_listing(known: Sequence[str], name: str) -> str:
    """``known: checkout, check, ...``: the known names other than ``name``, the closest
    to it first (so that a typo shows its fix)."""
    others = [k for k in known if k != name]
    close = difflib.get_close_matches(name, others, n=_KNOWN_SHOWN, cutoff=0.5)
    shown = close + [k for k in others if k not in close][: _KNOWN_SHOWN - len(close)]
    more = ", ..." if len(others) > len(shown) else ""
    return f"known: {', '.join(shown)}{more}" if shown else "no other names are known"


def unserved(
    workers: Sequence[WorkerRow], known: Sequence[str], kind: str, name: str
) -> str | None:
    """A warning if no live worker serves orchestrator or activity ``name`` (``kind``),
    with the known names closest to it first (a typo shows its fix); ``None`` if one
    does."""
    for w in workers:
        served = w.orchestrators if kind == ORCHESTRATOR else w.activities
        if served is None or name in loads(served):
            return None
    running = "" if workers else "no worker is running; "
    return f"no live worker serves {kind} {name!r} ({running}{known_listing(known, name)})"


def check_pausable_name(r: Reader, kind: str, name: str) -> None:
    """Refuse a standing pause of a name that no worker has ever registered, no instance
    uses, and no standing pause holds already: it would hold nothing (most likely a
    typo). :class:`~tenuto.ValidationError` naming the known names."""
    known = r.known_names(kind)
    if name in known or r.standing_pauses(kind, [name]):
        return
    if kind == ORCHESTRATOR and r.query(Selection(name=name), 1, None):
        return
    raise ValidationError(
        f"no worker has registered {kind} {name!r} and no instance uses it, so a pause of "
        f"it would hold nothing ({known_listing(known, name)}): check the name, or pass "
        "force=True (--force on the command line) to pause it anyway"
    )
