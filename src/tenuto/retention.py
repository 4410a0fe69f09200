"""Retention: how long finished instances are kept, and the purger that removes them.

A policy is a set of rules, each *keep instances that ended in this status (of this
orchestrator) for this long*::

    Retention.parse("COMPLETED=30d,FAILED=90d,TERMINATED=30d")
    Retention.parse("COMPLETED=30d,nightly_backup:COMPLETED=7d")   # one orchestrator apart

A status without a rule is kept forever; an orchestrator's own rule for a status wins
over the general one. Only COMPLETED, FAILED and TERMINATED have rules: PENDING,
RUNNING and PAUSED instances are never purged.

Where a worker's policy comes from, first found wins:

1. the policy stored in the database (``Client.set_retention``, ``tenuto retention
   set``): one place rules all workers;
2. the worker's own: ``tenuto worker/serve --retain ...``, else ``App(retention=...)``.

Workers purge in the background, in their own short transactions of at most
``batch`` instances (never inside a step's transaction), oldest first; rows that another
worker's purge holds are skipped (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite runs
one write transaction at a time), so no two workers purge the same instance. With
``export_to``, each batch is appended to a JSON Lines file in that folder (see
:mod:`tenuto.export`) and flushed to disk before the batch is deleted.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import _control
from ._background import BackgroundLoop
from .app import check_name
from .errors import InvalidType, ValidationError
from .export import lines
from .status import Status
from .store.base import Store, Tx

log = logging.getLogger("tenuto.retention")

#: The key of the stored policy in the store's settings.
SETTING = "retention"
FINAL = (Status.COMPLETED, Status.FAILED, Status.TERMINATED)
_RULE_RE = re.compile(r"^(?:(?P<name>.+):)?(?P<status>[A-Za-z]+)=(?P<keep>\S+)$")


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Keep instances that ended in ``status`` (of ``orchestrator``, or any) for ``keep``."""

    status: Status
    keep: timedelta
    orchestrator: str | None = None

    def __post_init__(self) -> None:
        if self.status not in FINAL:
            raise ValidationError(
                f"retention applies to finished instances: {self.status.value} is not one of "
                "COMPLETED, FAILED, TERMINATED (paused and running instances are never purged)"
            )
        if self.keep <= timedelta(0):
            raise ValidationError(
                f"the time to keep {self.status.value} instances must be positive"
            )
        if self.orchestrator is not None:
            check_name(self.orchestrator, "orchestrator name")

    def __str__(self) -> str:
        head = f"{self.orchestrator}:" if self.orchestrator else ""
        return f"{head}{self.status.value}={_duration(self.keep)}"


def _duration(keep: timedelta) -> str:
    seconds = keep.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class Retention:
    """A retention policy: rules, and optionally a folder to export purged instances to.

    ``Retention.parse("COMPLETED=30d,FAILED=90d")``; ``App(retention=...)`` and
    ``Client.set_retention(...)`` also take the text or a mapping such as
    ``{"COMPLETED": "30d", "backup:FAILED": timedelta(days=7)}``."""

    rules: tuple[RetentionRule, ...] = ()
    export_to: str | None = None
    #: Where the policy came from (``"stored"``, ``"worker"``): shown, never stored.
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        seen: set[tuple[Status, str | None]] = set()
        for rule in self.rules:
            key = (rule.status, rule.orchestrator)
            if key in seen:
                who = f" of {rule.orchestrator!r}" if rule.orchestrator else ""
                raise ValidationError(f"two retention rules for {rule.status.value}{who}: keep one")
            seen.add(key)

    @classmethod
    def parse(cls, spec: str, export_to: str | None = None) -> Retention:
        """``STATUS=DURATION`` or ``ORCHESTRATOR:STATUS=DURATION``, comma-separated;
        durations such as ``12h``, ``30d``, ``2w``."""
        from .cli.params import parse_duration

        rules = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            m = _RULE_RE.match(part)
            if m is None:
                raise ValidationError(
                    f"invalid retention rule {part!r}: write STATUS=DURATION such as "
                    "COMPLETED=30d, or ORCHESTRATOR:STATUS=DURATION such as backup:FAILED=90d"
                )
            rules.append(_rule(m["status"], parse_duration(m["keep"]), m["name"]))
        if not rules:
            raise ValidationError("an empty retention policy: give rules such as COMPLETED=30d")
        return cls(tuple(rules), export_to)

    @classmethod
    def of(cls, value: Retention | str | Mapping[str, Any]) -> Retention:
        """A policy from a :class:`Retention`, its text, or a mapping of rules."""
        if isinstance(value, Retention):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            texts = []
            for key, keep in value.items():
                if isinstance(keep, timedelta):
                    keep = f"{keep.total_seconds():g}s"
                texts.append(f"{key}={keep}")
            return cls.parse(",".join(texts))
        raise InvalidType(
            "a retention policy is a tenuto.Retention, a text such as 'COMPLETED=30d', or a "
            f"mapping of rules, not {type(value).__name__}"
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "rules": [
                    {
                        "status": r.status.value,
                        "keep_seconds": r.keep.total_seconds(),
                        "orchestrator": r.orchestrator,
                    }
                    for r in self.rules
                ],
                "export_to": self.export_to,
            }
        )

    @classmethod
    def from_json(cls, text: str, origin: str = "") -> Retention:
        data = json.loads(text)
        rules = tuple(
            _rule(r["status"], timedelta(seconds=r["keep_seconds"]), r.get("orchestrator"))
            for r in data["rules"]
        )
        return cls(rules, data.get("export_to"), origin)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.rules)


