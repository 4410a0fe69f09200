"""Entities over HTTP, against a real server on loopback with a worker: tenuto's REST
routes (/api/entities...) and the Durable Functions routes (.../entities/...)."""

from __future__ import annotations

import httpx
import pytest

import tenuto

from helpers import wait_for

app = tenuto.App()
DF = "/runtime/webhooks/durabletask"


@app.entity
class Counter:
    def __init__(self) -> None:
        self.value = 0

    def add(self, amount: int) -> int:
        self.value += amount
        return self.value


@pytest.fixture
def api(http_server):
    server = http_server(app)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def _value(api, key):
    r = api.get(f"/api/entities/counter/{key}")
    return (r.json()["state"] or {}).get("value") if r.status_code == 200 else None


def test_rest_signal_get_list_pause_and_clean(api):
    r = api.post("/api/entities/Counter/a/signals", json={"operation": "add", "input": 2})
    assert r.status_code == 202
    wait_for(lambda: _value(api, "a") == 2)
    got = api.get("/api/entities/counter/a").json()
    assert got["entity_id"] == "@counter@a" and got["locked_by"] is None
    assert got["pending_operations"] == 0 and got["pause"] is None

    r = api.post("/api/entities/counter/a/pause", json={"reason": "check", "by": "ops"})
    assert r.status_code == 200 and r.json()["changed"] is True
    assert r.json()["entity"]["pause"]["reason"] == "check"
    api.post("/api/entities/counter/a/signals", json={"operation": "add", "input": 3})
    wait_for(lambda: api.get("/api/entities/counter/a").json()["pending_operations"] == 1)
    assert _value(api, "a") == 2
    r = api.post("/api/entities/counter/a/resume", json={})
    assert r.json()["changed"] is True
    wait_for(lambda: _value(api, "a") == 5)

    api.post("/api/entities/counter/b/signals", json={"operation": "add", "input": 1})
    wait_for(lambda: _value(api, "b") == 1)
    page = api.get("/api/entities", params={"name": "counter", "limit": 1}).json()
    assert [e["entity_id"] for e in page["items"]] == ["@counter@a"] and page["next_cursor"]
    rest = api.get("/api/entities", params={"cursor": page["next_cursor"]}).json()
    assert [e["entity_id"] for e in rest["items"]] == ["@counter@b"]
    assert api.post("/api/entity-storage/clean").json() == {"removed": 0, "released_locks": 0}


def test_rest_standing_pause_of_an_entity_type(api):
    r = api.post("/api/entity-types/counter/pause", json={"reason": "deploy"})
    assert r.status_code == 200 and r.json()["changed"] is True
    assert [p["kind"] for p in r.json()["standing_pauses"]] == ["entity"]
    api.post("/api/entities/counter/held/signals", json={"operation": "add", "input": 1})
    held = api.get("/api/entities/counter/held").json()
    assert held["pause"]["source"] == "entity" and held["pending_operations"] == 1
    assert api.get("/api/standing-pauses").json()["items"][0]["kind"] == "entity"
    r = api.post("/api/entity-types/counter/resume", json={})
    assert r.json()["changed"] is True and r.json()["standing_pauses"] == []
    wait_for(lambda: _value(api, "held") == 1)


def test_rest_errors(api):
    assert api.get("/api/entities/counter/nobody").status_code == 404
    r = api.post("/api/entities/counter/a/signals", json={"operation": "add", "nope": 1})
    assert r.status_code == 422
    r = api.post("/api/entities/co@unter/a/signals", json={"operation": "add"})
    assert r.status_code == 422 and "no '@'" in r.json()["message"]
    assert api.get("/api/entities", params={"cursor": "zz"}).status_code == 422


def test_durable_functions_entity_routes(api):
    r = api.post(f"{DF}/entities/counter/x", params={"op": "add"}, content=b"4")
    assert r.status_code == 202
    wait_for(lambda: api.get(f"{DF}/entities/counter/x").status_code == 200)
    assert api.get(f"{DF}/entities/counter/x").json() == {"value": 4}
    # The azure-functions-durable client encodes inputs twice.
    api.post(f"{DF}/entities/counter/y", params={"op": "add"}, content=b'"6"')
    wait_for(lambda: api.get(f"{DF}/entities/counter/y").status_code == 200)
    listed = api.get(f"{DF}/entities/counter", params={"fetchState": "true", "top": 1})
    assert listed.json()[0]["entityId"] == {"name": "counter", "key": "x"}
    assert listed.json()[0]["state"] == {"value": 4}
    token = listed.headers["x-ms-continuation-token"]
    more = api.get(f"{DF}/entities/counter", headers={"x-ms-continuation-token": token})
    assert [e["entityId"]["key"] for e in more.json()] == ["y"] and "state" not in more.json()[0]
    assert api.delete(f"{DF}/entities/counter/x").status_code == 202
    wait_for(lambda: api.get(f"{DF}/entities/counter/x").status_code == 404)
    assert api.post(f"{DF}/entities/counter/x").status_code == 400
    assert api.get(f"{DF}/entities/counter/none").status_code == 404
