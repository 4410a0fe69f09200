"""Schedules and limits in the REST API, against a real server on loopback."""

from __future__ import annotations

import httpx
import pytest

import tenuto

from helpers import wait_for

app = tenuto.App()


@app.activity
def echo(x: object) -> object:
    return x


@app.orchestrator
def tick(ctx, x):
    return (yield ctx.call_activity(echo, x))


@pytest.fixture
def api(http_server):
    server = http_server(app)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    return str(r.json()["message"])


def test_schedule_lifecycle_over_http(api):
    body = {"schedule_id": "beat", "orchestrator": "tick", "input": 4, "every_seconds": 1}
    r = api.post("/api/schedules", json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/api/schedules/beat"
    assert r.json()["every_seconds"] == 1 and not r.json()["paused"]
    assert "already exists" in _error(api.post("/api/schedules", json=body), 409, "schedule_exists")
    run = wait_for(lambda: api.get("/api/schedules/beat").json()["last_runs"], timeout=10)[0]
    assert run["instance_id"].startswith("beat@")
    r = api.post("/api/schedules/beat/pause", json={"reason": "quiet", "by": "ops"})
    assert r.json()["changed"] and r.json()["schedule"]["pause"]["reason"] == "quiet"
    standing = api.get("/api/standing-pauses").json()["items"]
    assert [(p["kind"], p["name"], p["by"]) for p in standing] == [("schedule", "beat", "ops")]
    assert api.post("/api/schedules/beat/resume").json()["changed"]
    assert api.post("/api/schedules/pause", json={"orchestrator": "tick"}).json() == {"count": 1}
    assert api.post("/api/schedules/resume", json={}).json() == {"count": 1}
    r = api.patch("/api/schedules/beat", json={"cron": "0 2 * * *", "timezone": "Europe/Paris"})
    assert r.json()["cron"] == "0 2 * * *" and r.json()["every_seconds"] is None
    triggered = api.post("/api/schedules/beat/trigger", json={"overlap": "allow_all"}).json()
    assert triggered["instance_id"].startswith("beat@")
    r = api.post(
        "/api/schedules/beat/backfill",
        json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T23:00:00Z"},
    )
    assert r.json()["started"] == ["beat@2026-01-01T01:00:00Z", "beat@2026-01-02T01:00:00Z"]
    assert [s["schedule_id"] for s in api.get("/api/schedules").json()["items"]] == ["beat"]
    assert api.delete("/api/schedules/beat").status_code == 204
    _error(api.get("/api/schedules/beat"), 404, "schedule_not_found")
    _error(api.post("/api/schedules/beat/pause"), 404, "schedule_not_found")


def test_bad_schedules_are_422_saying_what_is_wrong(api):
    r = api.post("/api/schedules", json={"schedule_id": "x", "orchestrator": "tick", "cron": "x"})
    assert "invalid cron expression" in _error(r, 422, "invalid")
    r = api.post("/api/schedules", json={"schedule_id": "x", "orchestrator": "tick"})
    assert "exactly one of every" in _error(r, 422, "invalid")
    assert api.get("/api/schedules").json()["items"] == []


def test_limits_over_http(api):
    r = api.put("/api/limits/activities/echo", json={"max_concurrent": 2, "reason": "quota"})
    assert r.status_code == 200, r.text
    assert (r.json()["max_concurrent"], r.json()["reason"]) == (2, "quota")
    api.put("/api/limits/orchestrators/tick", json={"max_running": 3})
    items = api.get("/api/limits").json()["items"]
    assert [(i["kind"], i["name"]) for i in items] == [
        ("activity", "echo"),
        ("orchestrator", "tick"),
    ]
    r = api.put("/api/limits/activities/echo", json={"max_concurrent": 0})
    assert "max_concurrent" in _error(r, 422, "invalid")
    assert api.delete("/api/limits/activities/echo").json() == {"removed": True}
    assert api.delete("/api/limits/activities/echo").json() == {"removed": False}
    assert api.delete("/api/limits/orchestrators/tick").json() == {"removed": True}
    assert api.get("/api/limits").json()["items"] == []


def test_start_with_priority(api):
    r = api.post("/api/instances", json={"name": "tick", "input": 1, "priority": 5})
    assert r.status_code == 201, r.text
