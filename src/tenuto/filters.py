"""Which instances a query, a count or a bulk operation applies to: one :class:`Filter`
value behind every entry point (``Client`` and ``AsyncClient``, the command line's
filter options, the REST API's bodies and query parameters, the dashboard)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from ._checks import check_statuses, check_text, check_time
from .app import check_name
from .errors import InvalidType, ValidationError
from .status import Status
from .store.base import Selection


@dataclass(frozen=True, init=False)
class Filter:
    """Which instances an operation applies to: every condition given must hold, and an
    empty ``Filter()`` selects every instance.

    ``status`` is one status or several (names in any case): an instance in any of them
    matches. ``name`` is the orchestrator's name; ``created_from`` and ``created_to``
    select instances created at or after, and before, those times (naive datetimes are
    UTC); ``id_prefix`` selects ids that start with it.

    Checked when made: a bad value raises :class:`~tenuto.ValidationError` naming it.
    Pass one to :meth:`Client.query <tenuto.Client.query>`, :meth:`~tenuto.Client.count`
    or a ``*_many`` method, as ``client.query(Filter(status="PAUSED"))``; those methods
    also take the same conditions as keyword arguments (``client.query(status="PAUSED")``).
    """

    status: tuple[Status, ...]
    name: str | None
    created_from: datetime | None
    created_to: datetime | None
    id_prefix: str | None

    def __init__(
        self,
        *,
        status: Status | str | Iterable[Status | str] | None = None,
        name: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        id_prefix: str | None = None,
    ) -> None:
        # Checked in the order of the arguments: the first bad one is the one reported.
        set_ = functools.partial(object.__setattr__, self)
        set_("status", check_statuses(status))
        set_("name", None if name is None else check_name(name, "orchestrator name"))
        check_time(created_from, "created_from")
        set_("created_from", created_from)
        check_time(created_to, "created_to")
        set_("created_to", created_to)
        set_("id_prefix", check_text(id_prefix, "an id prefix") or None)

    @property
    def given(self) -> bool:
        """Whether any condition is given (``False``: the filter selects everything)."""
        return self != Filter()


class FilterArgs(TypedDict, total=False):
    """The conditions of a :class:`Filter`, as keyword arguments of the client methods
    that take one."""

    status: Status | str | Iterable[Status | str] | None
    name: str | None
    created_from: datetime | None
    created_to: datetime | None
    id_prefix: str | None


def selection(flt: Filter | None, where: FilterArgs, statuses: Sequence[Status] = ()) -> Selection:
    """The store's form of the filter a client method was given: ``flt``, or one made of
    keyword arguments ``where`` (never both). ``statuses`` stand in when the filter names
    none (the statuses a bulk operation applies to)."""
    if flt is None:
        flt = Filter(**where)
    elif not isinstance(flt, Filter):
        raise InvalidType(f"filter must be a tenuto.Filter, not {type(flt).__name__}")
    elif where:
        raise ValidationError(
            f"give a Filter or filter keywords ({', '.join(sorted(where))}), not both"
        )
    return Selection(
        statuses=flt.status or tuple(statuses),
        name=flt.name,
        created_from=check_time(flt.created_from, "created_from"),
        created_to=check_time(flt.created_to, "created_to"),
        id_prefix=flt.id_prefix,
    )
