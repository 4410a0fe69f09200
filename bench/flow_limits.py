"""The cost of flow-control limits when they do not bind: workload (b) (orchestrations of
five activities) with no limit, and with a limit on its activity far above the load.

A limit is checked by every claim of its activity (its row locked, running executions
counted, and with a rate the starts of the last second), so this measures that overhead.
The target: throughput with a limit far above the load within 10% of no limit.

    .venv/bin/python -m bench.flow_limits --backend sqlite
    .venv/bin/python -m bench.flow_limits --backend postgres --rounds 5

Every run is a fresh Python process on a fresh database; the variants alternate, round
after round, and the medians are compared. It prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

import tenuto

from .apps import inc
from .databases import DEFAULT_PG_URL, Databases
from .scale import Scale
from .tenuto_workloads import workload_b

#: The variants: no limit, and limits far above the load of workload (b).
VARIANTS: dict[str, dict[str, Any]] = {
    "no limit": {},
    "max_concurrent=10000": {"max_concurrent": 10_000},
    "max_concurrent=10000, per_second=100000": {"max_concurrent": 10_000, "per_second": 1e5},
}


def child(backend: str, variant: str, pg_url: str, workflows: int) -> dict[str, Any]:
    """One run of workload (b) on a fresh database, with ``variant``'s limit."""
    dbs = Databases(pg_url)
    try:
        with dbs.fresh(backend, "tenuto", "flow") as url:
            limit = VARIANTS[variant]
            if limit:
                with tenuto.Client(url) as client:
                    client.limit_activity(inc, **limit, reason="bench: far above the load")
            return workload_b(url, Scale(b_workflows=workflows))
    finally:
        dbs.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flow_limits")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.backend, args.child, args.pg_url, args.workflows)))
        return
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            out = subprocess.run(
                [sys.executable, "-m", "bench.flow_limits", "--backend", args.backend,
                 "--pg-url", args.pg_url, "--workflows", str(args.workflows), "--child", variant],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"])
    base = statistics.median(results["no limit"])
    print(f"workload (b), {args.workflows} x 5 activities, {args.backend}, {args.rounds} rounds\n")
    print("| variant | steps/s (median) | runs | vs no limit |")
    print("| --- | --- | --- | --- |")
    for variant, values in results.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {variant} | {median:.0f} | {runs} | {median / base:.1%} |")


if __name__ == "__main__":
    main()
