"""Runs every selected workload of both systems, each in a fresh process and database."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from .child import RESULT_PREFIX
from .databases import Databases
from .scale import Scale

#: Workload letter -> the run that measures it ("fg" measures both f and g).
RUNS = {"a": "a", "b": "b", "c": "c", "d": "d", "e": "e", "f": "fg", "g": "fg", "s": "s"}
#: The runs DBOS takes part in (it has no pause; "e" runs its cancel/resume analogue).
DBOS_RUNS = ("a", "b", "c", "d", "e")
#: The runs compared with durabletask's in-memory backend instead ("s": the SDK path).
MEMORY_RUNS = ("s",)
ALL = tuple(RUNS)
CHILD_TIMEOUT_S = 1800

Results = dict[str, dict[str, dict[str, dict[str, Any]]]]  # variant -> run -> system -> numbers


def runs_for(only: list[str]) -> list[str]:
    """The distinct runs measuring the workloads ``only`` (letters), in order."""
    out: list[str] = []
    for letter in only:
        if letter not in RUNS:
            raise ValueError(f"unknown workload {letter!r}; choose from {', '.join(ALL)}")
        if RUNS[letter] not in out:
            out.append(RUNS[letter])
    return out


def run_child(system: str, run: str, variant: str, url: str, scale: Scale) -> dict[str, Any]:
    """Run one workload of one system in a fresh Python process; its numbers."""
    cmd = [sys.executable, "-m", "bench.child", system, run, variant, url]
    cmd.append(json.dumps(scale.to_json()))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            if "error" in result:
                sys.stderr.write(proc.stderr[-4000:])
            return result
    sys.stderr.write(proc.stderr[-4000:])
    return {"error": f"no result (exit code {proc.returncode})"}


Job = tuple[str, str, str]  # (variant, run, system)


def jobs_for(variants: list[str], runs: list[str]) -> list[Job]:
    """Every run of ``runs`` on every backend variant, tenuto then DBOS."""
    return [
        (variant, run, system)
        for variant in variants
        for run in runs
        for system in ["tenuto"]
        + (["dbos"] if run in DBOS_RUNS else [])
        + (["memory"] if run in MEMORY_RUNS else [])
    ]


def failed_jobs(results: Results) -> list[Job]:
    """The jobs of a previous run that ended in an error."""
    return [
        (variant, run, system)
        for variant, by_run in results.items()
        for run, by_system in by_run.items()
        for system, numbers in by_system.items()
        if "error" in numbers
    ]


def run_jobs(jobs: list[Job], scale: Scale, pg_url: str, results: Results | None = None) -> Results:
    """Run ``jobs`` one after the other, each in a fresh process and database; their
    numbers, merged into ``results`` if given."""
    results = {} if results is None else results
    dbs = Databases(pg_url)
    try:
        for variant, run, system in jobs:
            t0 = time.monotonic()
            print(f"  {variant:<12} {run:<3} {system:<7}", end="", flush=True)
            with dbs.fresh(variant, system, run) as url:
                numbers = run_child(system, run, variant, url, scale)
            results.setdefault(variant, {}).setdefault(run, {})[system] = numbers
            note = numbers.get("error", "ok")
            print(f" {time.monotonic() - t0:6.1f} s  {note}", flush=True)
    finally:
        dbs.close()
    return results


def run_all(variants: list[str], runs: list[str], scale: Scale, pg_url: str) -> Results:
    """Every run of ``runs`` on every backend variant, tenuto then DBOS."""
    return run_jobs(jobs_for(variants, runs), scale, pg_url)
