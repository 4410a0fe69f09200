"""A saga: book a trip (flight, hotel, car); if a step fails, undo the earlier ones.

Each booking is an activity; a failure reaches the orchestrator as ``ActivityFailed``,
which it catches to run the compensations in reverse order.

Run it::

    python examples/saga.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import tenuto

app = tenuto.App()
NO_RETRY = tenuto.RetryPolicy(max_attempts=1)


@app.activity
def book(item: dict) -> str:
    if item.get("fail"):
        raise RuntimeError(f"no {item['kind']} available")
    print(f"  booked {item['kind']}")
    return f"{item['kind']}-confirmation"


@app.activity
def cancel(confirmation: str) -> str:
    print(f"  cancelled {confirmation}")
    return confirmation


@app.orchestrator
def book_trip(ctx: tenuto.OrchestrationContext, trip: dict):  # type: ignore[no-untyped-def]
    done: list[str] = []
    try:
        for kind in ("flight", "hotel", "car"):
            item = {"kind": kind, "fail": kind == trip.get("unavailable")}
            done.append((yield ctx.call_activity(book, item, retry=NO_RETRY)))
    except tenuto.ActivityFailed as exc:
        for confirmation in reversed(done):
            yield ctx.call_activity(cancel, confirmation)
        return {"booked": False, "reason": exc.failure.message, "compensated": done[::-1]}
    return {"booked": True, "confirmations": done}


def main() -> None:
    # A database of its own, in a temporary folder removed at the end.
    with tempfile.TemporaryDirectory(prefix="tenuto-saga-") as tmp:
        run(f"sqlite:///{Path(tmp) / 'saga.db'}")


def run(db: str) -> None:
    with tenuto.Worker(app, db), tenuto.Client(db, app=app) as client:
        print("a trip that works out:")
        print("  ->", client.wait(client.start(book_trip, {}), timeout=30).output)
        print("a trip with no car available:")
        out = client.wait(client.start(book_trip, {"unavailable": "car"}), timeout=30).output
        print("  ->", out)


if __name__ == "__main__":
    main()
