"""The scale bench: ``python -m bench --scale [--sizes 100k,1m] [--backend ...]``.

Builds stores of 100,000 and 1,000,000 instances (a realistic mix of statuses and
history lengths, written with bulk SQL: a million ``start()`` calls would take an hour)
on SQLite and PostgreSQL, then measures, through the public API:

* list queries (``Client.query(limit=50)``) by status, name, id prefix and created
  range, first page and the page after (with a cursor), p50 and p99;
* ``Client.count()``, unfiltered and filtered;
* the dashboard's first load (its three requests, in parallel, to ``tenuto serve``);
* start to first activity, and a step-throughput workload, against the full store and
  against an empty one (the ratio is the goal: within 10%);
* a worker's idle CPU over the full store;
* ``pause_many`` / ``resume_many`` / ``terminate_many`` / ``purge_many`` of 100,000.

Writes ``bench/results/scale.json`` and ``bench/results/scale.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tenuto
from tenuto.store import open_store

from .common import percentile, python_env

RESULTS = Path(__file__).parent / "results"
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
#: Orchestrator names of the populated instances (none is served by the bench's worker).
NAMES = [f"flow_{i:02d}" for i in range(19)]
#: Every RUNNING instance is a "waiter": the target of the bulk operations (10%).
BULK_NAME = "waiter"
#: The status mix of the instances that are not waiters (90% of them).
MIX = [
    ("COMPLETED", 0.75),
    ("FAILED", 0.05),
    ("TERMINATED", 0.03),
    ("PAUSED", 0.11),
    ("PENDING", 0.06),
]
DAY = 86_400.0
SPAN_DAYS = 60
REPEAT = 40

scale_app = tenuto.App()
_first_activity: dict[str, float] = {}


@scale_app.activity
def probe_act(x: int) -> int:
    """Records when it started (start-to-first-activity latency)."""
    info = tenuto.activity_info()
    _first_activity.setdefault(info.instance_id, info.started_at)
    return x + 1


@scale_app.orchestrator
def probe(ctx: tenuto.OrchestrationContext, n: int) -> Any:
    """``n`` sequential activities."""
    x = 0
    for _ in range(n):
        x = yield ctx.call_activity(probe_act, x)
    return x


# -- building the store ---------------------------------------------------------------


def _statuses(n: int, rng: random.Random) -> list[str]:
    waiters = n // 10
    rest = n - waiters
    out = ["RUNNING"] * waiters
    for status, share in MIX:
        out += [status] * int(rest * share)
    out += ["COMPLETED"] * (n - len(out))
    rng.shuffle(out)
    return out


def _rows(
    n: int, now: float, seed: int = 21
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """``(instance row, history rows)`` for ``n`` instances (columns as the SQL below)."""
    rng = random.Random(seed)
    statuses = _statuses(n, rng)
    start = now - SPAN_DAYS * DAY
    step = SPAN_DAYS * DAY / n
    for i, status in enumerate(statuses):
        name = BULK_NAME if status == "RUNNING" else NAMES[i % len(NAMES)]
        iid = f"{name}-{i:07d}"
        created = start + i * step + rng.random() * step
        activities = rng.randint(0, 6)
        events: list[tuple[str, float, str]] = [
            ("ExecutionStarted", created, json.dumps({"name": name, "input": i, "generation": 0}))
        ]
        t = created
        for task in range(activities):
            t += 0.01
            events.append(
                ("TaskScheduled", t, json.dumps({"task_id": task, "name": "work", "input": i}))
            )
            t += 0.05
            events.append(("TaskCompleted", t, json.dumps({"task_id": task, "result": i + task})))
        completed = output = failure = None
        pause = (None, None, None, None)
        next_due = start_at = None
        started = created
        if status == "COMPLETED":
            t += 0.01
            completed, output = t, json.dumps(i)
            events.append(
                ("ExecutionCompleted", t, json.dumps({"status": "COMPLETED", "result": i}))
            )
        elif status in ("FAILED", "TERMINATED"):
            t += 0.01
            completed = t
            failure = json.dumps({"type": "ValueError", "message": "boom", "traceback": None})
            kind = "ExecutionCompleted" if status == "FAILED" else "ExecutionTerminated"
            events.append((kind, t, json.dumps({"status": status, "failure": json.loads(failure)})))
        elif status == "PAUSED":
            t += 0.01
            pause = ("maintenance", "ops@example", t, "client")
            events.append(
                (
                    "ExecutionSuspended",
                    t,
                    json.dumps({"reason": "maintenance", "by": "ops@example"}),
                )
            )
        elif status == "PENDING":
            started = None
            start_at = next_due = now + 365 * DAY  # scheduled far ahead: never due in the run
            events = []
        row = (
            iid, name, status, f"e{i:x}", 0, json.dumps(i), output, failure, None,
            created, t, started, completed, start_at, None, None, None,
            pause[0], pause[1], pause[2], None, pause[3], len(events), next_due,
            None, None, 0, None, None,
        )  # fmt: skip
        yield row, [(iid, seq, typ, ts, data) for seq, (typ, ts, data) in enumerate(events)]


_COLUMNS = (
    "instance_id, name, status, execution_id, generation, input, output, failure, "
    "custom_status, created_at, updated_at, started_at, completed_at, start_at, "
    "parent_instance_id, parent_execution_id, parent_task_id, pause_reason, pause_by, "
    "pause_since, pause_resume_at, pause_source, history_len, next_due, lease, lease_until, "
    "claims, version, tags"
)


def populate(url: str, n: int) -> dict[str, float]:
    """Fill the (migrated, empty) store at ``url`` with ``n`` instances; returns timings."""
    now = time.time()
    began = time.monotonic()
    histories = 0
    if url.startswith("sqlite"):
        import sqlite3

        path = url.split("///", 1)[1].split("?", 1)[0]
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN")
        marks = ", ".join("?" * 29)
        batch_i: list[tuple[Any, ...]] = []
        batch_h: list[tuple[Any, ...]] = []
        for row, hist in _rows(n, now):
            batch_i.append(row)
            batch_h += hist
            if len(batch_i) >= 20_000:
                conn.executemany(f"INSERT INTO instances ({_COLUMNS}) VALUES ({marks})", batch_i)
                conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?)", batch_h)
                histories += len(batch_h)
                batch_i, batch_h = [], []
        conn.executemany(f"INSERT INTO instances ({_COLUMNS}) VALUES ({marks})", batch_i)
        conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?)", batch_h)
        histories += len(batch_h)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.close()
    else:
        import psycopg

        from tenuto.store.postgres import parse_url

        conninfo, schema = parse_url(url)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"'.encode())
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(f"COPY instances ({_COLUMNS}) FROM STDIN".encode()) as copy_i:
                    rows_h: list[tuple[Any, ...]] = []
                    for row, hist in _rows(n, now):
                        copy_i.write_row(row)
                        rows_h += hist
                with cur.copy(
                    b"COPY history (instance_id, seq, type, ts, data) FROM STDIN"
                ) as copy_h:
                    for h in rows_h:
                        copy_h.write_row(h)
                histories = len(rows_h)
            conn.execute("VACUUM ANALYZE instances")
            conn.execute("VACUUM ANALYZE history")
    return {"populate_s": time.monotonic() - began, "instances": n, "history_rows": histories}


# -- measuring ------------------------------------------------------------------------


def _timed(fn: Callable[[], Any], repeat: int = REPEAT) -> dict[str, float]:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    ms = [x * 1000 for x in times]
    return {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms)}


def _p(x: dict[str, float]) -> str:
    return f"{x['p50_ms']:8.2f} / {x['p99_ms']:8.2f} ms"


def query_cases(n: int, now: float) -> dict[str, dict[str, Any]]:
    """The list queries measured: a name, and the filters of ``Client.query``."""
    mid = datetime.fromtimestamp(now - SPAN_DAYS * DAY / 2, UTC)
    cases: dict[str, dict[str, Any]] = {"all": {}}
    for status in ("RUNNING", "PAUSED", "COMPLETED", "FAILED", "TERMINATED", "PENDING"):
        cases[f"status={status}"] = {"status": [status]}
    cases["name"] = {"name": NAMES[3]}
    cases["name+status=PAUSED"] = {"name": NAMES[3], "status": ["PAUSED"]}
    cases["id prefix"] = {"id_prefix": f"{NAMES[5]}-00012"}
    cases["created range (1 day)"] = {"created_from": mid, "created_to": mid + timedelta(days=1)}
    cases["status=FAILED+created range"] = {
        "status": ["FAILED"],
        "created_from": mid,
        "created_to": mid + timedelta(days=1),
    }
    return cases


def measure_queries(client: tenuto.Client, n: int, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, kwargs in query_cases(n, now).items():
        first = client.query(limit=50, **kwargs)
        entry: dict[str, Any] = {
            "rows": len(first.items),
            "first": _timed(lambda k=kwargs: client.query(limit=50, **k)),
        }
        if first.next_cursor:
            cursor = first.next_cursor
            entry["cursor"] = _timed(
                lambda k=kwargs, c=cursor: client.query(limit=50, cursor=c, **k)
            )
        out[label] = entry
        print(
            f"  query {label:32} {_p(entry['first'])}",
            flush=True,
        )
    counts = {
        "count()": {},
        "count(status=PAUSED)": {"status": ["PAUSED"]},
        "count(name)": {"name": NAMES[3]},
    }
    for label, kwargs in counts.items():
        out[label] = {"first": _timed(lambda k=kwargs: client.count(**k), repeat=20)}
        print(
            f"  {label:38} {_p(out[label]['first'])}",
            flush=True,
        )
    return out


@contextlib.contextmanager
def _server(url: str) -> Iterator[str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenuto",
            "serve",
            "--no-worker",
            "--db",
            url,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=python_env(),
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "api/stats", timeout=30).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure_dashboard(url: str) -> dict[str, float]:
    """The dashboard's first load: its three API requests, sent together."""
    with _server(url) as base, ThreadPoolExecutor(3) as pool:
        paths = ["api/stats", "api/instances?limit=50", "api/standing-pauses"]

        def load() -> None:
            for f in [
                pool.submit(lambda p=p: urllib.request.urlopen(base + p, timeout=60).read())
                for p in paths
            ]:
                f.result()

        return _timed(load, repeat=20)


