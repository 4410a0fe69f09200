"""A monitor: check a service every interval, forever, with bounded history.

An eternal orchestration loops with ``ctx.continue_as_new`` so its history restarts at
each round instead of growing. Pausing it stops the checks; on resume it continues, and
a check that came due while paused runs at once.

Run it::

    python examples/monitor.py
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import tenuto

app = tenuto.App()


@app.activity
def check_health(round_: int) -> str:
    return "degraded" if round_ == 3 else "ok"


@app.orchestrator
def monitor(ctx: tenuto.OrchestrationContext, state: dict):  # type: ignore[no-untyped-def]
    health = yield ctx.call_activity(check_health, state["round"])
    alerts = state["alerts"] + ([state["round"]] if health != "ok" else [])
    ctx.set_custom_status({"round": state["round"], "health": health, "alerts": alerts})
    if state["round"] >= state["rounds"]:
        return {"rounds": state["round"], "alerts": alerts}
    yield ctx.create_timer(timedelta(seconds=state["every"]))
    ctx.continue_as_new({**state, "round": state["round"] + 1, "alerts": alerts})


def main() -> None:
    # A database of its own, in a temporary folder removed at the end.
    with tempfile.TemporaryDirectory(prefix="tenuto-monitor-") as tmp:
        run(f"sqlite:///{Path(tmp) / 'monitor.db'}")


def run(db: str) -> None:
    with tenuto.Worker(app, db), tenuto.Client(db, app=app) as client:
        iid = client.start(monitor, {"round": 1, "rounds": 5, "every": 0.1, "alerts": []})
        st = client.wait(iid, timeout=60)
        print(f"after {st.output['rounds']} rounds: alerts in rounds {st.output['alerts']}")
        print(f"history kept: {len(client.history(iid))} events (one round, not five)")


if __name__ == "__main__":
    main()
