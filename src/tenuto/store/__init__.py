"""Storage backends behind one seam (:mod:`tenuto.store.base`).

A backend is one module here (a :class:`~tenuto.store.base.Store` subclass), its
migrations (``migrations/<dialect>/``) and its line in :data:`_BACKENDS`.
"""

from __future__ import annotations

import importlib
import os

from ..errors import ValidationError
from .base import Store, is_database_error

DEFAULT_URL = "sqlite:///tenuto.db"

#: URL scheme -> the backend's module (in this package), its Store class, and an example
#: URL for messages. Modules are imported only when a URL names them.
_BACKENDS: dict[str, tuple[str, str, str]] = {
    "sqlite": ("sqlite", "SqliteStore", "sqlite:///path/to/file.db"),
    "postgresql": ("postgres", "PostgresStore", "postgresql://user@host/dbname"),
    "postgres": ("postgres", "PostgresStore", "postgresql://user@host/dbname"),
}


def resolve_url(url: str | None) -> str:
    """The database URL to use: ``url``, else ``$TENUTO_DB``, else ``./tenuto.db``.

    An empty ``url`` is refused rather than read as "the default" (an unset variable in
    ``--db "$DB"`` would otherwise write to ``./tenuto.db`` unnoticed)."""
    if url is not None and not url.strip():
        raise ValidationError(
            "the database URL is empty: give one, such as sqlite:///tenuto.db or "
            "postgresql://user@host/dbname, or leave --db out to use $TENUTO_DB or "
            f"{DEFAULT_URL}"
        )
    return url or os.environ.get("TENUTO_DB") or DEFAULT_URL


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open the store a URL names: ``sqlite:///path`` or ``postgresql://...``.

    ``create=False`` refuses to create a database file that is not there (a read of a
    mistyped path must not leave an empty database behind): a
    :class:`~tenuto.ValidationError` naming the path."""
    url = resolve_url(url)
    backend = _BACKENDS.get(url.split(":", 1)[0].lower())
    if backend is None:
        examples = " or ".join(dict.fromkeys(example for _, _, example in _BACKENDS.values()))
        raise ValidationError(f"unsupported database URL {url!r}: use {examples}")
    module, cls, _ = backend
    loaded = importlib.import_module(f"{__name__}.{module}")
    missing = getattr(loaded, "missing", None)  # backends whose database is a file
    if not create and missing is not None and (path := missing(url)) is not None:
        raise ValidationError(
            f"there is no database at {path}: check --db or $TENUTO_DB (nothing was created)"
        )
    store: Store = getattr(loaded, cls)(url)
    return store


__all__ = ["DEFAULT_URL", "Store", "is_database_error", "open_store", "resolve_url"]
