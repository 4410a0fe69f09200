"""(s) The Durable Task SDK path: orchestrations written with durabletask-python.

N orchestrations of K sequential activities (an activity returns its input + 1), written
with the SDK (``TaskHubGrpcWorker`` + ``TaskHubGrpcClient``, default settings), run
against a backend in a process of its own:

* ``tenuto``: ``tenuto serve --grpc-port`` on the run's database (SQLite file or
  PostgreSQL schema);
* ``memory``: durabletask's own in-memory backend (``durabletask.testing``), the ceiling:
  it persists nothing.

Measured as for (b): from the first start call to the moment the client has seen the
last completion; activities/s = N x K / that time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .interop_backend import end, serve, wait_listening
from .scale import Scale

_MEMORY = (
    "import sys, threading\n"
    "from durabletask.testing import create_test_backend\n"
    "create_test_backend(port=int(sys.argv[1]))\n"
    "threading.Event().wait()\n"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def backend(system: str, url: str) -> Iterator[str]:
    """The backend of ``system`` in a subprocess; yields its address."""
    port = _port()
    with tempfile.TemporaryFile() as log:
        if system == "tenuto":
            proc = serve(url, port, log)
        else:
            proc = subprocess.Popen(
                [sys.executable, "-c", _MEMORY, str(port)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            try:
                wait_listening(port, proc)
            except RuntimeError as exc:
                log.seek(0)
                text = log.read().decode()[-2000:]
                raise RuntimeError(f"{system} backend: {exc}\n{text}") from None
            yield f"localhost:{port}"
        finally:
            end(proc)


def plus_one(ctx: Any, n: int) -> int:
    return n + 1


def chain(ctx: Any, steps: int) -> Any:
    n = 0
    for _ in range(steps):
        n = yield ctx.call_activity(plus_one, input=n)
    return n


def run(system: str, url: str, scale: Scale) -> dict[str, Any]:
    """(s) on ``system`` (``tenuto`` or ``memory``); its numbers."""
    from durabletask import client as dc
    from durabletask.worker import TaskHubGrpcWorker

    count, steps = scale.s_workflows, scale.s_steps
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    with backend(system, url) as address:
        worker = TaskHubGrpcWorker(host_address=address)
        worker.add_orchestrator(chain)
        worker.add_activity(plus_one)
        worker.start()
        c = dc.TaskHubGrpcClient(host_address=address)
        try:
            for iid in [c.schedule_new_orchestration(chain, input=1) for _ in range(scale.warmup)]:
                c.wait_for_orchestration_completion(iid, timeout=120)
            t0 = time.time()
            ids = [c.schedule_new_orchestration(chain, input=steps) for _ in range(count)]
            started = time.time()
            states = [c.wait_for_orchestration_completion(iid, timeout=600) for iid in ids]
            seen = time.time()
        finally:
            c.close()
            worker.stop()
    bad = [s for s in states if s is None or s.serialized_output != str(steps)]
    if bad:
        raise RuntimeError(f"{len(bad)} instances did not complete correctly: {bad[0]}")
    seconds = seen - t0
    return {
        "seconds": seconds,
        "workflows_per_s": count / seconds,
        "activities_per_s": count * steps / seconds,
        "start_seconds": started - t0,
    }
