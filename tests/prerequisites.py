"""What parts of the suite need from the machine beyond ``pip install -e '.[dev]'``, and
the block at the end of a run that says which tests were skipped for want of it.

A test that cannot run here calls ``lacking``: it is skipped, with a reason that names the
prerequisite, or fails when the prerequisite's ``TENUTO_REQUIRE_*`` variable is set (CI
sets them all, so that a gap there is never a skip scrolling by).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

import pytest


@dataclass(frozen=True)
class Prerequisite:
    """Something some tests need from the machine, and how to get it."""

    name: str
    require_var: str
    install: str

    def required(self) -> bool:
        return os.environ.get(self.require_var, "") not in ("", "0")


POSTGRES = Prerequisite("PostgreSQL", "TENUTO_REQUIRE_POSTGRES", "apt-get install -y postgresql")
BROWSER = Prerequisite("Chromium", "TENUTO_REQUIRE_BROWSER", "apt-get install -y chromium")
PREREQUISITES = (POSTGRES, BROWSER)


def lacking(prerequisite: Prerequisite, why: str, *, installed: bool = False) -> NoReturn:
    """Skip the running test for want of ``prerequisite``, or fail it if it is required.
    ``installed``: it is there but does not work (``why`` says how), so installing it is
    not what to do."""
    advice = "" if installed else f"\n    install it with: {prerequisite.install}"
    if prerequisite.required():
        pytest.fail(f"{prerequisite.require_var} is set, but {why}{advice}", pytrace=False)
    pytest.skip(f"needs {prerequisite.name}: {why}{advice}")


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def summary(skipped: Iterable[pytest.TestReport | pytest.CollectReport]) -> list[str]:
    """The lines that say how many tests were skipped, why, and what installs what is
    missing; none when nothing was skipped."""
    reasons = Counter(_reason(report) for report in skipped)
    lines = []
    for reason, count in reasons.most_common():
        lines.append(f"{count} {'test' if count == 1 else 'tests'} skipped: {reason}")
    if lines:
        required = " and ".join(f"{p.require_var}=1" for p in PREREQUISITES)
        lines.append(f"({required} turn these skips into failures; CI sets both.)")
    return lines
