"""The workloads, run on tenuto in its most natural form.

(a)-(d) run an in-process worker with its default settings (``with tenuto.Worker(app,
url)``) and start instances with ``Client.start_many`` ((a), (b): tenuto's way to start
many at once, one transaction) or ``Client.start``; (e)-(g) run the worker in a separate
process (:mod:`bench.worker_proc`) so that pause, resume and memory are measured across
processes. Every function returns a flat dict of numbers.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import tenuto

from .apps import STAMP_ADDR_ENV, app, chain, ticker, waiter
from .common import (
    StampReceiver,
    peak_rss_mb,
    per_step_drift,
    poll_until,
    python_env,
    rss_mb,
    summary_ms,
    wait_idle,
)
from .scale import Scale

Result = dict[str, Any]


def _warmup(client: tenuto.Client, n: int) -> None:
    """Run ``n`` one-activity orchestrations to completion (the same warm-up as DBOS)."""
    ids = [client.start(chain, 1) for _ in range(n)]
    for iid in ids:
        client.wait(iid, timeout=120)


def _run_many(url: str, count: int, steps: int, warmup: int) -> Result:
    """Start ``count`` orchestrations of ``steps`` activities; time from the first start
    to the moment the client has seen the last one complete (``Client.wait_many``)."""
    with tenuto.Worker(app, url), tenuto.Client(url, app=app) as client:
        _warmup(client, warmup)
        t0 = time.time()
        ids = client.start_many(chain, [steps] * count)  # tenuto's way to start many
        started = time.time()
        finals = client.wait_many(ids, timeout=600)  # and to wait for many
        seen = time.time()
    bad = [
        s for s in finals if s.runtime_status is not tenuto.Status.COMPLETED or s.output != steps
    ]
    if bad:
        raise RuntimeError(f"{len(bad)} instances did not complete correctly: {bad[0]}")
    end = max(s.completed_at.timestamp() for s in finals if s.completed_at is not None)
    seconds = seen - t0
    return {
        "seconds": seconds,
        "workflows_per_s": count / seconds,
        "steps_per_s": count * steps / seconds,
        "start_seconds": started - t0,
        "stored_completion_seconds": end - t0,
    }


def workload_a(url: str, scale: Scale) -> Result:
    """(a) Many orchestrations of one activity: throughput."""
    return _run_many(url, scale.a_workflows, 1, scale.warmup)


def workload_b(url: str, scale: Scale) -> Result:
    """(b) Orchestrations of five activities: steps per second."""
    return _run_many(url, scale.b_workflows, scale.b_steps, scale.warmup)


def _one_chain(url: str, steps: int, warmup: int) -> tuple[float, list[float]]:
    """Run one orchestration of ``steps`` sequential activities; returns its duration
    (start call until the client has seen it complete) and the completion times of its
    activities."""
    with tenuto.Worker(app, url), tenuto.Client(url, app=app) as client:
        _warmup(client, warmup)
        t0 = time.time()
        iid = client.start(chain, steps)
        final = client.wait(iid, timeout=3600)
        seconds = time.time() - t0
        if final.runtime_status is not tenuto.Status.COMPLETED or final.output != steps:
            raise RuntimeError(f"the chain did not complete correctly: {final}")
        assert final.completed_at is not None
        done = [e.timestamp.timestamp() for e in client.history(iid) if e.type == "TaskCompleted"]
    if len(done) != steps:
        raise RuntimeError(f"expected {steps} TaskCompleted events, found {len(done)}")
    return seconds, done


def workload_c(url: str, scale: Scale) -> Result:
    """(c) One orchestration of sequential activities: time per step."""
    seconds, _ = _one_chain(url, scale.c_steps, scale.warmup)
    return {"seconds": seconds, "ms_per_step": seconds * 1000.0 / scale.c_steps}


def workload_d(url: str, scale: Scale) -> Result:
    """(d) A long orchestration: time per step of the last window vs the first, from
    the timestamps of its ``TaskCompleted`` history events."""
    seconds, done = _one_chain(url, scale.d_steps, scale.warmup)
    return {"seconds": seconds, **per_step_drift(done, scale.d_window)}


@contextlib.contextmanager
def worker_process(
    url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A tenuto worker for :mod:`bench.apps` in a separate process, stopped on exit."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.worker_proc", url], env=python_env(env))
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def workload_e(url: str, scale: Scale) -> Result:
    """(e) Pause latency, with the worker in another process.

    A long orchestration of ``stamp`` activities runs; each sample lets it run a few
    milliseconds, times ``client.pause()``, waits 30 ms (an activity in flight finishes
    and its result is stored), then times from the ``client.resume()`` call to the start
    of the next activity (its ``activity_info().started_at``, sent over UDP).
    """
    stamps = StampReceiver()
    pauses: list[float] = []
    resume_calls: list[float] = []
    to_next: list[float] = []
    violations = 0
    rng = random.Random(6)
    try:
        with (
            worker_process(url, {STAMP_ADDR_ENV: stamps.address}),
            tenuto.Client(url, app=app) as client,
        ):
            iid = client.start(ticker, 10**9)
            stamps.first_after(0.0, timeout=60)
            for _ in range(scale.e_samples):
                time.sleep(rng.uniform(0.005, 0.03))
                t = time.perf_counter()
                client.pause(iid, reason="bench")
                pauses.append(time.perf_counter() - t)
                paused_at = time.time()
                time.sleep(0.03)
                violations += sum(1 for s in stamps.drain() if s > paused_at)
                t_wall, t = time.time(), time.perf_counter()
                client.resume(iid, reason="bench")
                resume_calls.append(time.perf_counter() - t)
                to_next.append(stamps.first_after(t_wall) - t_wall)
            client.terminate(iid, reason="bench done")
    finally:
        stamps.close()
    if violations:
        raise RuntimeError(f"{violations} activities started while paused")
    return {
        "samples": len(pauses),
        **{f"pause_{k}": v for k, v in summary_ms(pauses).items()},
        **{f"resume_call_{k}": v for k, v in summary_ms(resume_calls).items()},
        **{f"resume_to_next_{k}": v for k, v in summary_ms(to_next).items()},
    }


def _count(client: tenuto.Client, status: tenuto.Status, name: str) -> int:
    """How many instances of ``name`` have ``status`` (paging through ``query``)."""
    total, cursor = 0, None
    while True:
        page = client.query(status=status, name=name, limit=1000, cursor=cursor)
        total += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return total


def workload_fg(url: str, scale: Scale) -> Result:
    """(f) ``pause_many`` and ``resume_many`` over N running instances, and (g) the
    memory of the worker process that holds them while they are paused.

    N ``waiter`` instances each run one activity, then wait for an event: they are
    RUNNING with nothing to do. With the worker idle, ``pause_many`` then
    ``resume_many`` are timed; the worker's RSS is read after the pause, and its peak
    RSS (``VmHWM``, over its whole life) at the end.
    """
    n = scale.f_instances
    with worker_process(url) as proc, tenuto.Client(url, app=app) as client:
        t0 = time.time()
        for i in range(n):
            client.start(waiter, i, instance_id=f"waiter-{i:06d}")
        start_s = time.time() - t0
        poll_until(lambda: _count(client, tenuto.Status.RUNNING, "waiter") == n, 600, 0.5)
        wait_idle(proc.pid)
        settle_s = time.time() - t0
        rss_running = rss_mb(proc.pid)

        t = time.perf_counter()
        paused = client.pause_many(name="waiter", reason="bench")
        pause_s = time.perf_counter() - t
        time.sleep(1.0)
        wait_idle(proc.pid)
        rss_paused = rss_mb(proc.pid)
        peak_paused = peak_rss_mb(proc.pid)

        t = time.perf_counter()
        resumed = client.resume_many(name="waiter", reason="bench")
        resume_s = time.perf_counter() - t
        wait_idle(proc.pid)
        peak_end = peak_rss_mb(proc.pid)
    if paused != n or resumed != n:
        raise RuntimeError(f"pause_many changed {paused}, resume_many {resumed}; expected {n}")
    return {
        "instances": n,
        "pause_many_s": pause_s,
        "resume_many_s": resume_s,
        "start_s": start_s,
        "settle_s": settle_s,
        "rss_running_mb": rss_running,
        "rss_paused_mb": rss_paused,
        "peak_rss_paused_mb": peak_paused,
        "peak_rss_mb": peak_end,
    }


WORKLOADS = {
    "a": workload_a,
    "b": workload_b,
    "c": workload_c,
    "d": workload_d,
    "e": workload_e,
    "fg": workload_fg,
}
