"""What a bulk operation would act on, before it acts (:meth:`tenuto.Client.preview_many`):
the count that ``--dry-run``, the confirmation of a bulk command and the dashboard's bulk
dialogs show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .status import LIVE, PAUSABLE, TERMINAL, Status

#: The bulk operations, and the statuses each acts on (the rest of a filter's matches are
#: passed over).
ACTIONS: Final[dict[str, tuple[Status, ...]]] = {
    "pause": PAUSABLE,
    "resume": (Status.PAUSED,),
    "terminate": LIVE,
    "purge": TERMINAL,
}


@dataclass(frozen=True, slots=True)
class BulkPreview:
    """How many instances a bulk ``action`` would change now, and the ids of the first
    few of them (newest first)."""

    action: str
    count: int
    sample: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "count": self.count, "sample": list(self.sample)}
