"""Helpers shared by both systems' workloads: statistics, UDP stamps, process memory."""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable, Sequence

import psutil


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``values``, linearly interpolated."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50, p99, mean and max of durations given in seconds, in milliseconds."""
    ms = [v * 1000.0 for v in values_s]
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
        "max_ms": max(ms) if ms else float("nan"),
    }


def per_step_drift(completed_at: Sequence[float], window: int) -> dict[str, float]:
    """Time per step over the first and the last ``window`` steps, from the completion
    times of consecutive steps (epoch seconds, oldest first)."""
    if len(completed_at) < 2 * window + 1:
        raise ValueError(f"need at least {2 * window + 1} step completions")
    first = (completed_at[window] - completed_at[0]) / window
    last = (completed_at[-1] - completed_at[-1 - window]) / window
    return {
        "first_ms_per_step": first * 1000.0,
        "last_ms_per_step": last * 1000.0,
        "last_over_first": last / first if first > 0 else float("nan"),
        "steps": float(len(completed_at)),
    }


class StampReceiver:
    """A UDP socket to which activities report ``"<id> <started_at>"`` when they start."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def drain(self) -> list[float]:
        """Every start time received so far, without waiting."""
        self.sock.setblocking(False)
        out = []
        try:
            while True:
                out.append(float(self.sock.recv(512).split()[1]))
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        return out

    def first_after(self, t: float, timeout: float = 10.0) -> float:
        """The start time of the first activity reported to have started at or after
        ``t`` (epoch seconds); ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no activity started")
            self.sock.settimeout(remaining)
            started = float(self.sock.recv(512).split()[1])
            if started >= t:
                return started

    def close(self) -> None:
        self.sock.close()


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size (``VmHWM``) of a Linux process, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def rss_mb(pid: int) -> float:
    """The current resident set size of a process, in MB."""
    rss: int = psutil.Process(pid).memory_info().rss
    return rss / (1024.0 * 1024.0)


def wait_idle(pid: int, quiet: float = 0.5, timeout: float = 120.0) -> None:
    """Wait until process ``pid`` has used almost no CPU for ``quiet`` seconds."""
    proc = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    last = sum(proc.cpu_times()[:2])
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = sum(proc.cpu_times()[:2])
        if now - last < 0.02 * quiet:
            return
        last = now
    raise TimeoutError(f"process {pid} did not go idle within {timeout} s")


def poll_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    """Call ``check`` until it returns true; ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child Python process, plus ``extra``."""
    env = dict(os.environ)
    env.update(extra or {})
    return env
