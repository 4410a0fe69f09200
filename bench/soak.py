"""``python -m bench.soak --minutes 10 --workers 3 --db postgresql://...``: a load and soak run.

A steady stream of orchestrations (chains of activities, fan-outs, timers, external
events) runs across ``--workers`` worker processes on PostgreSQL while this process
pauses (some with a scheduled resume), resumes, raises events and terminates at random.
Every ``--sample`` seconds it records throughput, the p99 step latency of the instances
that finished in that interval, and the RSS of each worker process (flat = no leak). At
the end it resumes what is paused, waits for everything to finish and checks the
invariants on every instance, then writes ``bench/results/soak.md``.

Step latency is read from history: the time from an activity result being recorded to
the start of the orchestration step that consumes it (results consumed right after a
resume are left out: they waited for the resume on purpose).

The run uses a fresh schema (``soak_<time>``) unless the URL names one, and drops it at
the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tenuto
from tenuto import Status

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# -- the workload (the worker processes import this module for ``app``) ----------------

app = tenuto.App()


@app.activity
def work(x: int) -> int:
    time.sleep(random.uniform(0.005, 0.08))
    return x * 3


@app.orchestrator
def job(ctx: tenuto.OrchestrationContext, spec: dict[str, Any]) -> Any:
    out = []
    for i in range(spec["chain"]):
        out.append((yield ctx.call_activity(work, i)))
    if spec["fan"]:
        out += yield ctx.when_all([ctx.call_activity(work, 10 + j) for j in range(spec["fan"])])
    if spec["timer"]:
        yield ctx.create_timer(timedelta(seconds=spec["timer"]))
    if spec["event"]:
        out.append((yield ctx.wait_for_event("go")))
    return out


def expected(spec: dict[str, Any]) -> list[Any]:
    out: list[Any] = [3 * i for i in range(spec["chain"])]
    out += [3 * (10 + j) for j in range(spec["fan"])]
    return out + (["go"] if spec["event"] else [])


# -- the driver --------------------------------------------------------------------------


@dataclass
class Tracked:
    spec: dict[str, Any]
    started: float
    terminated: bool = False
    finished: bool = False
    event_sent: bool = False
    paused_until: float | None = None  # when this driver will resume it (or it resumes)


@dataclass
class Sample:
    t: float
    completed: int
    terminated: int
    live: int
    paused: int
    throughput: float
    p99_ms: float | None
    rss_mb: list[float]


@dataclass
class Run:
    minutes: float
    workers: int
    rate: float
    url: str
    samples: list[Sample] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    started: int = 0
    final: dict[str, int] = field(default_factory=dict)
    drain_seconds: float = 0.0
    checked: int = 0


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def spawn_workers(url: str, n: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return [
        subprocess.Popen(
            [sys.executable, "-m", "tenuto", "worker", "bench.soak:app", "--db", url,
             "--log-level", "warning"],
            env=env,
        )
        for _ in range(n)
    ]  # fmt: skip


def step_latencies(events: list[tuple[str, float]]) -> list[float]:
    """Result recorded -> step that consumes it starts, for each TaskCompleted."""
    out = []
    step_ts: float | None = None
    resumed_at = float("-inf")
    for kind, ts in events:
        if kind == "OrchestratorStarted":
            step_ts = ts
        elif kind == "ExecutionResumed":
            resumed_at = ts
        elif kind == "TaskCompleted" and step_ts is not None and ts >= resumed_at:
            # (A result recorded before the last resume waited for it, on purpose.)
            out.append(max(step_ts - ts, 0.0))
    return out


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Store:
    """Direct reads of the soak schema (histories in bulk, sequence numbers included)."""

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg import sql

        from tenuto.store.postgres import parse_url

        self.conninfo, self.schema = parse_url(url)
        self.conn = psycopg.connect(self.conninfo, autocommit=True)
        self.ident = sql.Identifier(self.schema)
        self.sql = sql

    def histories(self, ids: list[str]) -> dict[str, list[tuple[int, str, float, Any]]]:
        out: dict[str, list[tuple[int, str, float, Any]]] = {i: [] for i in ids}
        query = self.sql.SQL(
            "SELECT instance_id, seq, type, ts, data FROM {}.history "
            "WHERE instance_id = ANY(%s) ORDER BY instance_id, seq"
        ).format(self.ident)
        for start in range(0, len(ids), 2000):
            for iid, seq, kind, ts, data in self.conn.execute(query, (ids[start : start + 2000],)):
                out[iid].append(
                    (seq, kind, ts, data if not isinstance(data, str) else json.loads(data))
                )
        return out

    def history_lens(self) -> dict[str, int]:
        query = self.sql.SQL("SELECT instance_id, history_len FROM {}.instances").format(self.ident)
        return dict(self.conn.execute(query).fetchall())

    def drop(self) -> None:
        self.conn.execute(self.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(self.ident))


def check(run: Run, client: tenuto.Client, store: Store, model: dict[str, Tracked]) -> None:
    ids = sorted(model)
    hist = store.histories(ids)
    lens = store.history_lens()
    for iid in ids:
        m, events = model[iid], hist[iid]
        st = client.status(iid)

        def bad(text: str, iid: str = iid) -> None:
            run.problems.append(f"{iid}: {text}")

        if m.terminated:
            if st.runtime_status is not Status.TERMINATED:
                bad(f"terminated, but {st.runtime_status.value}")
        elif st.runtime_status is not Status.COMPLETED:
            bad(f"should be COMPLETED, is {st.runtime_status.value} {st.failure}")
        elif st.output != expected(m.spec):
            bad(f"output {st.output} != {expected(m.spec)}")
        seqs = [e[0] for e in events]
        if seqs != list(range(len(seqs))) or lens.get(iid) != len(seqs):
            bad(f"history not gap-free: {len(seqs)} rows, history_len {lens.get(iid)}")
        scheduled = Counter(e[3]["task_id"] for e in events if e[1] == "TaskScheduled")
        done = Counter(e[3]["task_id"] for e in events if e[1] == "TaskCompleted")
        if any(n > 1 for n in [*scheduled.values(), *done.values()]) or set(done) - set(scheduled):
            bad(f"a task scheduled or delivered twice: {scheduled} {done}")
        if st.runtime_status is Status.COMPLETED and set(done) != set(scheduled):
            bad("completed with results missing")
        paused = False
        for _, kind, _, _ in events:
            if kind == "ExecutionSuspended":
                paused = True
            elif kind == "ExecutionResumed":
                paused = False
            elif paused and kind != "ExecutionTerminated":
                bad(f"{kind} while paused")
        run.checked += 1


def _due(m: Tracked, now: float) -> bool:
    """Whether the driver owes ``m`` something now: the end of its pause, or its event."""
    if m.paused_until is not None:
        return now >= m.paused_until
    return bool(m.spec["event"]) and not m.event_sent and now - m.started > 1.5


def drive(
    run: Run, client: tenuto.Client, workers: list[subprocess.Popen[bytes]], sample: float
) -> dict[str, Tracked]:
    rng = random.Random(7)
    model: dict[str, Tracked] = {}
    recent: list[str] = []
    owed: set[str] = set()  # instances this driver must still resume or send an event
    t0 = time.monotonic()
    end = t0 + run.minutes * 60
    next_sample = t0 + sample
    interval_done: list[str] = []
    last_done = 0
    n = 0
    while time.monotonic() < end:
        tick = time.monotonic()
        iid = f"soak-{n:06d}"
        n += 1
        spec = {
            "chain": rng.randint(1, 5),
            "fan": rng.choice([0, 0, 2, 4]),
            "timer": rng.choice([0, 0, 0, 0.5, 2]),
            "event": rng.random() < 0.3,
        }
        client.start("job", spec, instance_id=iid)
        model[iid] = Tracked(spec, time.time())
        recent.append(iid)
        if len(recent) > 150:
            recent.pop(0)
        if spec["event"] and rng.random() < 0.5:
            client.raise_event(iid, "go", "go")  # before it waits: kept for the wait
            model[iid].event_sent = True
            run.commands["event"] += 1
        elif spec["event"]:
            owed.add(iid)
        now = time.time()
        # Whatever this driver owes an instance (the resume of its pause, its event) is
        # paid on time, even once the instance has left the window of recent ones: the
        # live set then stays steady, so a growing RSS would mean a leak.
        for other in [i for i in owed if _due(model[i], now)]:
            owed.discard(other)
            m = model[other]
            if m.finished or m.terminated:
                continue
            try:
                if m.paused_until is not None:
                    client.resume(other, "soak")
                    m.paused_until = None
                    run.commands["resume"] += 1
                if m.spec["event"] and not m.event_sent:
                    client.raise_event(other, "go", "go")
                    m.event_sent = True
                    run.commands["event"] += 1
            except tenuto.InstanceFinished as exc:
                m.finished = True
                m.terminated = m.terminated or exc.status is Status.TERMINATED
        for other in rng.sample(recent, min(len(recent), 3)):
            m = model[other]
            if m.finished or m.terminated:
                continue
            try:  # resumes and owed events are paid above
                if m.paused_until is None and rng.random() < 0.3:
                    hold = rng.uniform(0.2, 4.0)
                    if rng.random() < 0.3:  # a scheduled resume: it resumes by itself
                        at = datetime.now(UTC) + timedelta(seconds=hold)
                        client.pause(other, "soak", resume_at=at)
                        run.commands["pause_until"] += 1
                    else:
                        client.pause(other, "soak")
                        run.commands["pause"] += 1
                    m.paused_until = now + hold
                    owed.add(other)
                elif rng.random() < 0.01:
                    client.terminate(other, "soak")
                    m.terminated = True
                    run.commands["terminate"] += 1
            except tenuto.InstanceFinished as exc:
                m.finished = True
                m.terminated = m.terminated or exc.status is Status.TERMINATED
        if tick >= next_sample:
            counts = client.count()
            done = counts.get(Status.COMPLETED, 0) + counts.get(Status.TERMINATED, 0)
            finished_now = [
                i.instance_id
                for i in client.query(status=["COMPLETED"], limit=200).items
                if i.instance_id not in interval_done
            ]
            interval_done = finished_now
            store_hist = STORE.histories(finished_now) if finished_now else {}
            lat = [
                x for h in store_hist.values() for x in step_latencies([(e[1], e[2]) for e in h])
            ]
            run.latencies += lat
            q = p99(lat)
            s = Sample(
                t=round(tick - t0, 1),
                completed=counts.get(Status.COMPLETED, 0),
                terminated=counts.get(Status.TERMINATED, 0),
                live=counts.get(Status.RUNNING, 0) + counts.get(Status.PENDING, 0),
                paused=counts.get(Status.PAUSED, 0),
                throughput=(done - last_done) / sample,
                p99_ms=None if q is None else q * 1000,
                rss_mb=[rss_mb(w.pid) for w in workers],
            )
            last_done = done
            run.samples.append(s)
            print(
                f"t={s.t:6.0f}s done={done:6d} live={s.live:4d} paused={s.paused:3d} "
                f"thr={s.throughput:6.1f}/s p99={s.p99_ms or 0:7.1f} ms "
                f"rss={' '.join(f'{r:.0f}' for r in s.rss_mb)} MB",
                flush=True,
            )
            next_sample += sample
        delay = tick + 1 / run.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing: the steady arrival rate
    run.started = n
    return model


STORE: Store


def settle(run: Run, client: tenuto.Client, model: dict[str, Tracked]) -> None:
    t = time.monotonic()
    for iid, m in model.items():
        if m.finished or m.terminated:
            continue
        try:
            client.resume(iid, "soak: end")
            if m.spec["event"] and not m.event_sent:
                client.raise_event(iid, "go", "go")
                m.event_sent = True
        except tenuto.InstanceFinished as exc:
            m.terminated = m.terminated or exc.status is Status.TERMINATED
    for iid in model:
        client.wait(iid, timeout=600)
    run.drain_seconds = time.monotonic() - t
    run.final = {s.value: n for s, n in client.count().items()}


def report(run: Run, path: Path) -> str:
    first = [r for r in run.samples[min(2, len(run.samples) - 1)].rss_mb] if run.samples else []
    last = run.samples[-1].rss_mb if run.samples else []
    total_done = run.final.get("COMPLETED", 0) + run.final.get("TERMINATED", 0)
    secs = run.minutes * 60
    lines = [
        "# Soak run",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"- Command: `python -m bench.soak --minutes {run.minutes:g} --workers {run.workers} "
        f"--rate {run.rate:g} --db {run.url.split('?')[0]}`",
        f"- Duration: {run.minutes:g} min of load, then {run.drain_seconds:.1f} s to drain",
        f"- Instances started: {run.started} ({run.started / secs:.1f}/s); final: {run.final}",
        f"- Commands: {dict(run.commands)}",
        f"- Throughput: {total_done / (secs + run.drain_seconds):.1f} instances/s finished "
        "on average",
        f"- Step latency (activity result recorded -> step consuming it starts), over "
        f"{len(run.latencies)} steps: p50 {_ms(_q(run.latencies, 0.5))}, "
        f"p99 {_ms(p99(run.latencies))}, max {_ms(max(run.latencies, default=None))}",
        "- Worker RSS (MB) after warm-up -> at the end: "
        + ", ".join(f"{a:.0f} -> {b:.0f}" for a, b in zip(first, last, strict=False)),
        f"- Invariants checked on {run.checked} instances: "
        + ("**all hold**" if not run.problems else f"**{len(run.problems)} breaches**"),
        "",
        "| t (s) | completed | terminated | live | paused | finished/s | p99 step (ms) | "
        + " | ".join(f"RSS w{i + 1} (MB)" for i in range(run.workers))
        + " |",
        "|" + "---|" * (7 + run.workers),
    ]
    for s in run.samples:
        lines.append(
            f"| {s.t:.0f} | {s.completed} | {s.terminated} | {s.live} | {s.paused} | "
            f"{s.throughput:.1f} | {_ms(s.p99_ms / 1000 if s.p99_ms is not None else None)} | "
            + " | ".join(f"{r:.0f}" for r in s.rss_mb)
            + " |"
        )
    if run.problems:
        lines += ["", "## Breaches", "", *[f"- {p}" for p in run.problems[:50]]]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def _q(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    global STORE
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--db", default=os.environ.get("TENUTO_TEST_POSTGRES"), required=False)
    parser.add_argument("--rate", type=float, default=20, help="instances started per second")
    parser.add_argument("--sample", type=float, default=10, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.md")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args(argv)
    if not args.db or not args.db.startswith("postgres"):
        parser.error("--db must be a PostgreSQL URL (or set TENUTO_TEST_POSTGRES)")
    url = args.db
    if "schema=" not in url:
        url += f"{'&' if '?' in url else '?'}schema=soak_{int(time.time())}"
    run = Run(args.minutes, args.workers, args.rate, url)
    client = tenuto.Client(url, actor="soak")  # creates the schema
    STORE = Store(url)
    workers = spawn_workers(url, args.workers)
    try:
        model = drive(run, client, workers, args.sample)
        settle(run, client, model)
        check(run, client, STORE, model)
        dead = [w.pid for w in workers if w.poll() is not None]
        if dead:
            run.problems.append(f"worker processes died: {dead}")
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=60)
    print(report(run, args.out))
    client.close()
    if not args.keep:
        STORE.drop()
    return 1 if run.problems else 0


if __name__ == "__main__":
    sys.exit(main())
