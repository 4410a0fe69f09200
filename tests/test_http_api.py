"""tenuto's REST API against a real server on loopback: every operation, every error."""

from __future__ import annotations

import httpx
import pytest

import tenuto

from helpers import wait_for

app = tenuto.App()


@app.activity
def double(x: int) -> int:
    return 2 * x


@app.orchestrator
def waits(ctx, _):
    return (yield ctx.wait_for_event("go"))


@app.orchestrator
def doubler(ctx, x):
    return (yield ctx.call_activity(double, x))


@pytest.fixture
def api(http_server):
    server = http_server(app)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.server = server  # type: ignore[attr-defined]
        yield http


def _start(api, name="waits", **body):
    r = api.post("/api/instances", json={"name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()["instance_id"]


def _running(api, iid):
    wait_for(lambda: api.get(f"/api/instances/{iid}").json()["runtime_status"] == "RUNNING")


def test_start_status_and_wait(api):
    r = api.post("/api/instances", json={"name": "doubler", "input": 21, "instance_id": "d1"})
    assert r.status_code == 201
    assert r.headers["location"] == "/api/instances/d1"
    assert r.json()["runtime_status"] in ("PENDING", "RUNNING", "COMPLETED")
    done = api.get("/api/instances/d1", params={"wait": 10}).json()
    assert done["runtime_status"] == "COMPLETED" and done["output"] == 42


def test_start_with_version_and_tags(api):
    tags = {"team": "billing", "env": "prod"}
    r = api.post("/api/instances", json={"name": "waits", "version": "1.2", "tags": tags})
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["tags"]) == ("1.2", tags)
    got = api.get(r.headers["location"]).json()
    assert (got["version"], got["tags"]) == ("1.2", tags)
    plain = api.get(f"/api/instances/{_start(api)}").json()
    assert plain["version"] is None and plain["tags"] is None
    schema = api.get("/openapi.json").json()["components"]["schemas"]
    assert {"version", "tags"} <= set(schema["StartRequest"]["properties"])
    assert {"version", "tags"} <= set(schema["InstanceModel"]["properties"])


def test_pause_resume_events_and_history(api):
    iid = _start(api, instance_id="p1")
    _running(api, iid)
    r = api.post(f"/api/instances/{iid}/pause", json={"reason": "lunch"})
    assert r.status_code == 200
    body = r.json()
    assert body["changed"] is True
    assert body["instance"]["runtime_status"] == "PAUSED"
    assert body["instance"]["pause"]["reason"] == "lunch"
    assert body["instance"]["pause"]["by"].startswith("http@127.0.0.1")
    assert api.post(f"/api/instances/{iid}/pause").json()["changed"] is False
    assert api.post(f"/api/instances/{iid}/events/go", json={"k": [1, 2]}).status_code == 202
    r = api.post(f"/api/instances/{iid}/resume", json={"reason": "back"})
    assert r.json()["changed"] is True
    assert api.get(f"/api/instances/{iid}", params={"wait": 10}).json()["output"] == {"k": [1, 2]}
    events = api.get(f"/api/instances/{iid}/history").json()["events"]
    kinds = [e["type"] for e in events]
    assert "ExecutionSuspended" in kinds and "ExecutionResumed" in kinds
    suspended = next(e for e in events if e["type"] == "ExecutionSuspended")
    assert suspended["reason"] == "lunch"


def test_query_filters_and_cursor_paging(api):
    for i in range(5):
        _start(api, instance_id=f"q{i}")
    page = api.get("/api/instances", params={"id_prefix": "q", "limit": 2}).json()
    seen = [i["instance_id"] for i in page["items"]]
    while page["next_cursor"]:
        page = api.get(
            "/api/instances", params={"id_prefix": "q", "limit": 2, "cursor": page["next_cursor"]}
        ).json()
        seen += [i["instance_id"] for i in page["items"]]
    assert seen == ["q4", "q3", "q2", "q1", "q0"]
    pending = api.get("/api/instances", params=[("status", "PENDING"), ("status", "RUNNING")])
    assert pending.status_code == 200


def test_bulk_pause_resume_and_purge_return_counts(api):
    ids = [_start(api, instance_id=f"b{i}") for i in range(4)]
    other = _start(api, instance_id="x1")
    for iid in [*ids, other]:
        _running(api, iid)
    r = api.post("/api/bulk/pause", json={"id_prefix": "b", "reason": "bulk"})
    assert r.json() == {"count": 4}
    assert api.get(f"/api/instances/{other}").json()["runtime_status"] == "RUNNING"
    stats = api.get("/api/stats").json()["counts"]
    assert stats["PAUSED"] == 4
    assert api.post("/api/bulk/resume", json={"id_prefix": "b"}).json() == {"count": 4}
    for iid in ids:
        api.post(f"/api/instances/{iid}/terminate", json={"reason": "done"})
    assert api.post("/api/bulk/purge", json={"status": ["TERMINATED"]}).json() == {"count": 4}
    assert api.get(f"/api/instances/{ids[0]}").status_code == 404


def test_terminate_and_purge_one(api):
    iid = _start(api, instance_id="t1")
    assert api.delete(f"/api/instances/{iid}").status_code == 409  # still live
    r = api.post(f"/api/instances/{iid}/terminate", json={"reason": "obsolete"})
    assert r.status_code == 200 and r.json()["runtime_status"] == "TERMINATED"
    assert api.delete(f"/api/instances/{iid}").json() == {"count": 1}


def test_metrics(api):
    iid = _start(api, "doubler", input=1)
    api.get(f"/api/instances/{iid}", params={"wait": 10})
    text = api.get("/metrics").text
    assert 'tenuto_instances{status="COMPLETED"} 1.0' in text
    assert 'tenuto_activities_completed_total{activity="double"}' in text
    assert "tenuto_step_seconds_bucket" in text
    assert 'tenuto_transitions_total{event="completed"}' in text


def test_openapi_document_describes_the_routes(api):
    doc = api.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/api/instances",
        "/api/instances/{instance_id}",
        "/api/instances/{instance_id}/pause",
        "/api/instances/{instance_id}/resume",
        "/api/bulk/pause",
        "/api/bulk/resume",
        "/api/bulk/purge",
    ):
        assert path in paths
    assert "409" in paths["/api/instances/{instance_id}/pause"]["post"]["responses"]
    assert doc["components"]["schemas"]["Error"]["required"] == ["error", "message"]


