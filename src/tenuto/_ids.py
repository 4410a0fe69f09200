"""Instance ids: the rules every id follows, and the ids tenuto derives for children;
the rules of the version and tags stored with an instance.

An id appears in URLs, HTTP headers, command lines and logs, so it is 1-256 characters,
none of ``/ \\ # ?``, control characters or lone surrogates, with no leading or trailing
whitespace, and not ``.`` or ``..`` (which URLs read as "this" and "the parent" path
segment, whatever the encoding). Any other character is fine (spaces inside, ``%``,
every script, emoji): tenuto percent-encodes ids wherever it builds a URL or a header.
The rules hold for every id, those tenuto derives for sub-orchestrations included.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ._json import is_text
from .errors import shown

#: The longest instance id.
MAX_ID = 256
_FORBIDDEN = "/\\\\#?\x00-\x1f\x7f\ud800-\udfff"
_ID_RE = re.compile(f"^[^{_FORBIDDEN}\\s][^{_FORBIDDEN}]{{0,{MAX_ID - 1}}}$")
#: Ids that every URL client resolves away as path segments (RFC 3986 dot segments).
_DOT_SEGMENTS = (".", "..")
#: Hex digits of the parent id's SHA-256 in a derived id that had to be shortened.
_DIGEST_CHARS = 16
#: Bounds of an instance's version and tags.
MAX_VERSION = 256
MAX_TAGS = 64
MAX_TAG_KEY = 256
MAX_TAG_VALUE = 1024
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def check_instance_id(instance_id: Any, what: str = "instance id") -> str:
    """Validate an instance id (see the module); returns it. ``what`` names it in the
    error (``"sub-orchestration instance id"``)."""
    if not isinstance(instance_id, str):
        raise TypeError(f"the {what} must be a string, not {type(instance_id).__name__}")
    if (
        not _ID_RE.match(instance_id)
        or instance_id != instance_id.strip()
        or instance_id in _DOT_SEGMENTS
    ):
        raise ValueError(
            f"invalid {what} {shown(instance_id)}: use 1-{MAX_ID} characters without '/', "
            "'\\', '#', '?', control characters, lone surrogates, or leading/trailing "
            "whitespace (and not '.' or '..')"
        )
    return instance_id


def child_id(parent_id: str, generation: int, task_id: int) -> str:
    """The id of a sub-orchestration started without one: ``<parent>:<task>``, or
    ``<parent>:<generation>:<task>`` after ``continue_as_new``.

    When that would be longer than :data:`MAX_ID` (a long parent id), the parent id is
    cut to fit and followed by ``~`` and the first 16 hex digits of its SHA-256, so that
    the id is valid, the same on every replay, and distinct for distinct parents.
    """
    suffix = f":{generation}:{task_id}" if generation else f":{task_id}"
    if len(parent_id) + len(suffix) <= MAX_ID:
        return parent_id + suffix
    digest = hashlib.sha256(parent_id.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    keep = MAX_ID - len(suffix) - 1 - _DIGEST_CHARS
    return f"{parent_id[:keep]}~{digest}{suffix}"


def check_version(version: Any) -> str | None:
    """Validate an instance's version: ``None``, or 1-256 characters without control
    characters."""
    if version is None:
        return None
    if not isinstance(version, str):
        raise TypeError(f"a version must be a string, not {type(version).__name__}")
    if not version or len(version) > MAX_VERSION or _bad_text(version):
        raise ValueError(
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
        raise TypeError(f"tags must be a mapping of strings to strings, not {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"too many tags ({len(tags)}): at most {MAX_TAGS} are allowed")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str):
            raise TypeError(f"a tag key must be a string, not {type(key).__name__}")
        if not isinstance(value, str):
            raise TypeError(
                f"the value of tag {key[:80]!r} must be a string, not {type(value).__name__}"
            )
        if not key or len(key) > MAX_TAG_KEY or _bad_text(key):
            raise ValueError(
                f"invalid tag key {key[:80]!r}: use 1-{MAX_TAG_KEY} characters and no "
                "control characters or lone surrogates"
            )
        if len(value) > MAX_TAG_VALUE or _bad_text(value):
            raise ValueError(
                f"invalid value of tag {key[:80]!r}: use at most {MAX_TAG_VALUE} characters "
                "and no control characters or lone surrogates"
            )
        out[key] = value
    return out or None


def _bad_text(text: str) -> bool:
    """Whether ``text`` holds a control character or a lone surrogate."""
    return _CONTROL_RE.search(text) is not None or not is_text(text)
