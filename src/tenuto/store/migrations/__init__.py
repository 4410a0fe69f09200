"""Schema migrations, as SQL files per backend (``sqlite/``, ``postgres/``)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load(dialect: str) -> list[Migration]:
    """The migrations of ``dialect``, in version order (files named ``NNNN_name.sql``)."""
    found = []
    for entry in resources.files(__name__).joinpath(dialect).iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest[:-4], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    return found
