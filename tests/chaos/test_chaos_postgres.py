"""The test's own PostgreSQL server (never the shared one) is restarted, and every
connection to it cut with ``pg_terminate_backend``, while worker processes run rounds
of work and the test keeps commanding instances. Workers and clients ride the outages
out; nothing is lost or half-written."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Fleet, Round, assert_no_problems, client_for, rounds

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def own_server() -> Iterator[object]:
    from conftest import own_postgres

    with own_postgres() as server:
        yield server


def cut_connections(server: object) -> int:
    """Terminate every client connection to ``server`` but this one; returns how many."""
    with psycopg.connect(server.url, autocommit=True) as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchone()
    return int(row[0])


@pytest.mark.slow
def test_postgres_restarted_and_connections_cut_mid_round(own_server: object, tmp_path) -> None:
    log: Path = tmp_path / "chaos.log"
    log.touch()
    url = f"{own_server.url}?schema=chaos"  # type: ignore[attr-defined]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    cut: list[int] = []
    restarts = 0
    n = rounds(4)
    started = time.monotonic()
    with client_for(url) as client, Fleet(url, log, size=2) as fleet:
        for r in range(n):
            rnd = Round(client, url, log, rng, f"pg{r}", instances=16, commands=40)
            rnd.start()
            outage: list[threading.Thread] = []

            def restart(down: float) -> None:
                own_server.stop("fast")  # type: ignore[attr-defined]
                time.sleep(down)  # the server stays down a while, as in a real restart
                own_server.start()  # type: ignore[attr-defined]

            def during(i: int, outage: list[threading.Thread] = outage) -> None:
                nonlocal restarts
                if i in (8, 28):
                    cut.append(cut_connections(own_server))
                if i == 18:
                    restarts += 1
                    t = threading.Thread(target=restart, args=(rng.uniform(0.3, 1.5),))
                    t.start()
                    outage.append(t)

            rnd.command(during)
            for t in outage:
                t.join(timeout=120)
            rnd.settle()
            assert_no_problems(rnd.check())
        deaths = list(fleet.deaths)
    print(
        f"\nchaos postgres (seed {seed}): {n} rounds, {restarts} restarts, "
        f"connections cut {cut}, {time.monotonic() - started:.1f} s"
    )
    assert deaths == [], f"worker processes exited during the outages: {deaths}"
    assert restarts == n and sum(cut) > 0, (restarts, cut)


def test_a_worker_started_while_the_server_is_down_waits_for_it(
    own_server: object, tmp_path
) -> None:
    """Regression: a worker whose start-up (schema check, name registration) met a cut
    connection exited with "server closed the connection unexpectedly"."""
    log: Path = tmp_path / "chaos.log"
    log.touch()
    url = f"{own_server.url}?schema=late"  # type: ignore[attr-defined]
    own_server.stop("fast")  # type: ignore[attr-defined]
    fleet = Fleet(url, log, size=1).start()
    try:
        try:
            time.sleep(1.0)  # the fault: the server stays down while the worker starts
            assert fleet.procs[0].poll() is None, "the worker gave up while the server was down"
        finally:
            own_server.start()  # type: ignore[attr-defined]
        with client_for(url) as client:
            iid = client.start("flow", {"chain": 2, "fan": 1, "event": False})
            assert client.wait(iid, timeout=60).output == [1, 3, 201]
        assert fleet.deaths == []
    finally:
        fleet.stop()
