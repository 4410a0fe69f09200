"""``python -m bench --backend sqlite|postgres|both [--quick] [--only a,b,...]``, and
``python -m bench --scale [--sizes 100k,1m]`` (the scale bench, :mod:`bench.at_scale`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import report
from .databases import DEFAULT_PG_URL, VARIANTS, postgres_version
from .runner import ALL, failed_jobs, run_all, run_jobs, runs_for
from .scale import FULL, QUICK, Scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark tenuto against DBOS Transact on identical workloads.",
    )
    parser.add_argument(
        "--backend",
        choices=sorted(VARIANTS),
        default="sqlite",
        help="sqlite runs SQLite at synchronous=NORMAL and FULL",
    )
    parser.add_argument(
        "--quick", action="store_true", help="scaled-down workloads: a smoke run in about a minute"
    )
    parser.add_argument(
        "--only",
        default=",".join(ALL),
        help=f"comma-separated workloads among {','.join(ALL)} (default: all)",
    )
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help=f"PostgreSQL server to use (default {DEFAULT_PG_URL})",
    )
    parser.add_argument(
        "--rerun-failed",
        action="store_true",
        help="re-run only the runs that failed in results/latest.json, merge them into it "
        "and rewrite the report (the other options are taken from that file)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="merge the numbers of this run into results/latest.json and rewrite the report "
        "(keeps the other workloads' rows: for adding or re-measuring some workloads)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="the scale bench instead (bench/at_scale.py): stores of 100k and 1M instances, "
        "list queries, count, bulk operations, step latency; writes results/scale.md",
    )
    parser.add_argument(
        "--sizes",
        default="100k,1m",
        help="with --scale: comma-separated store sizes among 10k (a smoke run), 100k, 1m "
        "(default: 100k,1m)",
    )
    args = parser.parse_args(argv)
    if args.scale:
        from . import at_scale

        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        unknown = set(sizes) - set(at_scale.SIZES)
        if unknown:
            parser.error(f"--sizes: unknown {sorted(unknown)}; use 100k and/or 1m")
        backends = {"sqlite": ["sqlite"], "postgres": ["postgres"], "both": ["sqlite", "postgres"]}
        return at_scale.run(backends[args.backend], sizes, args.pg_url)
    if args.rerun_failed:
        return rerun_failed(args.pg_url)

    only = [w.strip() for w in args.only.split(",") if w.strip()]
    try:
        runs = runs_for(only)
    except ValueError as exc:
        parser.error(str(exc))
    variants = list(VARIANTS[args.backend])
    scale = QUICK if args.quick else FULL
    pg_version = postgres_version(args.pg_url) if "postgres" in variants else None

    print(
        f"bench: backends {', '.join(variants)}; runs {', '.join(runs)}"
        f"{' (quick)' if args.quick else ''}"
    )
    results = run_all(variants, runs, scale, args.pg_url)
    machine = report.machine_info(pg_version)
    machine["argv"] = " ".join(sys.argv[1:] if argv is None else argv)
    if args.merge:
        results, machine = merged(results, machine, scale)
    rows, md = report.write(results, scale, args.quick, machine)
    print()
    print(report.text_table(rows))
    print(f"\nwritten: {md}, {md.with_suffix('.png')}, {md.with_suffix('.json')}")
    failed = any("error" in n for v in results.values() for r in v.values() for n in r.values())
    return 1 if failed else 0


def merged(
    results: dict[str, Any], machine: dict[str, Any], scale: Scale
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``results`` merged into those of results/latest.json (same scale required), and
    that report's machine table with a note of the merge."""
    previous = json.loads((report.RESULTS_DIR / "latest.json").read_text())
    if Scale.from_json(previous["scale"]) != scale:
        raise SystemExit("bench: --merge needs the scale of results/latest.json (--quick or not)")
    into = previous["results"]
    for variant, by_run in results.items():
        into.setdefault(variant, {}).update(by_run)
    note = f"{machine['argv']} merged {machine['date']}"
    old = previous["machine"]
    old["merges"] = (old["merges"] + "; " if old.get("merges") else "") + note
    return into, old


def rerun_failed(pg_url: str) -> int:
    """Re-run the failed runs of the last report and rewrite it with their new numbers."""
    previous = json.loads((report.RESULTS_DIR / "latest.json").read_text())
    results, quick = previous["results"], previous["quick"]
    scale = Scale.from_json(previous["scale"])
    jobs = failed_jobs(results)
    if not jobs:
        print("bench: nothing failed in results/latest.json")
        return 0
    print(f"bench: re-running {len(jobs)} failed run(s)")
    run_jobs(jobs, scale, pg_url, results)
    machine = previous["machine"]
    reruns = machine.get("reruns", "")
    when = report.machine_info(None)["date"]
    done = ", ".join(f"{v}/{r}/{s}" for v, r, s in jobs)
    machine["reruns"] = (reruns + "; " if reruns else "") + f"{done} re-run {when}"
    rows, md = report.write(results, scale, quick, machine)
    print()
    print(report.text_table(rows))
    print(f"\nwritten: {md}, {md.with_suffix('.png')}, {md.with_suffix('.json')}")
    return 1 if failed_jobs(results) else 0


if __name__ == "__main__":
    sys.exit(main())