def _rule(status: str, keep: timedelta, name: str | None) -> RetentionRule:
    try:
        parsed = Status(status.upper())
    except ValueError:
        raise ValidationError(
            f"unknown status {status!r} in a retention rule: use COMPLETED, FAILED or TERMINATED"
        ) from None
    return RetentionRule(parsed, keep, name)


def stored(store: Store) -> Retention | None:
    """The policy stored in the database, if any."""
    text = store.read(lambda r: r.setting(SETTING))
    return None if text is None else Retention.from_json(text, "stored")


def store_policy(tx: Tx, policy: Retention | None) -> None:
    """Store ``policy`` for every worker of the database (``None``: remove it)."""
    tx.put_setting(SETTING, None if policy is None else policy.to_json())


def effective(store: Store, own: Retention | None) -> Retention | None:
    """The policy a worker applies: the stored one, else its own."""
    return stored(store) or own


# -- purging --------------------------------------------------------------------------


def purge_batch(
    tx: Tx,
    policy: Retention,
    rule: RetentionRule,
    now: float,
    limit: int,
    export: Callable[[list[str]], None] | None = None,
) -> int:
    """Purge up to ``limit`` instances that ``rule`` lets go (in this transaction)."""
    before = now - rule.keep.total_seconds()
    if rule.orchestrator is not None:
        names, exclude = [rule.orchestrator], []
    else:  # orchestrators with a rule of their own for this status follow that one
        names = None
        exclude = [
            r.orchestrator for r in policy.rules if r.orchestrator and r.status is rule.status
        ]
    ids = tx.expired(rule.status, before, names, exclude, limit)
    if not ids:
        return 0
    if export is not None:
        export(ids)
    return _control.purge(tx, ids, by="retention")


class Exporter:
    """Appends purged instances to ``<folder>/purged-<UTC date>-<worker>.jsonl``."""

    def __init__(self, folder: str, worker: str) -> None:
        if not os.path.isdir(folder):
            raise ValidationError(
                f"the retention export folder does not exist: {folder} (create it, or give another)"
            )
        self.folder = folder
        self.worker = re.sub(r"[^A-Za-z0-9_.-]", "_", worker)

    def writer(self, tx: Tx) -> Callable[[list[str]], None]:
        def write(ids: list[str]) -> None:
            text = "".join(line + "\n" for line in lines(tx, ids))
            day = datetime.now(UTC).strftime("%Y-%m-%d")
            path = os.path.join(self.folder, f"purged-{day}-{self.worker}.jsonl")
            # On disk before the rows go: a crash may export an instance twice, never lose it.
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())

        return write


class Purger(BackgroundLoop):
    """Runs a worker's retention in a background thread: every ``interval`` seconds, and
    again at once (after ``gap`` seconds) while batches come back full."""

    thread_name = "tenuto-retention"
    what = "retention: a purge"

    def __init__(
        self,
        store: Store,
        own: Retention | None,
        worker: str,
        *,
        clock: Callable[[], float],
        batch: int = 200,
        interval: float = 60.0,
        gap: float = 0.05,
    ) -> None:
        if batch < 1:
            raise ValidationError("the retention batch must be at least 1")
        super().__init__(store, worker, log, interval=interval, gap=gap)
        self.own = own
        self.clock = clock
        self.batch = batch
        self.purged = 0

    def tick(self) -> bool:
        return self.run_once()

    def run_once(self) -> bool:
        """One batch per rule of the effective policy; whether any batch came back full
        (more is waiting)."""
        policy = effective(self.store, self.own)
        if policy is None:
            return False
        exporter = Exporter(policy.export_to, self.worker) if policy.export_to else None
        full = False
        for rule in policy.rules:
            if self.halted:
                break

            def batch(tx: Tx, rule: RetentionRule = rule) -> int:
                export = exporter.writer(tx) if exporter is not None else None
                return purge_batch(tx, policy, rule, self.clock(), self.batch, export)

            count = self.store.run(batch)
            self.purged += count
            full = full or count >= self.batch
        return full


__all__ = ["Purger", "Retention", "RetentionRule"]
