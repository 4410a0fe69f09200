"""The suite's own set-up, as a contributor meets it: without ``TENUTO_TEST_POSTGRES`` it
runs the PostgreSQL tests on a throwaway server of its own, which no killed run leaves
behind; what it must skip is said in one block at the end, and ``TENUTO_REQUIRE_*`` turns
those skips into failures. The runs here are real ``pytest`` processes on real tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import wait_for
from pgserver import PREFIX, PostgresNotFound, TempPostgres, find_bindir
from prerequisites import POSTGRES, lacking

TESTS = Path(__file__).resolve().parent
POSTGRES_TEST = "tests/test_client.py::test_history_lists_events_oldest_first[postgres]"
POSTGRES_TEST_2 = "tests/test_client.py::test_query_filters_and_pages[postgres]"
BROWSER_TEST = "tests/test_dashboard.py::test_token_is_asked_for_and_sent"


@pytest.fixture
def tmpdir_for_servers() -> Iterator[Path]:
    """A temporary folder of their own for the servers made here (not ``tmp_path``: the
    ``postgres`` user must reach into it), to see what is left in it."""
    try:
        find_bindir()
    except PostgresNotFound as exc:
        lacking(POSTGRES, str(exc))
    folder = Path(tempfile.mkdtemp(prefix="tenuto-suite-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def servers_in(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{PREFIX}*"))


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie no longer does)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def pytest_process(tmpdir: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """``pytest`` on a few of the suite's tests, as a contributor's shell would start it:
    none of the variables that choose or require a prerequisite, unless given; its
    temporary folder ``tmpdir``. The output is read with ``communicate``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TENUTO_", "PYTEST_")) and k != "TMPDIR"
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=TESTS.parent,
        env={**clean, "TMPDIR": str(tmpdir), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_pytest(tmpdir: Path, *args: str, **env: str) -> tuple[int, str]:
    """Run ``pytest_process`` to the end; its exit code and output."""
    with pytest_process(tmpdir, *args, **env) as proc:
        out, _ = proc.communicate(timeout=240)
    return proc.returncode, out


def nothing_installed(folder: Path) -> dict[str, str]:
    """The variables that make a run behave as on a machine with neither PostgreSQL's
    programs nor Chromium (``folder`` has neither)."""
    return {"TENUTO_PG_BINDIR": str(folder), "TENUTO_CHROMIUM": str(folder / "chromium")}


def test_without_a_server_given_the_suite_runs_those_tests_on_a_server_of_its_own(
    tmpdir_for_servers: Path,
) -> None:
    code, out = run_pytest(tmpdir_for_servers, POSTGRES_TEST)
    assert code == 0, out
    assert "1 passed" in out and "skipped" not in out, out
    assert servers_in(tmpdir_for_servers) == [], "the run's server was left behind"


def test_pytest_xdist_workers_share_the_one_server_with_schemas_of_their_own(
    tmpdir_for_servers: Path,
) -> None:
    servers: set[Path] = set()  # every server seen during the run
    with pytest_process(tmpdir_for_servers, "-n", "2", POSTGRES_TEST, POSTGRES_TEST_2) as proc:
        outputs: list[str] = []
        reader = threading.Thread(target=lambda: outputs.append(proc.communicate()[0]))
        reader.start()
        while reader.is_alive():
            servers.update(servers_in(tmpdir_for_servers))
            reader.join(timeout=0.005)
    (out,) = outputs
    assert proc.returncode == 0, out
    assert "2 passed" in out and "skipped" not in out, out
    assert len(servers) == 1, f"servers made: {sorted(servers)}"
    assert servers_in(tmpdir_for_servers) == []


def test_what_is_missing_is_said_in_one_block_at_the_end(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, POSTGRES_TEST, BROWSER_TEST, **nothing_installed(tmp_path))
    assert code == 0, out
    block = out[out.index("= 2 skipped =") :].splitlines()
    assert block[1:6] == [
        "1 test skipped: needs PostgreSQL: no PostgreSQL server programs (initdb, pg_ctl, "
        f"postgres) in TENUTO_PG_BINDIR={tmp_path}",
        "    install it with: apt-get install -y postgresql",
        f"1 test skipped: needs Chromium: {tmp_path / 'chromium'} does not exist",
        "    install it with: apt-get install -y chromium",
        "(TENUTO_REQUIRE_POSTGRES=1 and TENUTO_REQUIRE_BROWSER=1 turn these skips into "
        "failures; CI sets both.)",
    ], out
    assert block[-1].strip("= ").startswith("2 skipped in"), out


def test_a_server_that_does_not_start_is_said_with_its_error_not_an_install_command(
    tmpdir_for_servers: Path,
) -> None:
    bindir = tmpdir_for_servers / "bin"
    bindir.mkdir()
    for tool in ("initdb", "pg_ctl", "postgres"):  # programs that are there but fail
        (bindir / tool).write_text(
            "#!/bin/sh\necho 'could not create directory: disk full' >&2\nexit 1\n"
        )
        (bindir / tool).chmod(0o755)
    bindir.chmod(0o755)
    code, out = run_pytest(tmpdir_for_servers, POSTGRES_TEST, TENUTO_PG_BINDIR=str(bindir))
    assert code == 0, out
    block = out[out.index("= 1 skipped =") :].splitlines()
    assert block[1] == (
        "1 test skipped: needs PostgreSQL: the suite's own PostgreSQL server did not start: "
        "initdb failed (exit 1): could not create directory: disk full"
    ), out
    assert "install it with" not in out
    assert servers_in(tmpdir_for_servers) == []


def test_required_prerequisites_that_are_missing_fail_the_run(tmp_path: Path) -> None:
    code, out = run_pytest(
        tmp_path,
        POSTGRES_TEST,
        BROWSER_TEST,
        **nothing_installed(tmp_path),
        TENUTO_REQUIRE_POSTGRES="1",
        TENUTO_REQUIRE_BROWSER="1",
    )
    assert code == 1, out
    assert "skipped" not in out, out
    assert "TENUTO_REQUIRE_POSTGRES is set, but no PostgreSQL server programs" in out
    assert "TENUTO_REQUIRE_BROWSER is set, but " in out
    assert "install it with: apt-get install -y postgresql" in out


@pytest.fixture
def server_in_a_process(
    tmpdir_for_servers: Path,
) -> Iterator[tuple[subprocess.Popen[str], Path, int]]:
    """A process that made and started a server and then just waits; the server's folder
    and its postmaster's pid. A postmaster the test did not see stopped is stopped after."""
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from pgserver import TempPostgres\n"
        "s = TempPostgres(); s.start(); print(s.root, flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(TESTS)],
        env={**os.environ, "TMPDIR": str(tmpdir_for_servers)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    root = Path(proc.stdout.readline().strip())
    postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
    assert running(postmaster)
    yield proc, root, postmaster
    proc.kill()
    proc.wait()
    proc.stdout.close()
    if running(postmaster):  # the test failed: leave nothing behind all the same
        os.kill(postmaster, signal.SIGQUIT)


def test_a_killed_run_leaves_no_server_behind(
    server_in_a_process: tuple[subprocess.Popen[str], Path, int],
) -> None:
    proc, root, postmaster = server_in_a_process
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not running(postmaster) and not root.exists(), timeout=30)


def test_a_server_whose_watchdog_was_killed_too_is_removed_by_the_next_one(
    server_in_a_process: tuple[subprocess.Popen[str], Path, int],
    tmpdir_for_servers: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc, root, postmaster = server_in_a_process
    watchdog = int((root / "watchdog.pid").read_text())
    os.kill(watchdog, signal.SIGKILL)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not running(watchdog))
    assert running(postmaster) and root.exists()
    monkeypatch.setenv("TMPDIR", str(tmpdir_for_servers))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    TempPostgres().destroy()
    assert not running(postmaster) and not root.exists()
    assert servers_in(tmpdir_for_servers) == []