def measure_worker(url: str, label: str) -> dict[str, float]:
    """Start to first activity (p50/p99 of 50 starts, one at a time) and the throughput of
    200 orchestrations of 5 activities, with an in-process worker. (It shares the GIL with
    the client; the empty and the full store are measured alike, and only their ratio is
    a goal.)"""
    client = tenuto.Client(url, app=scale_app)
    _first_activity.clear()
    out: dict[str, float] = {}
    with tenuto.Worker(scale_app, store=client.store):
        for i in range(5):  # warm up
            client.wait(client.start(probe, 1, instance_id=f"warm-{label}-{i}"), timeout=60)
        lat = []
        for i in range(50):
            iid = f"lat-{label}-{i}"
            t = time.time()
            client.start(probe, 1, instance_id=iid)
            client.wait(iid, timeout=60)
            lat.append(_first_activity[iid] - t)
        ms = [x * 1000 for x in lat]
        out["first_activity_p50_ms"] = percentile(ms, 50)
        out["first_activity_p99_ms"] = percentile(ms, 99)
        t = time.monotonic()
        ids = client.start_many(
            probe, [5] * 200, instance_ids=[f"tp-{label}-{i}" for i in range(200)]
        )
        client.wait_many(ids, timeout=300)
        out["steps_per_s"] = 1000 / (time.monotonic() - t)
    client.close()
    return out


