"""The backup story: a long-running backup, paused and resumed from another process.

A backup lists the chunks of a volume and copies them one by one, retrying flaky copies,
and reports its progress in its custom status. Operators pause it (say, during business
hours) and resume it later, from any process, without any code of their own.

Run the whole story::

    python examples/backup.py demo

It starts a worker in a second process (``tenuto worker examples.backup:app``), starts a
backup, pauses it halfway from this process, shows that nothing advances while it is
paused, resumes it, and prints the history with the pause in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tenuto

app = tenuto.App()

CHUNK_SECONDS = float(os.environ.get("BACKUP_CHUNK_SECONDS", "0.15"))


@app.activity
def list_chunks(volume: str) -> list[int]:
    """The chunks to copy (a real backup would ask the storage system)."""
    return list(range(12))


@app.activity(retry=tenuto.RetryPolicy(max_attempts=5, first_delay=0.1, backoff=2))
def copy_chunk(chunk: int) -> int:
    """Copy one chunk; every fifth chunk fails on its first try, like a flaky network."""
    info = tenuto.activity_info()
    time.sleep(CHUNK_SECONDS)
    if chunk % 5 == 3 and info.attempt == 1:
        raise ConnectionError(f"network glitch while copying chunk {chunk}")
    return chunk * 64  # megabytes copied


@app.orchestrator
def backup(ctx: tenuto.OrchestrationContext, volume: str):  # type: ignore[no-untyped-def]
    chunks = yield ctx.call_activity(list_chunks, volume)
    copied = 0
    for i, chunk in enumerate(chunks):
        copied += yield ctx.call_activity(copy_chunk, chunk)
        ctx.set_custom_status({"copied": i + 1, "of": len(chunks), "megabytes": copied})
    return {"volume": volume, "chunks": len(chunks), "megabytes": copied}


def _progress(st: tenuto.InstanceStatus) -> str:
    cs = st.custom_status or {}
    done = f"{cs.get('copied', 0)}/{cs.get('of', '?')} chunks"
    paused = f"  (paused by {st.pause.by}: {st.pause.reason})" if st.pause else ""
    return f"{st.runtime_status.value:<9} {done}{paused}"


def demo() -> None:
    # The demo's database, in a temporary folder removed at the end.
    with tempfile.TemporaryDirectory(prefix="tenuto-backup-") as workdir:
        run_demo(f"sqlite:///{Path(workdir) / 'backup.db'}")


def run_demo(db: str) -> None:
    client = tenuto.Client(db, app=app, actor="operator")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    print(f"database: {db}")
    print("starting a worker in a second process: tenuto worker backup:app")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tenuto", "worker", "backup:app", "--db", db, "--log-level", "info"],
        env=env,
    )
    try:
        iid = client.start(backup, "vol-1", instance_id="backup-vol-1")
        print(f"started backup {iid}")

        def show_until(predicate, timeout: float = 60.0) -> tenuto.InstanceStatus:
            deadline = time.monotonic() + timeout
            last = ""
            while True:
                st = client.status(iid)
                line = _progress(st)
                if line != last:
                    print(f"  {line}")
                    last = line
                if predicate(st):
                    return st
                if time.monotonic() > deadline:
                    raise SystemExit(f"the demo stalled: {line}")
                time.sleep(0.05)

        show_until(lambda st: (st.custom_status or {}).get("copied", 0) >= 5)
        client.pause(iid, reason="business hours")
        held = client.status(iid)
        print(f"paused from this process (the worker runs in another one): {_progress(held)}")
        time.sleep(1.0)  # let the reader see that nothing moves while paused
        still = client.status(iid)
        print(f"  after 1 s: {_progress(still)}")
        assert still.custom_status == held.custom_status, "a paused backup advanced"
        client.resume(iid, reason="night window")
        print("resumed")
        st = show_until(lambda st: st.is_terminal)
        print(f"finished: {st.runtime_status.value}, output {st.output}")
        print("history (pause and resume included):")
        for e in client.history(iid):
            if e.type in ("ExecutionSuspended", "ExecutionResumed"):
                print(f"  {e.timestamp:%H:%M:%S.%f} {e.type} by {e.data['by']}: {e.data['reason']}")
            elif e.type == "ExecutionCompleted":
                print(f"  {e.timestamp:%H:%M:%S.%f} {e.type}")
        if st.runtime_status is not tenuto.Status.COMPLETED:
            raise SystemExit(1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        client.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["demo"]:
        demo()
    else:
        print(__doc__)
        raise SystemExit(2)
