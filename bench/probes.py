"""Two probes behind docs/performance.md, run against one database URL.

``python -m bench.probes phases URL``: one sequential orchestration of ``--steps``
activities with an in-process worker whose phases are timed (by wrapping the worker's
own methods): where one step's time goes.

``python -m bench.probes resumes URL``: workload (e) in one process, counted: an
orchestration of activities runs; ``--pauses`` times it is paused for 30 ms and resumed;
prints resume-to-next-activity percentiles and how many claimed steps had to replay
the whole history (``cold``) or found the instance in the replay cache (``warm``).

Add ``--eager-steps-below 0`` to compare with eager steps off.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import tenuto
from tenuto import _activities, _runner, worker

from .apps import app, chain

probe_app = tenuto.App()
_starts: list[float] = []


@probe_app.activity
def tick(x: int) -> int:
    _starts.append(time.time())
    return x + 1


@probe_app.orchestrator
def ticker(ctx: tenuto.OrchestrationContext, n: int) -> Any:
    x = 0
    for _ in range(n):
        x = yield ctx.call_activity(tick, x)
    return x


def _timed(owner: type, name: str, into: list[float]) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - t)

    setattr(owner, name, timed)


def phases(url: str, steps: int, eager_below: float) -> None:
    times: dict[str, list[float]] = defaultdict(list)
    for owner, name, label in [
        (worker.Worker, "_cycle", "whole cycle (one transaction)"),
        (worker.Worker, "_commit_eager", "eager: store check sent + step written"),
        (_runner.StepRunner, "commit", "  of which: writing the step"),
        (_runner.StepRunner, "run_on_result", "eager: running the step"),
        (_activities.ActivityRunner, "start", "handing the activity to its thread"),
    ]:
        _timed(owner, name, times[label])
    with (
        tenuto.Worker(app, url, eager_steps_below=eager_below) as w,
        tenuto.Client(url, app=app) as client,
    ):
        client.wait(client.start(chain, 5), timeout=60)
        for values in times.values():
            values.clear()
        eager_before, t0 = w.eager_steps, time.perf_counter()
        client.wait(client.start(chain, steps), timeout=600)
        per_step = (time.perf_counter() - t0) * 1000 / steps
        eager = w.eager_steps - eager_before  # counted after each commit: give or take one
        print(f"{per_step:.3f} ms per step over {steps} steps; eager steps: {eager}")
    for label, values in times.items():
        if values:
            mean = statistics.fmean(values) * 1000
            print(f"  {label:42s} {mean:7.3f} ms  (n={len(values)})")


def resumes(url: str, pauses: int, eager_below: float) -> None:
    claims: Counter[str] = Counter()
    original = _runner.StepRunner.claim

    def claim(self: _runner.StepRunner, *args: Any, **kwargs: Any) -> Any:
        claimed = original(self, *args, **kwargs)
        for c in claimed:
            claims["warm" if c.replayer is not None else "cold"] += 1
        return claimed

    _runner.StepRunner.claim = claim  # type: ignore[method-assign]
    rng = random.Random(6)
    latencies = []
    with (
        tenuto.Worker(probe_app, url, eager_steps_below=eager_below),
        tenuto.Client(url) as client,
    ):
        iid = client.start(ticker, 10**9)
        time.sleep(0.2)
        claims.clear()
        for _ in range(pauses):
            time.sleep(rng.uniform(0.005, 0.03))
            client.pause(iid, reason="probe")
            time.sleep(0.03)
            seen, t = len(_starts), time.time()
            client.resume(iid, reason="probe")
            while len(_starts) == seen:
                time.sleep(0.0002)
            latencies.append((_starts[seen] - t) * 1000)
        events = len(client.history(iid))
        client.terminate(iid)
    q = statistics.quantiles(latencies, n=100)
    print(
        f"resume -> next activity: p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, p99 {q[98]:.1f} ms; "
        f"claimed steps: {claims['cold']} cold, {claims['warm']} warm; "
        f"history at the end: {events} events"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probes", description=__doc__)
    parser.add_argument("probe", choices=["phases", "resumes"])
    parser.add_argument("url", help="a fresh database: sqlite:///path or postgresql://...")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--pauses", type=int, default=100)
    parser.add_argument("--eager-steps-below", type=float, default=0.1)
    args = parser.parse_args(argv)
    if args.probe == "phases":
        phases(args.url, args.steps, args.eager_steps_below)
    else:
        resumes(args.url, args.pauses, args.eager_steps_below)


if __name__ == "__main__":
    main()
