"""JSON encoding of user values, with errors that say what was wrong.

Inputs, outputs, event data and custom status are JSON values and nothing else: tenuto
never pickles. Encoding is strict (no NaN or Infinity, which are not JSON), so that what
a worker stores is exactly what any client, in any language, reads back.

Payloads that arrive as JSON text from a Durable Task SDK are kept as that text, byte for
byte (:class:`Raw`): the SDKs compare what they get back with what they sent. Stored
columns hold the text itself; a history event or message stores it spliced verbatim into
its JSON object (:func:`dumps_event`), so every reader still decodes the same value, and
:func:`raw_fields` recovers the exact text of each field for the SDK.
"""

from __future__ import annotations

import json
from typing import Any

from .status import type_name

_decoder = json.JSONDecoder()


def _reject(value: Any) -> Any:
    raise _NotJSON(type(value))


class _NotJSON(TypeError):
    def __init__(self, kind: type) -> None:
        super().__init__(kind)
        self.kind = kind


_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_reject
)


class Raw:
    """A JSON value kept as the exact JSON text it arrived as (see the module doc).

    Build it with :func:`raw`, which checks that the text is JSON."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Raw) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @property
    def value(self) -> Any:
        return _decoder.decode(self.text)


def _not_a_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_strict_decoder = json.JSONDecoder(parse_constant=_not_a_constant)


def raw(text: str) -> Raw:
    """``text`` as a :class:`Raw` payload; ``ValueError`` if it is not strict JSON
    (NaN and Infinity are not)."""
    _strict_decoder.decode(text)
    return Raw(text)


def dumps(value: Any, what: str = "value") -> str:
    """Encode ``value`` as compact JSON text (a :class:`Raw` value: its own text).

    Raises ``TypeError`` naming ``what`` and the offending type when ``value`` (or
    anything inside it) is not a JSON value.
    """
    if type(value) is Raw:
        return value.text
    try:
        return _encoder.encode(value)
    except _NotJSON as exc:
        raise TypeError(
            f"{what} must be a JSON value (dict, list, str, int, float, bool or None), "
            f"but it contains a value of type {type_name(exc.kind)}; convert it before passing it "
            "(for example a datetime to an ISO string)"
        ) from None
    except ValueError as exc:  # NaN / Infinity, or a circular reference
        raise TypeError(f"{what} is not valid JSON: {exc}") from None
    except TypeError as exc:  # non-string dict keys such as tuples
        raise TypeError(f"{what} is not valid JSON: {exc}") from None


def loads(text: str | None) -> Any:
    """Decode JSON text; ``None`` (no value stored) decodes to ``None``."""
    if text is None:
        return None
    return _decoder.decode(text)


def dumps_data(data: dict[str, Any]) -> str:
    """Encode the fields of a history event or message; :class:`Raw` field values are
    spliced in as their own text."""
    if not any(type(v) is Raw for v in data.values()):
        return dumps(data)
    parts = (
        f"{_encoder.encode(key)}:{value.text if type(value) is Raw else dumps(value)}"
        for key, value in data.items()
    )
    return "{" + ",".join(parts) + "}"


_SPACE = " \t\n\r"


def raw_fields(text: str) -> dict[str, str]:
    """The exact text of each top-level field of the JSON object ``text``."""
    fields: dict[str, str] = {}
    at = _skip(text, 0)
    if text[at : at + 1] != "{":
        raise ValueError("not a JSON object")
    at = _skip(text, at + 1)
    if text[at : at + 1] == "}":
        return fields
    while True:
        key, at = _decoder.raw_decode(text, at)
        at = _skip(text, at)
        if text[at : at + 1] != ":":
            raise ValueError("malformed JSON object")
        start = _skip(text, at + 1)
        _, at = _decoder.raw_decode(text, start)
        fields[key] = text[start:at]
        at = _skip(text, at)
        if text[at : at + 1] == "}":
            return fields
        if text[at : at + 1] != ",":
            raise ValueError("malformed JSON object")
        at = _skip(text, at + 1)


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _SPACE:
        at += 1
    return at
