"""What the values a caller gives tenuto's client must be: reasons and other free text,
times, statuses, versions and tags.

Each check returns the value (normalized where that helps) or raises
:class:`~tenuto.ValidationError` (:class:`~tenuto.InvalidType` for a value of the wrong
type) saying what was wrong. Every entry point (``Client``, REST, the Durable Functions
routes, gRPC, the command line) reaches them through the client, so a value is judged
the same way wherever it enters. Instance ids and names have their own rules
(:mod:`tenuto._ids`, :func:`tenuto.app.check_name`); JSON values theirs
(:mod:`tenuto._json`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ._json import is_text
from .errors import InvalidType, ValidationError
from .status import Status, to_timestamp

#: The longest reason (and actor, and id prefix).
MAX_REASON = 4096
#: Bounds of an instance's version and tags.
MAX_VERSION = 256
MAX_TAGS = 64
MAX_TAG_KEY = 256
MAX_TAG_VALUE = 1024
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def check_text(text: Any, what: str = "a reason") -> str | None:
    """Validate free text (a reason, an actor, an id prefix): ``None``, or a string of
    at most 4096 characters without NUL characters or lone surrogates."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidType(f"{what} must be a string, not {type(text).__name__}")
    if len(text) > MAX_REASON:
        raise ValidationError(f"{what} must be at most {MAX_REASON} characters")
    if "\x00" in text:
        raise ValidationError(f"{what} must not contain NUL characters")
    if not is_text(text):
        raise ValidationError(f"{what} must not contain lone surrogates (text that is not Unicode)")
    return text


def check_time(value: datetime | None, what: str) -> float | None:
    """A time as epoch seconds (``None`` stays ``None``); naive datetimes are UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidType(f"{what} must be a datetime, not {type(value).__name__}")
    return to_timestamp(value)


def check_statuses(status: Status | str | Iterable[Status | str] | None) -> tuple[Status, ...]:
    """One status or several, as :class:`~tenuto.Status` values (names in any case)."""
    if status is None:
        return ()
    items = [status] if isinstance(status, Status | str) else list(status)
    out = []
    for item in items:
        try:
            out.append(Status(item.upper() if isinstance(item, str) else item))
        except ValueError:
            raise ValidationError(
                f"unknown status {item!r}; use one of {', '.join(s.value for s in Status)}"
            ) from None
    return tuple(out)


def check_version(version: Any) -> str | None:
    """Validate an instance's version: ``None``, or 1-256 characters without control
    characters."""
    if version is None:
        return None
    if not isinstance(version, str):
        raise InvalidType(f"a version must be a string, not {type(version).__name__}")
    if not version or len(version) > MAX_VERSION or _bad_text(version):
        raise ValidationError(
            f"invalid version {version[:80]!r}: use 1-{MAX_VERSION} characters and no "
            "control characters or lone surrogates"
        )
    return version


def check_tags(tags: Any) -> dict[str, str] | None:
    """Validate an instance's tags: a mapping of at most 64 string keys (1-256
    characters) to string values (at most 1024 characters), none with control
    characters. Returns them as a dict, or ``None`` for no tags (``None`` or empty)."""
    if tags is None:
        return None
    if not isinstance(tags, Mapping):
        raise InvalidType(
            f"tags must be a mapping of strings to strings, not {type(tags).__name__}"
        )
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"too many tags ({len(tags)}): at most {MAX_TAGS} are allowed")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str):
            raise InvalidType(f"a tag key must be a string, not {type(key).__name__}")
        if not isinstance(value, str):
            raise InvalidType(
                f"the value of tag {key[:80]!r} must be a string, not {type(value).__name__}"
            )
        if not key or len(key) > MAX_TAG_KEY or _bad_text(key):
            raise ValidationError(
                f"invalid tag key {key[:80]!r}: use 1-{MAX_TAG_KEY} characters and no "
                "control characters or lone surrogates"
            )
        if len(value) > MAX_TAG_VALUE or _bad_text(value):
            raise ValidationError(
                f"invalid value of tag {key[:80]!r}: use at most {MAX_TAG_VALUE} characters "
                "and no control characters or lone surrogates"
            )
        out[key] = value
    return out or None


def _bad_text(text: str) -> bool:
    """Whether ``text`` holds a control character or a lone surrogate."""
    return _CONTROL_RE.search(text) is not None or not is_text(text)


#: How far in the past a ``resume_at`` may be (clocks of different hosts differ a little).
RESUME_AT_SKEW = 5.0


def check_resume_at(value: datetime | None, now: float) -> float | None:
    """A pause's ``resume_at`` as epoch seconds: a time ahead of ``now``. One in the past
    (by more than :data:`RESUME_AT_SKEW` seconds) is refused rather than resuming at
    once, which is surely not what was meant."""
    at = check_time(value, "resume_at")
    if at is not None and at < now - RESUME_AT_SKEW:
        assert value is not None
        raise ValidationError(
            f"resume_at {value.isoformat()} is in the past: the resume time must be in the "
            "future (or leave it out, and resume by hand)"
        )
    return at
