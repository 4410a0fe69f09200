"""The tracking log: one structured record per state change."""

from __future__ import annotations

import json
import logging

import tenuto
from tenuto.tracking import JsonFormatter

app = tenuto.App()


@app.activity
def boom(_: object) -> None:
    raise RuntimeError("boom")


@app.orchestrator
def ok(ctx, x):
    return x


@app.orchestrator
def bad(ctx, _):
    yield ctx.call_activity(boom, None)


@app.orchestrator
def waits(ctx, _):
    yield ctx.wait_for_event("never")


def _records(caplog) -> list[dict]:
    return [r.tenuto for r in caplog.records if hasattr(r, "tenuto")]


def test_every_state_change_is_one_structured_record(client, start_worker, caplog):
    caplog.set_level(logging.INFO, logger="tenuto")
    start_worker(app)
    a = client.start(ok, 1, instance_id="t-ok")
    b = client.start(bad, None, instance_id="t-bad")
    c = client.start(waits, None, instance_id="t-term")
    client.wait(a, timeout=10)
    client.wait(b, timeout=10)
    client.pause(c, "why not", by="ann")
    client.resume(c, by="bob")
    client.terminate(c, "done", by="cid")
    events = [(r["event"], r["instance_id"]) for r in _records(caplog)]
    for expected in [
        ("started", "t-ok"),
        ("completed", "t-ok"),
        ("started", "t-bad"),
        ("activity_failed", "t-bad"),
        ("failed", "t-bad"),
        ("paused", "t-term"),
        ("resumed", "t-term"),
        ("terminated", "t-term"),
    ]:
        assert events.count(expected) == 1, expected
    failed = next(r for r in _records(caplog) if r["event"] == "failed")
    assert failed["error"].startswith("tenuto.errors.ActivityFailed")
    terminated = next(r for r in _records(caplog) if r["event"] == "terminated")
    assert terminated == {
        "event": "terminated",
        "instance_id": "t-term",
        "reason": "done",
        "by": "cid",
    }


def test_records_format_as_json_lines(client, caplog):
    caplog.set_level(logging.INFO, logger="tenuto")
    client.start(waits, None, instance_id="json-1")
    record = next(r for r in caplog.records if getattr(r, "tenuto", None))
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "started" and line["instance_id"] == "json-1"
    assert line["logger"] == "tenuto" and line["level"] == "INFO"
    assert "instance started" in line["message"]
