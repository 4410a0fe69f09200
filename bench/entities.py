"""Entity throughput: ``python -m bench.entities --backend sqlite|postgres|both``.

Two workloads, each ``--ops`` signals (``add 1``) queued first, then applied by one
worker (in this process, as ``tenuto.Worker`` runs it):

* ``one entity``: every operation goes to ``@counter@hot``: one batch at a time, up to
  200 operations each (the per-entity batch size);
* ``1,000 entities``: the operations are spread over ``@counter@0`` .. ``@counter@999``,
  up to 100 entities per round.

It prints, per backend and workload, how long the worker took to apply them all and the
operations per second, and checks the sums (each operation applied exactly once). It
also times ``Client.signal_entity`` (one transaction per signal) for 1,000 signals.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import tenuto
from tenuto.store.entity_base import NewEntityOp

from .databases import DEFAULT_PG_URL, _pg_admin

app = tenuto.App()


@app.entity
def counter(ctx: tenuto.EntityContext, amount: int = 0) -> int:
    value: int = ctx.get_state(0) + amount
    ctx.set_state(value)
    return value


def _queue(client: tenuto.Client, keys: list[str], ops: int) -> None:
    """Queue ``ops`` signals round-robin over ``keys`` (in transactions of 5,000)."""
    now = time.time()
    pending = [
        NewEntityOp(f"@counter@{keys[i % len(keys)]}", "signal", "add", "1", now)
        for i in range(ops)
    ]
    for start in range(0, len(pending), 5000):
        part = pending[start : start + 5000]
        client.store.run(lambda tx, part=part: tx.add_entity_ops(part, now))


def _applied(client: tenuto.Client, keys: list[str]) -> int:
    total = 0
    cursor = None
    while True:
        page = client.query_entities("counter", limit=1000, cursor=cursor)
        total += sum(s.state or 0 for s in page.items if s.entity_id.key in keys)
        cursor = page.next_cursor
        if cursor is None:
            return total


def run(url: str, keys: list[str], ops: int) -> tuple[float, float]:
    """Seconds to apply ``ops`` signals over ``keys``, and operations per second."""
    with tenuto.Client(url) as client:
        _queue(client, keys, ops)
        start = time.perf_counter()
        with tenuto.Worker(app, store=client.store, poll_interval=0.05):
            ids = [f"@counter@{k}" for k in keys]
            while client.store.read(lambda r: r.pending_entity_ops(ids)):
                time.sleep(0.1)
            seconds = time.perf_counter() - start
        assert _applied(client, keys) == ops, "an operation was lost or applied twice"
    return seconds, ops / seconds


def signal_rate(url: str, count: int = 1000) -> float:
    with tenuto.Client(url) as client:
        start = time.perf_counter()
        for _ in range(count):
            client.signal_entity("@counter@client", "add", 1)
        return count / (time.perf_counter() - start)


#: The PostgreSQL schemas this run made (dropped at its end).
_SCHEMAS: list[str] = []


def _url(backend: str, folder: Path, pg_url: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / f'entities-{uuid.uuid4().hex[:6]}.db'}"
    _SCHEMAS.append(f"bench_entities_{uuid.uuid4().hex[:8]}")
    return f"{pg_url}?schema={_SCHEMAS[-1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.entities")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"{'backend':10} {'workload':16} {'ops':>8} {'seconds':>8} {'ops/s':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            for label, keys in (
                ("one entity", ["hot"]),
                ("1,000 entities", [str(i) for i in range(1000)]),
            ):
                seconds, rate = run(_url(backend, Path(folder), args.pg_url), keys, args.ops)
                print(f"{backend:10} {label:16} {args.ops:>8} {seconds:>8.2f} {rate:>9.0f}")
            rate = signal_rate(_url(backend, Path(folder), args.pg_url))
            print(f"{backend:10} {'client signals':16} {1000:>8} {1000 / rate:>8.2f} {rate:>9.0f}")
    if _SCHEMAS:
        _pg_admin(args.pg_url, [f'DROP SCHEMA IF EXISTS "{name}" CASCADE' for name in _SCHEMAS])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
