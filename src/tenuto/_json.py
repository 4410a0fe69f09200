"""What tenuto stores as a JSON value, and what it refuses: the one place that decides.

Inputs, outputs, event data and custom status are JSON values and nothing else: tenuto
never pickles. Every entry point (the Python API, orchestrator and activity code, REST,
the Durable Functions routes, gRPC, the command line) encodes or parses values here, so
that one set of rules holds everywhere:

* the types are JSON's: dict (string keys), list or tuple, str, int, float, bool and
  None; any other type is a ``TypeError`` naming it;
* the value is valid JSON *text*, the same on both databases and for every client in
  any language: no NaN or Infinity, no string with a lone surrogate (what
  ``os.fsdecode`` makes of a file name that is not UTF-8), no integer of more than
  4300 digits (what Python itself decodes), no circular reference;
* it nests at most :data:`MAX_DEPTH` levels of lists and objects.

A value that breaks the last two rules raises :class:`~tenuto.InvalidJSON`, naming the
value and where in it the problem is. Checking costs little: the rules are read from the
JSON text with string methods, and the value is walked only to say where a problem is.

Reads are lenient instead (:func:`loads_shown`): a value stored before these rules, too
deep to show, reads as its JSON text rather than failing the read.

Payloads that arrive as JSON text from a Durable Task SDK are kept as that text, byte for
byte (:class:`Raw`, checked by the same rules when it is made): the SDKs compare what
they get back with what they sent. Stored columns hold the text itself; a history event
or message stores it spliced verbatim into its JSON object (:func:`dumps_record`), so
every reader still decodes the same value, and :func:`raw_fields` recovers the exact
text of each field for the SDK.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

from .errors import InvalidJSON
from .status import type_name

#: How deeply lists and objects may nest in a value (``[[1]]`` nests 2 levels).
MAX_DEPTH = 100
#: The most digits an integer may have: what Python decodes by default
#: (``sys.get_int_max_str_digits()``), so that every reader can read what is stored.
MAX_DIGITS = 4300
_TOO_MANY_DIGITS = 10**MAX_DIGITS
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A surrogate written as an escape, in JSON text that was parsed (a hint: checked after).
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONG_NUMBER = re.compile(rf"\d{{{MAX_DIGITS + 1}}}")
_CONTAINERS = (dict, list, tuple)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")

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


def raw(text: str, what: str = "value") -> Raw:
    """``text`` as a :class:`Raw` payload, checked by the rules of :func:`parse`:
    ``json.JSONDecodeError`` if it is not JSON text, :class:`~tenuto.InvalidJSON` if its
    value breaks a rule."""
    parse(text, what)
    return Raw(text)


def dumps(value: Any, what: str = "value") -> str:
    """Encode ``value`` as compact JSON text, checking every rule (see the module).

    Raises ``TypeError`` naming ``what`` and the offending type when ``value`` (or
    anything inside it) is not of a JSON type, and :class:`~tenuto.InvalidJSON` when it
    cannot be stored as JSON text. A :class:`Raw` value is its own text (checked when it
    was made).
    """
    if type(value) is Raw:
        return value.text
    try:
        text = _encoder.encode(value)
    except _NotJSON as exc:
        raise TypeError(
            f"{what} must be a JSON value (dict, list, str, int, float, bool or None), "
            f"but it contains a value of type {type_name(exc.kind)}; convert it before passing it "
            "(for example a datetime to an ISO string)"
        ) from None
    except RecursionError:
        raise _too_deep(what) from None
    except ValueError as exc:  # NaN / Infinity, an over-long integer, a circular reference
        raise _invalid_value(value, what, str(exc)) from None
    except TypeError as exc:  # non-string dict keys such as tuples
        raise TypeError(f"{what} is not valid JSON: {exc}") from None
    check(value, text, what)
    return text


def dumps_record(record: dict[str, Any]) -> str:
    """Encode a record the engine builds around values (a history event's fields, an
    inbox message). The values in it were checked where they entered; the level of
    nesting the record adds is not held against them. :class:`Raw` fields are spliced
    in as their own text."""
    if any(type(v) is Raw for v in record.values()):
        parts = (
            f"{_encoder.encode(key)}:{value.text if type(value) is Raw else _record(value)}"
            for key, value in record.items()
        )
        return "{" + ",".join(parts) + "}"
    return _record(record)


def _record(value: Any) -> str:
    """Encode what a record holds, with the checks of :func:`dumps_record`."""
    try:
        text = _encoder.encode(value)
    except RecursionError:
        raise _too_deep("a stored record") from None
    except ValueError as exc:
        raise _invalid_value(value, "a stored record", str(exc)) from None
    if not text.isascii() and _SURROGATE.search(text):
        raise _lone_surrogate("a stored record", _find(value, _has_surrogate) or "value")
    return text


def check(value: Any, text: str, what: str, max_depth: int | None = MAX_DEPTH) -> None:
    """Check the rules that a value's JSON text hints at: nesting (unless ``max_depth`` is
    ``None``), lone surrogates and over-long integers. ``text`` is the JSON text
    ``value`` was encoded to or parsed from: only if it shows a possible problem is
    ``value`` walked."""
    if max_depth is not None and _text_deeper_than(text, max_depth):
        raise _too_deep(what)
    hint = (not text.isascii() and _SURROGATE.search(text)) or (
        "\\u" in text and _ESCAPED_SURROGATE.search(text)
    )
    if hint and (where := _find(value, _has_surrogate)):
        raise _lone_surrogate(what, where)
    if len(text) > MAX_DIGITS and _digits_unchecked() and _LONG_NUMBER.search(text):
        where = _find(value, _too_long)
        if where:
            raise _too_many_digits(what, where)


def parse(text: str | bytes, what: str, *, max_depth: int | None = MAX_DEPTH) -> Any:
    """Decode JSON text that comes from outside (a request, a command line, an SDK), with
    the same rules as :func:`dumps`. ``max_depth=None`` leaves the nesting of the values
    inside to be checked where they are used (a request body nests them one level deeper
    than they are); text nested deeper than Python decodes is refused all the same.

    Text that is not JSON at all raises ``json.JSONDecodeError`` (callers say "not
    JSON" in their own terms); JSON text whose value breaks a rule raises
    :class:`~tenuto.InvalidJSON`.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError(f"not UTF-8 text ({exc.reason})", "", exc.start) from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except _Constant as exc:  # NaN and Infinity are not JSON at all
        raise json.JSONDecodeError(
            f"{exc.name} is not a JSON value", text, max(text.find(exc.name), 0)
        ) from None
    except _TooLarge as exc:
        raise InvalidJSON(
            f"{what} is not valid JSON text for tenuto: the number {exc.number[:40]} is too "
            "large for a 64-bit float; pass it as a string"
        ) from None
    except RecursionError:
        raise _too_deep(what) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer over Python's digit limit
        raise _invalid_value(None, what, str(exc)) from None
    check(value, text, what, max_depth)
    return value


def loads(text: str | None) -> Any:
    """Decode JSON text stored by tenuto; ``None`` (no value stored) decodes to ``None``."""
    if text is None:
        return None
    return _decoder.decode(text)


def loads_shown(text: str | None) -> Any:
    """Decode a stored value to show it (a status, a list page).

    A value that tenuto would refuse today but that an older version stored (nested
    deeper than :data:`MAX_DEPTH`), or text that does not decode, reads as its JSON text,
    a string, so that reading never fails on what is stored.
    """
    if text is None:
        return None
    try:
        value = _decoder.decode(text)
    except (ValueError, RecursionError):
        return text
    if _text_deeper_than(text, MAX_DEPTH):
        return text
    return value


def shown(value: Any) -> Any:
    """A decoded value to show: as it is, or its JSON text when it nests deeper than
    :data:`MAX_DEPTH` (stored by an older version; see :func:`loads_shown`)."""
    if not isinstance(value, _CONTAINERS) or not _deeper_than(value, MAX_DEPTH):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return f"(a value nested more than {MAX_DEPTH} levels deep)"


def is_text(text: str) -> bool:
    """Whether ``text`` can be stored as text: it holds no lone surrogate."""
    return text.isascii() or _SURROGATE.search(text) is None


# -- finding what is wrong -------------------------------------------------------------


class _Constant(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _TooLarge(Exception):
    def __init__(self, number: str) -> None:
        super().__init__(number)
        self.number = number


def _no_constant(name: str) -> Any:
    raise _Constant(name)


def _finite(number: str) -> float:
    value = float(number)
    if value in (float("inf"), float("-inf")):
        raise _TooLarge(number)
    return value


def _too_deep(what: str) -> InvalidJSON:
    return InvalidJSON(
        f"{what} is not valid JSON text for tenuto: it nests lists and objects more than "
        f"{MAX_DEPTH} levels deep; flatten it, or pass the deep part as a string"
    )


def _lone_surrogate(what: str, where: str) -> InvalidJSON:
    return InvalidJSON(
        f"{what} is not valid JSON text: the {where} holds a lone surrogate (such as "
        "'\\udcff', what os.fsdecode makes of a file name that is not UTF-8); JSON text is "
        "Unicode: decode bytes properly (or with errors='replace'), or pass them as base64"
    )


def _too_many_digits(what: str, where: str) -> InvalidJSON:
    which = f"the {where} is" if where else "it holds"
    return InvalidJSON(
        f"{what} is not valid JSON text: {which} an integer of more than {MAX_DIGITS} "
        "digits, which most JSON readers cannot decode; pass it as a string"
    )


def _invalid_value(value: Any, what: str, error: str) -> InvalidJSON:
    where = _find(value, _not_finite)
    if where:
        return InvalidJSON(
            f"{what} is not valid JSON text: the {where} is NaN or Infinity, which JSON "
            "cannot represent; use None or a string"
        )
    where = _find(value, _too_long)
    if where or "digits" in error:
        return _too_many_digits(what, where)
    return InvalidJSON(f"{what} is not valid JSON text: {error}")


def _has_surrogate(item: Any) -> bool:
    return isinstance(item, str) and not is_text(item)


def _not_finite(item: Any) -> bool:
    return isinstance(item, float) and (item != item or item in (float("inf"), float("-inf")))


def _too_long(item: Any) -> bool:
    return isinstance(item, int) and abs(item) >= _TOO_MANY_DIGITS


def _digits_unchecked() -> bool:
    """Whether Python itself lets integers of more than :data:`MAX_DIGITS` digits through
    encoding and decoding (its limit was raised or lifted in this process)."""
    limit = sys.get_int_max_str_digits()
    return limit == 0 or limit > MAX_DIGITS


def _text_deeper_than(text: str, limit: int) -> bool:
    """Whether the value of valid JSON ``text`` nests lists and objects more than
    ``limit`` levels deep, found from the text alone at the speed of string methods.

    Inside strings, quotes and backslashes are always escaped (``\\"``, ``\\\\``): with
    those escapes removed, the quotes left delimit strings, and what lies between strings
    is structure (outside strings, JSON text is ASCII). Keeping only its brackets and
    removing innermost pairs ``[]`` once per level empties them in as many passes as the
    value is deep.
    """
    if text.count("[") + text.count("{") <= limit:
        return False  # fewer containers than levels
    parts = text.replace("\\\\", "").replace('\\"', "").split('"')
    brackets = "".join(parts[::2]).encode("ascii", "ignore").translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels deep.

    Level by level, so that a wide value costs one pass over its containers. ``value``
    is never circular: it was encoded (which refuses that) or decoded from JSON text.
    """
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        inner: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            inner += [child for child in children if isinstance(child, _CONTAINERS)]
        level = inner
    return False


def _find(value: Any, bad: Callable[[Any], bool]) -> str:
    """Where in ``value`` the first item (or object key) that is ``bad`` is, described
    (``value``, ``value at ["files"][3]``, ``key at ["files"]``); ``""`` if none is."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    seen: set[int] = set()
    while stack:
        item, path = stack.pop()
        if bad(item):
            return _describe("value", path)
        if not isinstance(item, _CONTAINERS) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if bad(key):
                    return _describe("key", path)
                stack.append((child, (*path, key)))
        else:
            stack.extend((child, (*path, i)) for i, child in reversed(list(enumerate(item))))
    return ""


def _describe(kind: str, path: tuple[Any, ...]) -> str:
    if not path:
        return kind if kind == "value" else f"{kind} at the top level"
    steps = "".join(f"[{step!r}]" if isinstance(step, str) else f"[{step}]" for step in path)
    if len(steps) > 200:
        steps = f"{steps[:200]}..."
    return f"{kind} at {steps}"


# -- the fields of a stored record, as text ------------------------------------------


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