def measure_idle_cpu(url: str, seconds: float = 10.0) -> float:
    """CPU seconds per second of an idle worker process (``tenuto worker``) over the store."""
    import psutil

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenuto",
            "worker",
            "bench.at_scale:scale_app",
            "--db",
            url,
            "--log-level",
            "warning",
        ],
        env=python_env(),
        cwd=Path(__file__).parent.parent,
    )
    try:
        p = psutil.Process(proc.pid)
        time.sleep(3)  # start-up (imports, first cycles) is not idling
        before = p.cpu_times()
        time.sleep(seconds)
        after = p.cpu_times()
        return (after.user + after.system - before.user - before.system) / seconds
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure_bulk(client: tenuto.Client) -> dict[str, Any]:
    """pause_many / resume_many / terminate_many / purge_many of the waiters (10%)."""
    out: dict[str, Any] = {}
    for label, call in (
        ("pause_many", lambda: client.pause_many(name=BULK_NAME, reason="bench")),
        ("resume_many", lambda: client.resume_many(name=BULK_NAME, reason="bench")),
        ("terminate_many", lambda: client.terminate_many(name=BULK_NAME, reason="bench")),
        ("purge_many", lambda: client.purge_many(name=BULK_NAME)),
    ):
        t = time.perf_counter()
        count = call()
        seconds = time.perf_counter() - t
        out[label] = {
            "count": count,
            "seconds": seconds,
            "per_s": count / seconds if seconds else 0,
        }
        print(f"  {label:16} {count:8} in {seconds:7.2f} s = {count / seconds:9.0f}/s", flush=True)
    return out


