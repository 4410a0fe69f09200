"""Run the Durable Task SDK's own end-to-end tests against tenuto.

``python -m bench.interop --suite PATH --db sqlite|postgres [--pg-url URL]``

``PATH`` is a checkout of durabletask-python (the repository, not the package). The
runner copies the named test files of its ``tests/durabletask/`` folder (and their
``_port_utils.py`` helper) into a temporary folder, next to a ``conftest.py`` that swaps
``durabletask.testing.create_test_backend`` for one that starts ``tenuto serve
--grpc-port`` (:mod:`bench.interop_backend`), runs them there with pytest, and prints a
table: file, passed, failed, skipped. Nothing of theirs is kept in this repository.

Tests that need durable entities are deselected (``-k 'not entit'``) unless
``--with-entities`` is given, which also runs their entity and schedule files
(:data:`ENTITY_FILES`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .databases import DEFAULT_PG_URL

#: Their end-to-end test files that run against a backend.
FILES = (
    "test_orchestration_e2e.py",
    "test_orchestration_async_e2e.py",
    "test_rewind_e2e.py",
    "test_orchestration_versioning_e2e.py",
    "test_work_item_filters_e2e.py",
    "test_batch_actions.py",
)
#: Their end-to-end tests of durable entities (and of schedules, built on entities): run
#: with ``--with-entities``.
ENTITY_FILES = (
    "entities/test_class_based_entities_e2e.py",
    "entities/test_function_based_entities_e2e.py",
    "entities/test_delayed_signals_e2e.py",
    "scheduled/test_scheduled_e2e.py",
)
HELPERS = ("_port_utils.py",)
ENTITIES = "entit"

_CONFTEST = """\
import _tenuto_backend

_tenuto_backend.install()
"""
_PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)


def _check_plugins(tests: Path, files: tuple[str, ...]) -> None:
    """Their async tests need pytest-asyncio: without it they fail, which would read as
    tenuto failing them. ``tests`` is where the files were laid out."""
    import importlib.util

    needs = [f for f in files if "async def test" in (tests / f).read_text()]
    if needs and importlib.util.find_spec("pytest_asyncio") is None:
        raise SystemExit(
            f"pytest-asyncio is not installed, and their async tests need it ({', '.join(needs)}): "
            "pip install -e '.[bench]' (it brings durabletask, pytest and pytest-asyncio)"
        )


def prepare(suite: Path, files: tuple[str, ...], into: Path) -> None:
    """Lay out their tests under ``into`` as ``tests/durabletask/...`` (their imports
    say ``from tests.durabletask._port_utils import ...``), with the swap installed."""
    source = suite / "tests" / "durabletask"
    missing = [f for f in (*files, *HELPERS) if not (source / f).is_file()]
    if missing:
        raise SystemExit(
            f"{source} lacks {', '.join(missing)}: --suite must name a checkout of "
            "durabletask-python (the repository, with its tests/ folder)"
        )
    target = into / "tests" / "durabletask"
    target.mkdir(parents=True)
    (into / "tests" / "__init__.py").write_text("")
    (target / "__init__.py").write_text("")
    for name in (*files, *HELPERS):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).parent.joinpath("__init__.py").touch()
        shutil.copyfile(source / name, target / name)
    shutil.copyfile(Path(__file__).with_name("interop_backend.py"), into / "_tenuto_backend.py")
    (into / "conftest.py").write_text(_CONFTEST)
    (into / "pytest.ini").write_text(_PYTEST_INI)


def run(
    suite: Path,
    db: str,
    *,
    files: tuple[str, ...] = FILES,
    with_entities: bool = False,
    extra: list[str] | None = None,
) -> dict[str, Counts]:
    """Run the files against tenuto on ``db`` (``sqlite`` or a PostgreSQL URL)."""
    with tempfile.TemporaryDirectory(prefix="tenuto-interop-suite-") as tmp:
        root = Path(tmp)
        prepare(suite, files, root)
        _check_plugins(root / "tests" / "durabletask", files)
        report = root / "report.xml"
        args = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfE",
            f"--junitxml={report}",
            "--timeout=120",
            *[f"tests/durabletask/{f}" for f in files],
        ]
        if not with_entities:
            args += ["-k", f"not {ENTITIES}"]
        args += extra or []
        env = {**os.environ, "TENUTO_INTEROP_DB": db}
        subprocess.run(args, cwd=root, env=env, check=False)
        return _counts(report, files)


def _counts(report: Path, files: tuple[str, ...]) -> dict[str, Counts]:
    out = {f: Counts() for f in files}
    if not report.exists():
        raise SystemExit("pytest wrote no report: see its output above")
    for case in ET.parse(report).getroot().iter("testcase"):
        # "tests.durabletask.entities.test_x" (a class name may follow): the file's path.
        parts = case.get("classname", "").split(".")[2:]
        while parts and not parts[-1].startswith("test"):
            parts.pop()
        module = "/".join(parts) + ".py"
        counts = out.setdefault(module, Counts())
        if case.find("skipped") is not None:
            counts.skipped += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            counts.failed += 1
            counts.failures.append(case.get("name", "?"))
        else:
            counts.passed += 1
    return out


def table(results: dict[str, Counts]) -> str:
    """A Markdown table: file, passed, failed, skipped (and a total)."""
    lines = ["| file | passed | failed | skipped |", "| --- | ---: | ---: | ---: |"]
    total = Counts()
    for name, c in results.items():
        lines.append(f"| `{name}` | {c.passed} | {c.failed} | {c.skipped} |")
        total.passed += c.passed
        total.failed += c.failed
        total.skipped += c.skipped
    lines.append(f"| **total** | {total.passed} | {total.failed} | {total.skipped} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.interop",
        description="Run durabletask-python's own end-to-end tests against tenuto.",
    )
    parser.add_argument(
        "--suite", required=True, type=Path, help="a checkout of durabletask-python"
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (--db postgres)"
    )
    parser.add_argument(
        "--with-entities", action="store_true", help="also run the tests that need entities"
    )
    parser.add_argument(
        "--file",
        action="append",
        choices=FILES + ENTITY_FILES,
        help="run only this file (repeatable)",
    )
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args(argv)
    db = "sqlite" if args.db == "sqlite" else args.pg_url
    files = tuple(args.file) if args.file else FILES
    if args.with_entities and not args.file:
        files += ENTITY_FILES
    results = run(
        args.suite, db, files=files, with_entities=args.with_entities, extra=args.pytest_args
    )
    print(f"\ndurabletask e2e tests against tenuto on {args.db}:\n")
    print(table(results))
    failed = [f"{name}::{t}" for name, c in results.items() for t in c.failures]
    if failed:
        print("\nfailed:\n" + "\n".join(f"  {t}" for t in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
