"""``python -m bench.ab``: tenuto's throughput at a base commit (A) and in the working
tree (B), on the same machine in the same run, for changes on the hot path.

    python -m bench.ab --base main --backend both --rounds 5

A is the ``src/`` of ``--base`` (``git archive``), B the working tree's. Each run is a
fresh Python process (``PYTHONPATH`` picks the variant) and a fresh database, running
workload (b) of the bench: ``--count`` orchestrations of ``--steps`` activities, an
in-process worker, steps/s from the first start to the last result seen. Where the
variant has a tracking outbox (:mod:`tenuto.outbox`), the run also drains it, as
``tenuto worker`` does, so its cost is in the number. Rounds alternate the order (AB,
BA, ...) so that neither variant always runs on a warmer machine; the report gives the
median of each, and the median of the rounds' ratios B / A (a round's two runs are
back to back, so a load that drifts during the run weighs less on their ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

from .databases import DEFAULT_PG_URL, VARIANTS, Databases

ROOT = Path(__file__).resolve().parent.parent


def _export(ref: str, into: Path) -> Path:
    """The ``src/`` folder of commit ``ref``, extracted under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _run_many(url: str, count: int, steps: int, warmup: int) -> dict[str, Any]:
    """Workload (b) as :mod:`bench.tenuto_workloads` runs it (without its psutil
    dependency): steps/s from the first start to the last result seen."""
    import tenuto

    from .apps import app, chain

    with tenuto.Worker(app, url), tenuto.Client(url, app=app) as client:
        client.wait_many([client.start(chain, 1) for _ in range(warmup)], timeout=120)
        t0, cpu0 = time.time(), time.process_time()
        finals = client.wait_many(client.start_many(chain, [steps] * count), timeout=600)
        seconds, cpu = time.time() - t0, time.process_time() - cpu0
    if any(s.output != steps for s in finals):
        raise RuntimeError("an instance did not complete correctly")
    # CPU time of this process (worker, client, drainer; not the database server's):
    # far less sensitive than wall time to other jobs on a shared machine.
    return {
        "seconds": seconds,
        "steps_per_s": count * steps / seconds,
        "cpu_ms_per_step": cpu * 1000 / (count * steps),
    }


def _child(url: str, count: int, steps: int, warmup: int, drain: bool) -> dict[str, Any]:
    """One run, in this process (the variant is whichever ``tenuto`` is imported)."""
    import importlib.util

    import tenuto

    drainer = None
    if drain and importlib.util.find_spec("tenuto.outbox") is not None:
        from tenuto.outbox import Drainer

        store = tenuto.Client(url).store  # creates the schema before the drainer reads it
        drainer = Drainer(store)
        drainer.start()
    try:
        result = _run_many(url, count, steps, warmup)
    finally:
        if drainer is not None:
            drainer.stop()
    result["tenuto"] = os.path.dirname(tenuto.__file__)
    result["drained"] = drainer is not None
    return result


def _run(src: Path, url: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}
    sizes = ["--count", str(args.count), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    sizes += ["--no-drain"] if args.no_drain else []
    out = subprocess.run(
        [sys.executable, "-m", "bench.ab", "--child", url, *sizes],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"run failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["tenuto"].startswith(str(src)):
        raise RuntimeError(f"imported tenuto from {result['tenuto']}, not {src}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--base", default="main", help="the commit of A (default: main)")
    parser.add_argument("--backend", choices=sorted(VARIANTS), default="sqlite")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=200, help="orchestrations per run")
    parser.add_argument("--steps", type=int, default=5, help="activities per orchestration")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument(
        "--no-drain",
        action="store_true",
        help="run no outbox drainer in B: the cost of writing the records alone",
    )
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        drain = not args.no_drain
        print(json.dumps(_child(args.child, args.count, args.steps, args.warmup, drain)))
        return 0
    with tempfile.TemporaryDirectory(prefix="tenuto-ab-") as tmp:
        variants = {"A": _export(args.base, Path(tmp)), "B": ROOT / "src"}
        dbs = Databases(args.pg_url)
        rows = []
        try:
            for backend in VARIANTS[args.backend]:
                found: dict[str, list[float]] = {"A": [], "B": []}
                cpu: dict[str, list[float]] = {"A": [], "B": []}
                for n in range(args.rounds):
                    for name in ("A", "B") if n % 2 == 0 else ("B", "A"):
                        with dbs.fresh(backend, "tenuto", f"ab{name.lower()}") as url:
                            result = _run(variants[name], url, args)
                        rate, ms = result["steps_per_s"], result["cpu_ms_per_step"]
                        found[name].append(rate)
                        cpu[name].append(ms)
                        print(
                            f"{backend} round {n + 1} {name}: {rate:.0f} steps/s, "
                            f"{ms:.3f} CPU ms/step",
                            flush=True,
                        )
                rows.append((backend, found, cpu))
        finally:
            dbs.close()
    print(f"\nA = {args.base}, B = working tree; {args.rounds} rounds, each A and B back to back")
    drained = "no drainer" if args.no_drain else "B drains its outbox in the same process"
    print(f"({args.count} orchestrations of {args.steps} activities each; {drained})\n")
    print("| backend | steps/s A | steps/s B | B / A per round: median, range | CPU ms/step A, B |")
    print("| --- | --- | --- | --- | --- |")
    for backend, found, cpu in rows:
        # Rounds run back to back are compared with each other: the machine's load drifts
        # less within a round than across the run.
        ratios = [b / a for a, b in zip(found["A"], found["B"], strict=True)]
        a, b = statistics.median(found["A"]), statistics.median(found["B"])
        spread = f"{statistics.median(ratios):.3f}, {min(ratios):.2f}-{max(ratios):.2f}"
        ca, cb = statistics.median(cpu["A"]), statistics.median(cpu["B"])
        print(f"| {backend} | {a:.0f} | {b:.0f} | {spread} | {ca:.3f}, {cb:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
