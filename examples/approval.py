"""Human approval with a timeout.

An expense report waits for a manager's decision, sent as an external event. If none
comes within the deadline, it escalates. While it waits it can be paused (say the
approver is on leave): the deadline timer and any decision sent meanwhile are kept and
handled after resume.

Run it::

    python examples/approval.py
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import tenuto

app = tenuto.App()


@app.activity
def notify(message: str) -> str:
    print(f"  [notify] {message}")
    return message


@app.orchestrator
def expense_approval(ctx: tenuto.OrchestrationContext, report: dict):  # type: ignore[no-untyped-def]
    yield ctx.call_activity(notify, f"please approve {report['id']} ({report['amount']} EUR)")
    try:
        decision = yield ctx.wait_for_event("decision", timeout=timedelta(seconds=report["wait"]))
    except tenuto.EventTimeout:
        yield ctx.call_activity(notify, f"no answer for {report['id']}: escalated")
        return {"id": report["id"], "status": "escalated"}
    verdict = "approved" if decision["approved"] else "rejected"
    yield ctx.call_activity(notify, f"{report['id']} {verdict} by {decision['by']}")
    return {"id": report["id"], "status": verdict, "by": decision["by"]}


def main() -> None:
    # A database of its own, in a temporary folder removed at the end.
    with tempfile.TemporaryDirectory(prefix="tenuto-approval-") as tmp:
        run(f"sqlite:///{Path(tmp) / 'approval.db'}")


def run(db: str) -> None:
    with tenuto.Worker(app, db), tenuto.Client(db, app=app, actor="finance") as client:
        print("1. a manager approves in time")
        a = client.start(expense_approval, {"id": "EXP-1", "amount": 120, "wait": 30})
        client.raise_event(a, "decision", {"approved": True, "by": "dana"})
        print("  ->", client.wait(a, timeout=30).output)

        print("2. nobody answers: the timeout escalates")
        b = client.start(expense_approval, {"id": "EXP-2", "amount": 80, "wait": 0.5})
        print("  ->", client.wait(b, timeout=30).output)

        print("3. paused while the approver is away; the decision sent meanwhile is kept")
        c = client.start(expense_approval, {"id": "EXP-3", "amount": 400, "wait": 30})
        client.pause(c, reason="approver on leave")
        client.raise_event(c, "decision", {"approved": False, "by": "sam"})
        print("  status while paused:", client.status(c).runtime_status.value)
        client.resume(c, reason="approver back")
        print("  ->", client.wait(c, timeout=30).output)


if __name__ == "__main__":
    main()
