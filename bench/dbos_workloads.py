"""The same workloads on DBOS Transact, configured as its documentation recommends.

* The system database is the URL given (SQLite file or PostgreSQL database); on SQLite
  every connection gets the same journal mode and ``synchronous`` level as tenuto's
  store in that run (WAL, NORMAL or FULL), so both systems pay for the same durability.
* Many workflows (a, b) go through a DBOS queue (``DBOS.register_queue`` then
  ``Queue.enqueue``), the documented way to run many workflows, with its polling
  interval tuned from the default 1 s down to 0.05 s. One long workflow (c, d) is a
  plain call of the workflow function, which runs it durably in the calling thread.
* Logging is at WARNING, like tenuto's worker in these runs (nothing per step).
* Warm-up: the same ``warmup`` one-step workflows as tenuto, through the same path.

DBOS has no pause. For (e) the benchmark also measures its nearest analogue, cancel and
resume (``DBOSClient.cancel_workflow`` / ``resume_workflow``) across processes, which
stops the workflow and restarts it from its recorded steps; (f) and (g) are tenuto only.
See ``bench/README.md``.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import sqlalchemy
from dbos import DBOS, DBOSClient, DBOSConfig, SetWorkflowID

from .apps import STAMP_ADDR_ENV
from .common import StampReceiver, per_step_drift, python_env, summary_ms
from .scale import Scale

Result = dict[str, Any]

QUEUE_NAME = "bench"
#: The queue polling interval (DBOS's default is 1 s).
POLLING_INTERVAL_S = 0.05
#: Per-process concurrency limit of the queue: 64, like tenuto's worker (as fast as
#: DBOS's default of no limit, or faster); ``$BENCH_DBOS_WORKER_CONCURRENCY`` overrides
#: it (``none`` for no limit), for experiments.
_WC = os.environ.get("BENCH_DBOS_WORKER_CONCURRENCY", "64")
WORKER_CONCURRENCY: int | None = None if _WC.lower() == "none" else int(_WC)
#: ``$BENCH_DBOS_SQLITE_PRAGMAS=default`` leaves DBOS's own SQLite settings (rollback
#: journal, synchronous=FULL) instead of matching tenuto's, for experiments.
MATCH_SQLITE_PRAGMAS = os.environ.get("BENCH_DBOS_SQLITE_PRAGMAS", "matched") != "default"
#: How often ``handle.get_result()`` polls for a queued workflow's result (DBOS's
#: default is 1 s; the measurement must not wait on it).
RESULT_POLLING_INTERVAL_S = 0.01

_SYNCHRONOUS = {"sqlite": "NORMAL", "sqlite-full": "FULL"}


@DBOS.step()
def inc(x: int) -> int:
    """The trivial step: return input + 1."""
    return x + 1


@DBOS.workflow()
def chain(n: int) -> int:
    """``n`` sequential ``inc`` steps; returns ``n``."""
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


_stamp_sock: socket.socket | None = None


@DBOS.step()
def stamp(x: int) -> int:
    """``inc`` that also sends ``"<workflow id> <start time>"`` to ``$BENCH_STAMP_ADDR``."""
    global _stamp_sock
    addr = os.environ.get(STAMP_ADDR_ENV)
    if addr:
        started = time.time()
        if _stamp_sock is None:
            _stamp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        host, port = addr.rsplit(":", 1)
        _stamp_sock.sendto(f"{DBOS.workflow_id} {started!r}".encode(), (host, int(port)))
    return x + 1


@DBOS.workflow()
def ticker(n: int) -> int:
    """``n`` sequential ``stamp`` steps (workload e)."""
    x = 0
    for _ in range(n):
        x = stamp(x)
    return x


TICKER_ID = "ticker-1"


def _match_sqlite_durability(variant: str) -> None:
    """Give every SQLite connection WAL mode and the run's ``synchronous`` level."""
    level = _SYNCHRONOUS[variant]

    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
    def _pragmas(dbapi_conn: Any, record: Any) -> None:
        if type(dbapi_conn).__module__.startswith("sqlite3"):
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute(f"PRAGMA synchronous={level}")


