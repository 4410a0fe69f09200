"""The tracking outbox: every change reaches the log of the one process that drains it,
and the counters every process's /metrics reads, once, whoever made it."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import tenuto
from tenuto.outbox import Drainer
from tenuto.store.outbox import DrainState

from helpers import wait_for


def _state(client: tenuto.Client) -> DrainState:
    return client.store.read(lambda r: r.drain_state())


def _drained(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.tenuto for r in caplog.records if "seq" in getattr(r, "tenuto", {})]


# -- in one process: the drainer and the store ----------------------------------------


def test_a_change_is_written_to_the_outbox_with_its_transaction(client):
    iid = client.start("job", None, instance_id="o-1")
    client.pause(iid, "maintenance", by="alice")
    state = _state(client)
    assert state.pending == 2 and state.sequenced == state.emitted == 0
    with pytest.raises(tenuto.InstanceNotFound):
        client.pause("o-missing", "x")  # refused: nothing written
    assert _state(client).pending == 2


def test_the_drainer_emits_each_record_once_in_order_and_counts_it(client, caplog):
    caplog.set_level(logging.INFO, logger="tenuto")
    client.start_many("job", [None, None, None], instance_ids=["d-1", "d-2", "d-3"])
    client.pause_many(reason="deploy", by="bob", id_prefix="d-")
    client.resume("d-2", by="carol")
    drainer = Drainer(client.store, batch=4)
    while drainer.drain_once():
        pass
    drained = _drained(caplog)
    assert [r["seq"] for r in drained] == list(range(1, 8))
    assert [(r["event"], r["instance_id"]) for r in drained] == [
        ("started", "d-1"),
        ("started", "d-2"),
        ("started", "d-3"),
        ("paused", "d-1"),
        ("paused", "d-2"),
        ("paused", "d-3"),
        ("resumed", "d-2"),
    ]
    paused = drained[3]
    assert (paused["reason"], paused["by"], paused["source"]) == ("deploy", "bob", "client")
    assert datetime.fromisoformat(paused["at"]).timestamp() == pytest.approx(time.time(), abs=60)
    counts = client.store.read(lambda r: r.tracking_counts())
    assert counts == [("paused", "client", 3), ("resumed", "", 1), ("started", "", 3)]
    state = _state(client)
    assert state.pending == 0 and state.sequenced == state.emitted == 7
    assert drainer.drain_once() == 0  # nothing twice
    assert len(_drained(caplog)) == 7


def test_emitted_records_are_trimmed_to_what_is_kept(client):
    client.start_many("job", [None] * 10)
    drainer = Drainer(client.store, batch=4, keep_records=3)
    while drainer.drain_once():
        pass
    kept = client.store.read(lambda r: r.tracking_after(0, 100))
    assert [r.seq for r in kept] == [8, 9, 10]
    old = Drainer(client.store, keep_seconds=0)
    client.start("job", None)
    assert old.drain_once() == 0  # the first drainer's lease stands
    drainer.stop()
    assert old.drain_once() == 1
    assert client.store.read(lambda r: r.tracking_after(0, 100)) == []


def test_one_drainer_holds_the_lease_and_another_takes_over_when_it_expires(client, caplog):
    caplog.set_level(logging.INFO, logger="tenuto")
    first = Drainer(client.store, lease_seconds=0.5)
    second = Drainer(client.store, lease_seconds=0.5)
    client.start("job", None)
    assert first.drain_once() == 1
    client.start("job", None)
    assert second.drain_once() == 0
    # The first stops renewing (as if it died): the second takes over once it expires.
    wait_for(lambda: second.drain_once(), timeout=5, what="the lease to expire")
    assert [r["seq"] for r in _drained(caplog)] == [1, 2]
    assert _state(client).holder == second.holder


def test_a_batch_numbered_by_a_drainer_that_died_is_emitted_again(client, caplog):
    """The at-least-once window: numbered, perhaps emitted, not acknowledged."""
    caplog.set_level(logging.INFO, logger="tenuto")
    client.start_many("job", [None] * 5)

    def die_after_numbering(tx: Any) -> None:
        assert tx.lease_drain("dead", time.time(), time.time() - 1) is not None
        assert len(tx.sequence_tracking(0, 3)) == 3

    client.store.run(die_after_numbering)
    drainer = Drainer(client.store)
    while drainer.drain_once():
        pass
    assert [r["seq"] for r in _drained(caplog)] == [1, 2, 3, 4, 5]
    counts = client.store.read(lambda r: r.tracking_counts())
    assert counts == [("started", "", 5)]


def test_a_draining_process_logs_its_own_changes_once(client, caplog):
    caplog.set_level(logging.INFO, logger="tenuto")
    drainer = Drainer(client.store, interval=0.01)
    drainer.start()
    try:
        client.start("job", None, instance_id="own-1")
        wait_for(lambda: _drained(caplog), what="the record to be drained")
    finally:
        drainer.stop()
    assert tenuto.tracking.log_locally  # logging its own changes again
    records = [r.tenuto for r in caplog.records if hasattr(r, "tenuto")]
    assert [(r["event"], r["instance_id"], r["seq"]) for r in records] == [("started", "own-1", 1)]


def test_drained_records_become_spans_when_tracing_is_on(client):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tenuto import tracing

    client.start("job", None, instance_id="otel-1")
    client.pause("otel-1", "audit", by="dana")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        Drainer(client.store).drain_once()
    finally:
        tracing.disable()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert sorted(spans) == ["tenuto.paused", "tenuto.started"]
    paused = spans["tenuto.paused"]
    assert paused.attributes is not None
    assert dict(paused.attributes) == {
        "tenuto.instance_id": "otel-1",
        "tenuto.seq": 2,
        "tenuto.reason": "audit",
        "tenuto.by": "dana",
        "tenuto.source": "client",
    }
    assert paused.start_time == paused.end_time
    assert paused.start_time is not None
    assert abs(paused.start_time / 1e9 - time.time()) < 60


def test_a_pause_from_a_durable_task_sdk_client_is_in_the_outbox(client, db_url, caplog):
    pytest.importorskip("durabletask")
    from durabletask import client as dc

    from tenuto.grpc import GrpcServer

    caplog.set_level(logging.INFO, logger="tenuto")
    with GrpcServer(db_url, port=0, lease_seconds=5) as server:
        sdk = dc.TaskHubGrpcClient(host_address=f"127.0.0.1:{server.port}")
        try:
            iid = sdk.schedule_new_orchestration("job", instance_id="sdk-1")
            sdk.suspend_orchestration(iid, reason="change freeze")
        finally:
            sdk.close()
    Drainer(client.store).drain_once()
    paused = [r for r in _drained(caplog) if r["event"] == "paused"]
    assert [(r["instance_id"], r["reason"], r["by"], r["source"]) for r in paused] == [
        ("sdk-1", "change freeze", "grpc", "client")
    ]


@pytest.mark.slow
def test_the_drainer_carries_on_after_a_postgres_restart(caplog):
    from conftest import own_postgres

    caplog.set_level(logging.INFO, logger="tenuto")

    def drained(iid: str) -> bool:
        return any(r["instance_id"] == iid for r in _drained(caplog))

    def said(text: str) -> bool:
        return any(text in r.getMessage() for r in caplog.records)

    with own_postgres() as server, tenuto.Client(f"{server.url}?schema=drain") as c:
        drainer = Drainer(c.store, interval=0.05, lease_seconds=2)
        drainer.start()
        try:
            c.start("job", None, instance_id="before")
            wait_for(lambda: drained("before") and _state(c).emitted == 1, timeout=30)
            server.stop("fast")  # every connection drops
            wait_for(lambda: said("draining the tracking outbox failed"), timeout=30)
            server.start()
            c.start("job", None, instance_id="after")
            wait_for(lambda: drained("after"), timeout=60)
            assert said("draining the tracking outbox works again")
        finally:
            drainer.stop()
    assert [r["seq"] for r in _drained(caplog)] == [1, 2]


# -- tenuto serve processes -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _logged(log: Path) -> list[dict[str, Any]]:
    """The tracking records a process emitted (drained), from its JSON log."""
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:  # a line being written
                continue
            if data.get("logger") == "tenuto" and "seq" in data:
                out.append(data)
    return out


class Served:
    """A ``tenuto serve`` subprocess logging JSON lines to a file."""

    def __init__(self, db_url: str, log: Path, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out = log.open("w")
        options = ["--port", str(self.port), "--log-format", "json", "--log-level", "info"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tenuto",
                "serve",
                "--no-worker",
                "--db",
                db_url,
                *options,
                *args,
            ],
            stderr=self._out,
            stdout=subprocess.DEVNULL,
        )

        def answers() -> bool:
            assert self.proc.poll() is None, log.read_text()
            try:
                httpx.get(f"{self.url}/api/instances", timeout=1)
            except httpx.TransportError:
                return False
            return True

        wait_for(answers, timeout=30, interval=0.05, what="tenuto serve to answer")

    def records(self) -> list[dict[str, Any]]:
        """The tracking records this process emitted (drained)."""
        return _logged(self.log)

    def metric(self, line_start: str) -> float | None:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(line_start + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*args: str) -> Served:
        s = Served(db_url, tmp_path / f"serve-{len(started)}.log", *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [sys.executable, "-m", "tenuto", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_pause_from_the_cli_reaches_the_serve_log_and_metrics_exactly_once(serve, client, db_url):
    server = serve()
    client.start("job", None, instance_id="cli-1")
    done = _cli("pause", "cli-1", "--reason", "storage outage", "--by", "alice", "--db", db_url)
    assert done.returncode == 0, done.stderr
    client.start("job", None, instance_id="cli-2")  # a later record: the pause is behind it

    def drained() -> list[dict[str, Any]]:
        records = server.records()
        return records if any(r["instance_id"] == "cli-2" for r in records) else []

    records = wait_for(drained, timeout=20, interval=0.05, what="serve to drain the outbox")
    paused = [r for r in records if r["event"] == "paused"]
    assert len(paused) == 1
    assert paused[0]["instance_id"] == "cli-1"
    assert (paused[0]["reason"], paused[0]["by"], paused[0]["source"]) == (
        "storage outage",
        "alice",
        "client",
    )
    assert "instance paused: instance_id=cli-1" in paused[0]["message"]
    assert server.metric('tenuto_pauses_total{source="client"}') == 1.0
    assert server.metric('tenuto_events_total{event="paused"}') == 1.0
    assert server.metric('tenuto_events_total{event="started"}') == 2.0
    assert server.metric("tenuto_outbox_pending") == 0.0


def _holder_pid(client: tenuto.Client) -> int | None:
    holder = _state(client).holder
    return None if holder is None else int(holder.split(":")[1])


def test_two_serve_processes_emit_once_between_them_and_one_takes_over_from_a_killed_one(
    serve, client, db_url
):
    servers = [serve("--lease-seconds", "2"), serve("--lease-seconds", "2")]
    client.start_many("job", [None] * 20)
    wait_for(lambda: _state(client).emitted == 20, timeout=20, what="the first records")
    by_pid = {s.proc.pid: s for s in servers}
    holder = by_pid[wait_for(lambda: _holder_pid(client), what="a holder")]
    other = next(s for s in servers if s is not holder)
    seqs = Counter(r["seq"] for s in servers for r in s.records())
    assert seqs == Counter(range(1, 21))  # once between them
    assert other.metric('tenuto_events_total{event="started"}') == 20.0

    # A burst, and the holder killed while it drains it.
    total = 20 + 20_000
    client.start_many("job", [None] * 20_000)

    def draining() -> bool:
        state = _state(client)
        return state.emitted > 20

    wait_for(draining, timeout=30, interval=0.001, what="the drain to be under way")
    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait()
    at_kill = _state(client)
    assert at_kill.emitted < total, "the drain ended before the kill: make the burst larger"

    wait_for(lambda: _state(client).emitted == total, timeout=60, what="the other to take over")
    assert _holder_pid(client) == other.proc.pid
    seqs = Counter(r["seq"] for s in servers for r in s.records())
    assert set(seqs) == set(range(1, total + 1))  # nothing lost
    repeated = [seq for seq, n in seqs.items() if n > 1]
    # At least once: only the batch the killed process was emitting repeats.
    assert all(at_kill.emitted < seq <= at_kill.emitted + 500 for seq in repeated)
    assert other.metric('tenuto_events_total{event="started"}') == float(total)


def test_tenuto_worker_drains_the_outbox_too(client, db_url, tmp_path):
    log = tmp_path / "worker.log"
    apps = Path(__file__).parent / "apps"
    with log.open("w") as out:
        command = ["worker", "crashy:app", "--db", db_url, "--log-format", "json"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "tenuto", *command],
            stderr=out,
            env={
                **os.environ,
                "CRASH_LOG": str(tmp_path / "crash.log"),
                "PYTHONPATH": os.pathsep.join([str(apps), os.environ.get("PYTHONPATH", "")]),
            },
        )
    try:
        client.start("job", None, instance_id="w-1")
        done = _cli("pause", "w-1", "--reason", "patching", "--by", "eve", "--db", db_url)
        assert done.returncode == 0, done.stderr

        def paused() -> list[dict[str, Any]]:
            return [r for r in _logged(log) if r["event"] == "paused"]

        records = wait_for(paused, timeout=30, interval=0.05, what="the worker to drain")
        assert [(r["instance_id"], r["reason"], r["by"]) for r in records] == [
            ("w-1", "patching", "eve")
        ]
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    assert _state(client).holder is None  # the lease given up on the way out
    assert "could not release the outbox lease" not in log.read_text()