# -- every documented error status ------------------------------------------------------


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code
    assert body["message"]
    return str(body["message"])


def test_400_malformed_json(api):
    r = api.post(
        "/api/instances", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in _error(r, 400, "malformed")


def test_404_unknown_instance_and_route(api):
    assert "nope" in _error(api.get("/api/instances/nope"), 404, "not_found")
    _error(api.post("/api/instances/nope/pause"), 404, "not_found")
    _error(api.get("/api/nothing-here"), 404, "not_found")


def test_405_wrong_method(api):
    _error(api.put("/api/instances"), 405, "method_not_allowed")


def test_409_pause_of_a_finished_instance_and_duplicate_id(api):
    iid = _start(api, "doubler", input=2, instance_id="f1")
    api.get(f"/api/instances/{iid}", params={"wait": 10})
    assert "already finished" in _error(
        api.post(f"/api/instances/{iid}/pause"), 409, "instance_finished"
    )
    _error(api.post(f"/api/instances/{iid}/resume"), 409, "instance_finished")
    r = api.post("/api/instances", json={"name": "doubler", "instance_id": "f1"})
    _error(r, 409, "instance_exists")


def test_413_body_too_large(http_server):
    server = http_server(app, max_body=1000)
    with httpx.Client(base_url=server.url) as http:
        r = http.post("/api/instances", json={"name": "waits", "input": "x" * 5000})
        assert "limit of 1000 bytes" in _error(r, 413, "too_large")
        # Without a Content-Length (chunked), the limit holds too.
        chunks = iter([b'{"name": "waits", "input": "', b"y" * 3000, b'"}'])
        r = http.post(
            "/api/instances", content=chunks, headers={"content-type": "application/json"}
        )
        _error(r, 413, "too_large")
        assert server.client.query().items == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"name": ""}, "name"),
        ({"name": "waits", "instance_id": "a/b"}, "instance id"),
        ({"name": "waits", "start_at": "yesterday"}, "start_at"),
        ({"name": "waits", "surprise": 1}, "surprise"),
        ({"name": "not_registered"}, "not_registered"),
        ({"name": "waits", "tags": {"k": 1}}, "tags"),
        ({"name": "waits", "tags": {"k": "a\u0000b"}}, "tag 'k'"),
        ({"name": "waits", "version": "1\n2"}, "version"),
    ],
)
def test_422_invalid_values(api, body, field):
    r = api.post("/api/instances", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["message"]


def test_422_invalid_query_parameters(api):
    assert "status" in _error(
        api.get("/api/instances", params={"status": "SLEEPY"}), 422, "invalid"
    )
    _error(api.get("/api/instances", params={"limit": 0}), 422, "invalid")
    _error(api.get("/api/instances", params={"cursor": "garbage"}), 422, "invalid_cursor")
    _error(api.get("/api/instances", params={"created_from": "noon"}), 422, "invalid")
    r = api.post("/api/instances/x/pause", json={"reason": "r" * 5000})
    _error(r, 422, "invalid")


def test_401_without_the_token_and_actor_is_the_token_name(http_server):
    server = http_server(app, tokens={"s3cret": "alice", "0ther": "bob"})
    with httpx.Client(base_url=server.url) as http:
        for path in ("/api/instances", "/metrics", "/openapi.json", "/api/stats"):
            _error(http.get(path), 401, "unauthorized")
        r = http.get("/api/instances", headers={"Authorization": "Bearer wrong"})
        _error(r, 401, "unauthorized")
        auth = {"Authorization": "Bearer 0ther"}
        r = http.post("/api/instances", json={"name": "waits", "instance_id": "tok"}, headers=auth)
        assert r.status_code == 201
        wait_for(lambda: server.client.status("tok").runtime_status is tenuto.Status.RUNNING)
        r = http.post("/api/instances/tok/pause", json={"reason": "r"}, headers=auth)
        assert r.json()["instance"]["pause"]["by"] == "bob"
        doc = http.get("/openapi.json", headers=auth).json()
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_parse_tokens():
    from tenuto.http import parse_tokens

    assert parse_tokens("alice=a1, bob=b2") == {"a1": "alice", "b2": "bob"}
    assert parse_tokens(["solo"]) == {"solo": "api"}
    assert parse_tokens(None) == {}
    with pytest.raises(ValueError, match="NAME=SECRET"):
        parse_tokens("alice=")


def test_standing_pauses_over_http(api):
    iid = _start(api, instance_id="sp1")
    _running(api, iid)
    r = api.post("/api/orchestrators/waits/pause", json={"reason": "freeze"})
    assert r.status_code == 200 and r.json()["changed"] is True
    assert r.json()["standing_pauses"][0]["name"] == "waits"
    assert api.get(f"/api/instances/{iid}").json()["pause"]["source"] == "orchestrator"
    assert api.post("/api/orchestrators/waits/pause").json()["changed"] is False
    r = api.post("/api/activities/double/pause", json={"reason": "upgrade"})
    kinds = [(p["kind"], p["name"]) for p in r.json()["standing_pauses"]]
    assert kinds == [("orchestrator", "waits"), ("activity", "double")]
    assert [p["reason"] for p in api.get("/api/standing-pauses").json()["items"]] == [
        "freeze",
        "upgrade",
    ]
    assert api.post("/api/orchestrators/waits/resume").json()["changed"] is True
    assert api.get(f"/api/instances/{iid}").json()["runtime_status"] == "RUNNING"
    assert api.post("/api/activities/double/resume").json()["standing_pauses"] == []
    _error(api.post("/api/activities/double/pause", json={"resume_at": "soon"}), 422, "invalid")


def test_bulk_terminate_filtered_stats_and_actor_without_tokens(api):
    ids = [_start(api, instance_id=f"bt{i}") for i in range(3)]
    keep = _start(api, instance_id="keep")
    for iid in [*ids, keep]:
        _running(api, iid)
    assert api.get("/api/stats", params={"id_prefix": "bt"}).json()["counts"]["RUNNING"] == 3
    r = api.post("/api/instances/bt0/pause", json={"reason": "r", "by": "carol"})
    assert r.json()["instance"]["pause"]["by"] == "carol"  # no tokens: the caller names itself
    r = api.post("/api/bulk/terminate", json={"id_prefix": "bt", "reason": "cleanup", "by": "dan"})
    assert r.json() == {"count": 3}
    counts = api.get("/api/stats", params={"id_prefix": "bt"}).json()["counts"]
    assert counts["TERMINATED"] == 3 and counts["RUNNING"] == 0
    assert api.get("/api/instances/keep").json()["runtime_status"] == "RUNNING"
    events = api.get("/api/instances/bt1/history").json()["events"]
    assert events[-1]["type"] == "ExecutionTerminated" and events[-1]["by"] == "dan"


def test_cross_site_requests_cannot_change_state(api):
    iid = _start(api, instance_id="csrf")
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    _error(api.post(f"/api/instances/{iid}/pause", headers=evil), 403, "cross_site")
    _error(
        api.post(f"/api/instances/{iid}/pause", headers={"Origin": "http://evil.example"}),
        403,
        "cross_site",
    )
    _error(api.post(f"/api/instances/{iid}/pause", headers={"Origin": "null"}), 403, "cross_site")
    assert api.get(f"/api/instances/{iid}").json()["pause"] is None
    same = {"Origin": str(api.base_url).rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    assert api.post(f"/api/instances/{iid}/pause", headers=same).status_code == 200
    assert api.get(f"/api/instances/{iid}", headers=evil).status_code == 200  # reads are fine


def test_dashboard_scripts_are_served_as_javascript(http_server, monkeypatch):
    """Browsers run a module script only when it is served as JavaScript: every script of
    the dashboard is, even where the system's MIME tables say otherwise (some Windows
    registries map ``.js`` to ``text/plain``)."""
    import mimetypes

    from tenuto.http.dashboard import STATIC

    mimetypes.guess_type("app.js")  # load the tables first, so that the change below holds
    monkeypatch.setitem(mimetypes.types_map, ".js", "text/plain")
    server = http_server()
    scripts = sorted(p.name for p in STATIC.glob("*.js"))
    assert "app.js" in scripts
    with httpx.Client(base_url=server.url) as http:
        for name in scripts:
            r = http.get(f"/static/{name}")
            assert r.status_code == 200, name
            assert r.headers["content-type"] == "text/javascript; charset=utf-8", name
        assert http.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_a_500_closes_its_connection_and_the_next_request_succeeds(api, monkeypatch):
    """An unexpected exception is answered 500, after which the server drops the
    connection: the answer says so (``Connection: close``), so that a client that keeps
    connections alive opens a new one for its next request instead of sending it on the
    dead one (and getting "connection reset by peer")."""
    from tenuto import _control

    def broken(*args, **kwargs):
        raise RuntimeError("a fault inside tenuto")

    iid = _start(api)
    monkeypatch.setattr(_control, "pause", broken)
    for _ in range(2):
        r = api.post(f"/api/instances/{iid}/pause", json={})
        assert r.status_code == 500 and r.json()["error"] == "internal"
        assert api.get(f"/api/instances/{iid}").status_code == 200
        assert r.headers["connection"] == "close"


def test_operation_ids_are_short_and_unique(api):
    spec = api.get("/openapi.json").json()
    ids = {
        f"{method.upper()} {path}": op["operationId"]
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    assert len(set(ids.values())) == len(ids)
    assert ids["POST /api/instances/{instance_id}/pause"] == "pauseInstance"
    assert ids["GET /api/instances"] == "listInstances"
    assert ids["GET /api/workers"] == "listWorkers"
    assert ids["POST /runtime/webhooks/durabletask/instances/{instanceId}/suspend"] == (
        "durableSuspend"
    )
    assert all(len(i) <= 24 and "_" not in i for i in ids.values()), ids


def test_docs_are_served_offline(api):
    page = api.get("/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        served = api.get(f"/docs-assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 10_000
