"""JSON encoding of user values, with errors that say what was wrong.

Inputs, outputs, event data and custom status are JSON values and nothing else: tenuto
never pickles. Encoding is strict (no NaN or Infinity, which are not JSON), so that what
a worker stores is exactly what any client, in any language, reads back.
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


def dumps(value: Any, what: str = "value") -> str:
    """Encode ``value`` as compact JSON text.

    Raises ``TypeError`` naming ``what`` and the offending type when ``value`` (or
    anything inside it) is not a JSON value.
    """
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
