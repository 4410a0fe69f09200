"""A throwaway PostgreSQL server: ``initdb`` into a temporary folder, ``pg_ctl`` to start,
stop and restart it. The suite's own server (when ``TENUTO_TEST_POSTGRES`` is unset) and the
tests that restart a server (never the shared one) use it.

Every server has a watchdog: a small process, in a session of its own, that reads a pipe
held by the process that made the server. When that process ends in any way (``destroy``,
a crash, ``kill -9``), the pipe closes, and the watchdog stops the postmaster and removes
the folder. Folders whose watchdog was killed too are removed by the next server made
here (``sweep_stale``).

Run as a script (``python pgserver.py watch ...``), this module is that watchdog.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Points the lookup of PostgreSQL's server programs at one folder (``initdb``,
#: ``pg_ctl``). A folder without them makes the suite behave as on a machine without
#: PostgreSQL, which is how its "skipped" summary is checked.
BINDIR_VAR = "TENUTO_PG_BINDIR"
PREFIX = "tenuto-pg-"
_TOOLS = ("initdb", "pg_ctl", "postgres")
#: A folder without a watchdog's pid this long after it was made is a leftover of a run
#: killed while it was being made.
_UNCLAIMED_AFTER = 600.0


class PostgresNotFound(RuntimeError):
    """PostgreSQL's server programs are not installed (or not where ``TENUTO_PG_BINDIR``
    points)."""


def _version_key(bindir: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name))


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: ``$TENUTO_PG_BINDIR``, else the newest
    ``/usr/lib/postgresql/*/bin`` (Debian's layout), else the ``PATH``."""

    def complete(folder: Path) -> bool:
        return all((folder / tool).is_file() for tool in _TOOLS)

    chosen = os.environ.get(BINDIR_VAR)
    if chosen:
        if complete(Path(chosen)):
            return Path(chosen)
        raise PostgresNotFound(
            f"no PostgreSQL server programs ({', '.join(_TOOLS)}) in {BINDIR_VAR}={chosen}"
        )
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("initdb")
    candidates = [*debian, *([Path(on_path).resolve().parent] if on_path else [])]
    for folder in candidates:
        if complete(folder):
            return folder
    raise PostgresNotFound(
        f"PostgreSQL's server programs ({', '.join(_TOOLS)}) are not installed "
        "(looked in /usr/lib/postgresql/*/bin and on PATH)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tool(bindir: Path, tool: str, *args: str) -> list[str]:
    """The command line for one of PostgreSQL's programs; as root, run as ``postgres``
    (initdb and the postmaster refuse to run as root)."""
    cmd = [str(bindir / tool), *args]
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _stop_and_remove(bindir: Path, root: Path) -> None:
    """Stop the postmaster of ``root`` at once, if one runs, and remove ``root``."""
    if (root / "data" / "postmaster.pid").exists():
        subprocess.run(
            _tool(bindir, "pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop"),
            capture_output=True,
            timeout=60,
            check=False,
        )
    shutil.rmtree(root, ignore_errors=True)


def _watching(pid: int, root: Path) -> bool:
    """Whether process ``pid`` is the live watchdog of ``root`` (not a zombie, nor another
    process that was given its pid since)."""
    if not Path("/proc/self").exists():  # no /proc here: trust the pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        return str(root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def sweep_stale(bindir: Path) -> list[Path]:
    """Stop and remove the servers left in the temporary folder by runs whose watchdog is
    gone too; returns the folders removed."""
    removed = []
    for root in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        pidfile = root / "watchdog.pid"
        try:
            if pidfile.exists():
                stale = not _watching(int(pidfile.read_text()), root)
            else:  # being made right now, or by a run killed before its watchdog started
                stale = time.time() - root.stat().st_mtime > _UNCLAIMED_AFTER
        except (OSError, ValueError):
            continue  # removed meanwhile, or a pid file half-written
        if stale:
            _stop_and_remove(bindir, root)
            removed.append(root)
    return removed


class TempPostgres:
    """A new, empty PostgreSQL server in a temporary folder, on a free loopback port.
    ``start``, ``stop`` and ``start`` again as often as needed; ``destroy`` at the end."""

    def __init__(self) -> None:
        self.bindir = find_bindir()  # raises PostgresNotFound
        sweep_stale(self.bindir)
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        self._watchdog = subprocess.Popen(
            [sys.executable, __file__, "watch", str(self.bindir), str(self.root)],
            stdin=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C or a kill of this process group spares it
        )
        (self.root / "watchdog.pid").write_text(str(self._watchdog.pid))
        self.data = self.root / "data"
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        try:
            self._run(
                "initdb",
                *("-D", str(self.data), "-A", "trust", "-U", "postgres"),
                *("--no-sync", "-E", "UTF8"),
            )
        except BaseException:
            self.destroy()
            raise
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "max_connections = 100\n"
            )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            _tool(self.bindir, tool, *args), capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:  # one line, to read among the skip reasons
            said = " / ".join((done.stderr or done.stdout).strip().splitlines())
            raise RuntimeError(f"{tool} failed (exit {done.returncode}): {said}")

    def start(self) -> None:
        log = self.root / "log"
        try:
            self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "start")
        except RuntimeError as exc:  # pg_ctl only says "Examine the log output"
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise RuntimeError(" / ".join([str(exc), *tail])) from None

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop the server and remove its folder (the watchdog does both when told)."""
        if self._watchdog.stdin is not None:
            self._watchdog.stdin.close()
        self._watchdog.wait(timeout=120)


def _watch(bindir: Path, root: Path) -> None:
    """The watchdog: wait for end of file on stdin, then stop the server and remove it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        sys.stdin.buffer.read()  # returns when every writer (the owner) has gone
    _stop_and_remove(bindir, root)


if __name__ == "__main__" and sys.argv[1:2] == ["watch"]:
    _watch(Path(sys.argv[2]), Path(sys.argv[3]))