# -- running --------------------------------------------------------------------------


@contextlib.contextmanager
def _store_url(backend: str, label: str, pg_url: str, tmp: str) -> Iterator[str]:
    if backend == "sqlite":
        path = os.path.join(tmp, f"scale-{label}.db")
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)
    else:
        schema = f"scale_{os.getpid()}_{label.replace('-', '_')}"
        url = f"{pg_url}{'&' if '?' in pg_url else '?'}schema={schema}"
        try:
            yield url
        finally:
            store = open_store(url)
            store.drop_schema()  # type: ignore[attr-defined]
            store.close()


def run_one(backend: str, size: str, pg_url: str, tmp: str) -> dict[str, Any]:
    n = SIZES[size]
    result: dict[str, Any] = {"backend": backend, "size": size, "instances": n}
    with _store_url(backend, f"{size}-empty", pg_url, tmp) as empty_url:
        open_store(empty_url).close()  # migrated
        print(f"[{backend} {size}] empty-store baseline", flush=True)
        result["empty_worker"] = measure_worker(empty_url, "empty")
    with _store_url(backend, size, pg_url, tmp) as url:
        open_store(url).close()
        print(f"[{backend} {size}] populating {n:,} instances", flush=True)
        result["populate"] = populate(url, n)
        print(f"  {result['populate']}", flush=True)
        now = time.time()
        with tenuto.Client(url) as client:
            result["queries"] = measure_queries(client, n, now)
        print(f"[{backend} {size}] dashboard", flush=True)
        result["dashboard"] = measure_dashboard(url)
        print(f"  {result['dashboard']}", flush=True)
        print(f"[{backend} {size}] worker over the full store", flush=True)
        result["full_worker"] = measure_worker(url, "full")
        print(f"  empty {result['empty_worker']}\n  full  {result['full_worker']}", flush=True)
        result["idle_cpu"] = measure_idle_cpu(url)
        print(f"  idle worker CPU {result['idle_cpu']:.3%}", flush=True)
        print(f"[{backend} {size}] bulk operations", flush=True)
        with tenuto.Client(url) as client:
            result["bulk"] = measure_bulk(client)
    return result


def run(backends: list[str], sizes: list[str], pg_url: str) -> int:
    from . import scale_report

    tmp = tempfile.mkdtemp(prefix="tenuto-scale-")
    results: list[dict[str, Any]] = []
    try:
        for size in sizes:
            for backend in backends:
                results.append(run_one(backend, size, pg_url, tmp))
                scale_report.write(results, RESULTS, " ".join(sys.argv[1:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(scale_report.table(results))
    return 0
