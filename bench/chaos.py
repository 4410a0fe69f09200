"""``python -m bench.chaos --rounds 200 [--only kill,postgres,sqlite_lock,clock]``: the long
version of the fault-injection suite in ``tests/chaos/``.

It runs the same tests with ``TENUTO_CHAOS_ROUNDS`` set, so every round checks the same
invariants as in CI, only many more times. The PostgreSQL tests run on ``--postgres URL``
(or ``TENUTO_TEST_POSTGRES``), else on a throwaway server the suite starts; the restart
test starts its own server either way.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("kill", "postgres", "sqlite_lock", "clock")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--rounds", type=int, default=200, help="rounds per chaos test")
    parser.add_argument(
        "--only", default=",".join(SUITES), help=f"comma-separated subset of {','.join(SUITES)}"
    )
    parser.add_argument("--postgres", help="PostgreSQL URL for the tests run on both backends")
    parser.add_argument(
        "--backend", choices=("sqlite", "postgres", "both"), default="both", help="for kill/clock"
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {sorted(unknown)}; choose from {', '.join(SUITES)}")
    os.environ["TENUTO_CHAOS_ROUNDS"] = str(args.rounds)
    if args.postgres:
        os.environ["TENUTO_TEST_POSTGRES"] = args.postgres
    import pytest

    files = [str(ROOT / "tests" / "chaos" / f"test_chaos_{s}.py") for s in only]
    selection = [] if args.backend == "both" else ["-k", f"not {_other(args.backend)}"]
    return int(
        pytest.main(
            [*files, "-q", "-s", "-p", "no:cacheprovider", "-o", "timeout=0", *selection],
        )
    )


def _other(backend: str) -> str:
    return "postgres" if backend == "sqlite" else "sqlite"


if __name__ == "__main__":
    sys.exit(main())
