"""Retry policies for activities."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

#: What happens when the last attempt of a call fails (see ``RetryPolicy.on_exhausted``).
EXHAUSTED_POLICIES = ("raise", "pause")


def _seconds(value: float | timedelta, what: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValueError(f"RetryPolicy.{what} must not be negative (got {value!r})")
    return seconds


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a failing activity is tried again.

    Attempt ``n`` (counting from 1) that fails is retried after
    ``min(first_delay * backoff ** (n - 1), max_delay)`` seconds, until ``max_attempts``
    attempts have failed; then the orchestrator gets ``ActivityFailed``. Errors whose type
    name (qualified like ``"builtins.ValueError"`` or bare like ``"ValueError"``) is in
    ``non_retryable`` fail at once. Retries are held, like any activity, while the instance
    is paused.

    ``on_exhausted``: what happens when the last attempt fails. ``"raise"``: waiting on
    the call raises :class:`~tenuto.ActivityFailed`. ``"pause"``: the instance pauses
    (``pause.source == "failure"``, the error in the pause reason); resuming it runs the
    call again with a fresh attempt budget, and ``resume(..., deliver_failure=True)``
    hands the failure to the code instead. ``None`` (the default): the app's
    (``App(on_exhausted=...)``, itself ``"raise"`` by default).
    """

    max_attempts: int = 3
    first_delay: float | timedelta = 1.0
    backoff: float = 2.0
    max_delay: float | timedelta = 300.0
    non_retryable: tuple[str, ...] = field(default_factory=tuple)
    on_exhausted: str | None = None

    def __post_init__(self) -> None:
        if self.on_exhausted not in (None, *EXHAUSTED_POLICIES):
            raise ValueError(
                f"RetryPolicy.on_exhausted must be 'raise' or 'pause' (got {self.on_exhausted!r})"
            )
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(
                f"RetryPolicy.max_attempts must be an int of at least 1 (got {self.max_attempts!r})"
            )
        if self.backoff < 1:
            raise ValueError(f"RetryPolicy.backoff must be at least 1 (got {self.backoff!r})")
        object.__setattr__(self, "first_delay", _seconds(self.first_delay, "first_delay"))
        object.__setattr__(self, "max_delay", _seconds(self.max_delay, "max_delay"))
        object.__setattr__(self, "non_retryable", tuple(self.non_retryable))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        first = float(self.first_delay)  # type: ignore[arg-type]
        return min(first * self.backoff ** (attempt - 1), float(self.max_delay))  # type: ignore[arg-type]

    def retries(self, error_type: str, attempt: int) -> bool:
        """Whether a failure of ``error_type`` on attempt ``attempt`` is tried again."""
        if attempt >= self.max_attempts:
            return False
        bare = error_type.rsplit(".", 1)[-1]
        return error_type not in self.non_retryable and bare not in self.non_retryable

    def to_json(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "first_delay": self.first_delay,
            "backoff": self.backoff,
            "max_delay": self.max_delay,
            "non_retryable": list(self.non_retryable),
            # Said only when set: a policy stored before it existed reads the same.
            **({} if self.on_exhausted is None else {"on_exhausted": self.on_exhausted}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RetryPolicy:
        return cls(
            max_attempts=data["max_attempts"],
            first_delay=data["first_delay"],
            backoff=data["backoff"],
            max_delay=data["max_delay"],
            non_retryable=tuple(data.get("non_retryable", ())),
            on_exhausted=data.get("on_exhausted"),
        )