def launch(url: str, variant: str) -> None:
    """Configure and launch DBOS on ``url`` with the benchmark's queue."""
    if url.startswith("sqlite") and MATCH_SQLITE_PRAGMAS:
        _match_sqlite_durability(variant)
    config: DBOSConfig = {
        "name": "tenuto-bench",
        "system_database_url": url,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    DBOS.register_queue(
        QUEUE_NAME,
        polling_interval_sec=POLLING_INTERVAL_S,
        worker_concurrency=WORKER_CONCURRENCY,
    )


def _enqueue_and_wait(count: int, steps: int) -> float:
    """Enqueue ``count`` workflows of ``steps`` steps and wait for all of them; returns
    how long enqueueing took."""
    queue = DBOS.retrieve_queue(QUEUE_NAME)
    assert queue is not None
    t0 = time.time()
    handles = [queue.enqueue(chain, steps) for _ in range(count)]
    enqueued = time.time() - t0
    for h in handles:
        if h.get_result(polling_interval_sec=RESULT_POLLING_INTERVAL_S) != steps:
            raise RuntimeError(f"workflow {h.workflow_id} returned a wrong result")
    return enqueued


def _run_many(count: int, steps: int, warmup: int) -> Result:
    """Time from the first enqueue to the moment the client has seen the last result."""
    _enqueue_and_wait(warmup, 1)
    t0 = time.time()
    enqueued = _enqueue_and_wait(count, steps)
    seconds = time.time() - t0
    return {
        "seconds": seconds,
        "workflows_per_s": count / seconds,
        "steps_per_s": count * steps / seconds,
        "start_seconds": enqueued,
    }


def _one_chain(steps: int, warmup: int) -> tuple[float, list[float]]:
    """Run one workflow of ``steps`` steps by calling it; its duration (the call) and
    its steps' completion times."""
    _enqueue_and_wait(warmup, 1)
    wid = f"chain-{steps}"
    t0 = time.time()
    with SetWorkflowID(wid):
        result = chain(steps)
    seconds = time.time() - t0
    if result != steps:
        raise RuntimeError("the chain returned a wrong result")
    steps_info = DBOS.list_workflow_steps(wid)
    done = sorted(
        s["completed_at_epoch_ms"] / 1000.0
        for s in steps_info
        if s["completed_at_epoch_ms"] is not None
    )
    if len(done) != steps:
        raise RuntimeError(f"expected {steps} recorded steps, found {len(done)}")
    return seconds, done


def serve(url: str, variant: str) -> None:
    """A DBOS process (``python -m bench.dbos_worker URL VARIANT``): launch, start the
    ``ticker`` workflow, run until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    launch(url, variant)
    with SetWorkflowID(TICKER_ID):
        DBOS.start_workflow(ticker, 10**9)
    stop.wait()
    DBOS.destroy(workflow_completion_timeout_sec=0)


def cancel_resume(url: str, variant: str, scale: Scale) -> Result:
    """(e) analogue: the same samples as tenuto's pause workload, with ``cancel_workflow``
    for pause and ``resume_workflow`` (onto the benchmark's queue) for resume, from a
    ``DBOSClient`` in this process; DBOS runs in another process."""
    if url.startswith("sqlite") and MATCH_SQLITE_PRAGMAS:
        _match_sqlite_durability(variant)
    stamps = StampReceiver()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.dbos_worker", url, variant],
        env=python_env({STAMP_ADDR_ENV: stamps.address}),
    )
    cancels: list[float] = []
    resume_calls: list[float] = []
    to_next: list[float] = []
    violations = 0
    rng = random.Random(6)
    client = None
    try:
        stamps.first_after(0.0, timeout=120)
        client = DBOSClient(system_database_url=url, application_name="tenuto-bench")
        for _ in range(scale.e_samples):
            time.sleep(rng.uniform(0.005, 0.03))
            t = time.perf_counter()
            client.cancel_workflow(TICKER_ID)
            cancels.append(time.perf_counter() - t)
            cancelled_at = time.time()
            time.sleep(0.03)
            violations += sum(1 for s in stamps.drain() if s > cancelled_at)
            t_wall, t = time.time(), time.perf_counter()
            client.resume_workflow(TICKER_ID, queue_name=QUEUE_NAME)
            resume_calls.append(time.perf_counter() - t)
            to_next.append(stamps.first_after(t_wall, timeout=60) - t_wall)
        client.cancel_workflow(TICKER_ID)
    finally:
        if client is not None:
            client.destroy()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stamps.close()
    return {
        "samples": len(cancels),
        "analogue": "cancel_workflow / resume_workflow",
        "steps_started_while_cancelled": violations,
        **{f"pause_{k}": v for k, v in summary_ms(cancels).items()},
        **{f"resume_call_{k}": v for k, v in summary_ms(resume_calls).items()},
        **{f"resume_to_next_{k}": v for k, v in summary_ms(to_next).items()},
    }


def run(workload: str, url: str, variant: str, scale: Scale) -> Result:
    """Launch DBOS on ``url``, run ``workload`` and shut DBOS down."""
    if workload == "e":
        return cancel_resume(url, variant, scale)
    launch(url, variant)
    try:
        if workload == "a":
            return _run_many(scale.a_workflows, 1, scale.warmup)
        if workload == "b":
            return _run_many(scale.b_workflows, scale.b_steps, scale.warmup)
        if workload == "c":
            seconds, _ = _one_chain(scale.c_steps, scale.warmup)
            return {"seconds": seconds, "ms_per_step": seconds * 1000.0 / scale.c_steps}
        if workload == "d":
            seconds, done = _one_chain(scale.d_steps, scale.warmup)
            return {"seconds": seconds, **per_step_drift(done, scale.d_window)}
        raise ValueError(f"DBOS has no workload {workload!r}")
    finally:
        DBOS.destroy(workflow_completion_timeout_sec=0)
