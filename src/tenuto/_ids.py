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
from typing import Any

from .errors import InvalidType, ValidationError, shown

#: The longest instance id.
MAX_ID = 256
_FORBIDDEN = "/\\\\#?\x00-\x1f\x7f\ud800-\udfff"
_ID_RE = re.compile(f"^[^{_FORBIDDEN}\\s][^{_FORBIDDEN}]{{0,{MAX_ID - 1}}}$")
#: Ids that every URL client resolves away as path segments (RFC 3986 dot segments).
_DOT_SEGMENTS = (".", "..")
#: Hex digits of the parent id's SHA-256 in a derived id that had to be shortened.
_DIGEST_CHARS = 16


def check_instance_id(instance_id: Any, what: str = "instance id") -> str:
    """Validate an instance id (see the module); returns it. ``what`` names it in the
    error (``"sub-orchestration instance id"``)."""
    if not isinstance(instance_id, str):
        raise InvalidType(f"the {what} must be a string, not {type(instance_id).__name__}")
    if (
        not _ID_RE.match(instance_id)
        or instance_id != instance_id.strip()
        or instance_id in _DOT_SEGMENTS
    ):
        raise ValidationError(
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
