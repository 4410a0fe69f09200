"""Storage backends behind one seam (:mod:`tenuto.store.base`)."""

from __future__ import annotations

import os

from .base import Store

DEFAULT_URL = "sqlite:///tenuto.db"


def resolve_url(url: str | None) -> str:
    """The database URL to use: ``url``, else ``$TENUTO_DB``, else ``./tenuto.db``.

    An empty ``url`` is refused rather than read as "the default" (an unset variable in
    ``--db "$DB"`` would otherwise write to ``./tenuto.db`` unnoticed)."""
    if url is not None and not url.strip():
        raise ValueError(
            "the database URL is empty: give one, such as sqlite:///tenuto.db or "
            "postgresql://user@host/dbname, or leave --db out to use $TENUTO_DB or "
            f"{DEFAULT_URL}"
        )
    return url or os.environ.get("TENUTO_DB") or DEFAULT_URL


def open_store(url: str | None = None) -> Store:
    """Open the store a URL names: ``sqlite:///path`` or ``postgresql://...``."""
    url = resolve_url(url)
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(url)
    if scheme in ("postgresql", "postgres"):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError(
                "PostgreSQL support needs psycopg 3: pip install 'tenuto[postgres]'"
            ) from exc
        return PostgresStore(url)
    raise ValueError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/file.db or "
        "postgresql://user@host/dbname"
    )


__all__ = ["DEFAULT_URL", "Store", "open_store", "resolve_url"]
