"""The client a command works with: a read-only command never creates a database (a
mistyped ``--db`` path is an error, not a new empty file), and an unknown id is reported
with the database it was looked up in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..client import Client
from ..errors import InstanceNotFound
from ..store import open_store, resolve_url
from ..store.base import split_url


def shown_url(url: str) -> str:
    """``url`` without its password, to show."""
    parts = split_url(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@contextmanager
def client_for(
    db: str | None, *, read_only: bool = False, actor: str | None = None
) -> Iterator[Client]:
    """A :class:`~tenuto.Client` of ``db`` for one command (``read_only``: only if the
    database exists)."""
    url = resolve_url(db)
    store = open_store(url, create=not read_only)
    try:
        with Client(store=store, actor=actor) as client:
            yield client
    except InstanceNotFound as exc:
        exc.args = (f"{exc} in the database {shown_url(url)}",)
        raise
    finally:
        store.close()
