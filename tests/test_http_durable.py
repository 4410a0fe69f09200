"""The Durable Functions HTTP management API against a real server on loopback: every
route and status code, paging, and the real ``azure-functions-durable`` client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest

import tenuto
from tenuto import Status

from helpers import settle, wait_for

T = TypeVar("T")

PREFIX = "/runtime/webhooks/durabletask"
LINKS = {
    "id",
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "purgeHistoryDeleteUri",
    "suspendPostUri",
    "resumePostUri",
}

app = tenuto.App()


@app.activity
def double(x: int) -> int:
    return 2 * x


@app.orchestrator
def doubler(ctx, x):
    ctx.set_custom_status({"step": "doubling"})
    return (yield ctx.call_activity(double, x))


@app.orchestrator
def waits(ctx, _):
    return (yield ctx.wait_for_event("go"))


@app.orchestrator
def echo(ctx, value):
    return value
    yield  # a generator orchestrator


@app.orchestrator
def fails(ctx, _):
    raise ValueError("boom")
    yield  # a generator orchestrator


@pytest.fixture
def server(http_server):
    return http_server(app)


@pytest.fixture
def df(server):
    """An httpx client whose base URL is the Durable Functions prefix."""
    with httpx.Client(base_url=server.url + PREFIX, timeout=30) as http:
        yield http


def _start(df, name="waits", data: Any = None, instance_id: str | None = None) -> str:
    path = f"/orchestrators/{name}" + (f"/{instance_id}" if instance_id else "")
    r = df.post(path, json=data) if data is not None else df.post(path)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _df_status(df, iid: str) -> str:
    return str(df.get(f"/instances/{iid}").json()["runtimeStatus"])


def _running(df, iid: str) -> None:
    wait_for(lambda: _df_status(df, iid) == "Running", what=f"{iid} to run")


def _finished(df, iid: str) -> dict[str, Any]:
    r = wait_for(
        lambda: (r := df.get(f"/instances/{iid}")).status_code == 200 and r,
        what=f"{iid} to finish",
    )
    return dict(r.json())


# -- start --------------------------------------------------------------------------------


def test_start_answers_202_with_absolute_management_urls_and_location(server, df):
    r = df.post("/orchestrators/doubler", json=21)
    assert r.status_code == 202
    body = r.json()
    assert set(body) == LINKS
    iid = body["id"]
    base = f"{server.url}{PREFIX}/instances/{iid}"
    assert body["statusQueryGetUri"] == base
    assert body["sendEventPostUri"] == f"{base}/raiseEvent/{{eventName}}"
    assert body["terminatePostUri"] == f"{base}/terminate?reason={{text}}"
    assert body["suspendPostUri"] == f"{base}/suspend?reason={{text}}"
    assert body["resumePostUri"] == f"{base}/resume?reason={{text}}"
    assert body["purgeHistoryDeleteUri"] == base
    assert r.headers["location"] == body["statusQueryGetUri"]
    assert r.headers["retry-after"] == "10"
    # The Location URL is the polling endpoint: 202 while running, 200 once done.
    done = wait_for(lambda: (s := httpx.get(r.headers["location"])).status_code == 200 and s)
    status = done.json()
    assert status["runtimeStatus"] == "Completed"
    assert (status["name"], status["instanceId"], status["input"]) == ("doubler", iid, 21)
    assert status["output"] == 42
    assert status["customStatus"] == {"step": "doubling"}
    created = datetime.fromisoformat(status["createdTime"])
    updated = datetime.fromisoformat(status["lastUpdatedTime"])
    assert status["createdTime"].endswith("Z") and created <= updated
    assert "historyEvents" not in status
    assert server.client.status(iid).output == 42


def test_start_with_instance_id_carries_hub_params_and_rejects_a_taken_id(server, df):
    params = {"taskHub": "Hub1", "connection": "Storage", "code": "k3y"}
    r = df.post("/orchestrators/waits/order 7", json={"n": 1}, params=params)
    assert r.status_code == 202
    body = r.json()
    assert body["id"] == "order 7"
    encoded = quote("order 7", safe="")
    assert body["statusQueryGetUri"] == (
        f"{server.url}{PREFIX}/instances/{encoded}?taskHub=Hub1&connection=Storage&code=k3y"
    )
    assert body["terminatePostUri"].endswith(
        f"/{encoded}/terminate?reason={{text}}&taskHub=Hub1&connection=Storage&code=k3y"
    )
    assert server.client.status("order 7").input == {"n": 1}
    # The status URL works as given (the ignored query parameters included).
    assert httpx.get(body["statusQueryGetUri"]).json()["instanceId"] == "order 7"
    again = df.post("/orchestrators/waits/order 7", json={"n": 2})
    assert again.status_code == 409
    assert again.json()["error"] == "instance_exists"
    assert server.client.status("order 7").input == {"n": 1}


def test_start_errors_are_400_with_a_message_durable_clients_read(server, df):
    r = df.post("/orchestrators/nope", json=1)
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "unknown_orchestrator"
    assert "no orchestrator named 'nope'" in body["message"]
    assert body["ExceptionMessage"] == body["Message"] == body["message"]
    bad_json = df.post(
        "/orchestrators/echo", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "malformed"
    nan = df.post("/orchestrators/echo", content=b"NaN")
    assert nan.status_code == 400 and nan.json()["error"] == "malformed"
    bad_id = df.post("/orchestrators/echo/%20leading-space", json=1)
    assert bad_id.status_code == 400 and bad_id.json()["error"] == "invalid"
    bad_timeout = df.post("/orchestrators/echo", json=1, params={"timeout": "soon"})
    assert bad_timeout.status_code == 400 and bad_timeout.json()["error"] == "invalid"
    assert server.client.query().items == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", None),
        (b'{"a": [1, 2]}', {"a": [1, 2]}),
        (b'"hello"', "hello"),
        # A JSON string whose text is JSON is decoded once more (what the
        # azure-functions-durable client sends) ...
        (json.dumps(json.dumps({"a": 1})).encode(), {"a": 1}),
        (b'"42"', 42),
        # ... so a string that is JSON text is sent encoded twice.
        (json.dumps(json.dumps("42")).encode(), "42"),
    ],
)
def test_start_input_is_the_json_body(server, df, body, expected):
    r = df.post("/orchestrators/echo", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text
    iid = r.json()["id"]
    assert server.client.status(iid).input == expected
    assert _finished(df, iid)["output"] == expected


def test_start_with_timeout_waits_for_the_result(server, df):
    r = df.post("/orchestrators/doubler", json=5, params={"timeout": "10", "pollingInterval": "1"})
    assert r.status_code == 200
    assert r.json() == 10
    failed = df.post("/orchestrators/fails", params={"timeout": "10"})
    assert failed.status_code == 200
    assert failed.json()["runtimeStatus"] == "Failed"
    slow = df.post("/orchestrators/waits", params={"timeout": "0.05"})
    assert slow.status_code == 202
    assert set(slow.json()) == LINKS
    assert server.client.status(slow.json()["id"]).runtime_status in (
        Status.PENDING,
        Status.RUNNING,
    )


# -- get status ---------------------------------------------------------------------------


def test_get_status_codes_follow_the_runtime_status(server, df):
    missing = df.get("/instances/nobody")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"

    live = _start(df, instance_id="live")
    _running(df, live)
    r = df.get(f"/instances/{live}", params={"taskHub": "x"})
    assert r.status_code == 202
    assert r.headers["location"] == str(r.request.url)
    assert r.headers["retry-after"] == "5"
    assert r.json()["output"] is None

    df.post(f"/instances/{live}/suspend")
    r = df.get(f"/instances/{live}")
    assert (r.status_code, r.json()["runtimeStatus"]) == (202, "Suspended")
    assert server.client.status(live).runtime_status is Status.PAUSED

    df.post(f"/instances/{live}/terminate", params={"reason": "obsolete"})
    r = df.get(f"/instances/{live}")
    assert (r.status_code, r.json()["runtimeStatus"]) == (200, "Terminated")
    assert "obsolete" in r.json()["output"]
    assert "location" not in r.headers

    failed = _start(df, "fails")
    body = _finished(df, failed)
    assert body["runtimeStatus"] == "Failed"
    assert body["output"] == "ValueError: boom"
    r = df.get(f"/instances/{failed}", params={"returnInternalServerErrorOnFailure": "true"})
    assert r.status_code == 500 and r.json()["runtimeStatus"] == "Failed"
    done = _start(df, "echo", data=1)
    _finished(df, done)
    r = df.get(f"/instances/{done}", params={"returnInternalServerErrorOnFailure": "true"})
    assert r.status_code == 200 and r.json()["runtimeStatus"] == "Completed"


def test_get_status_of_a_pending_instance_is_202(server, df):
    start_at = datetime.now(UTC) + timedelta(hours=1)
    iid = server.client.start("waits", instance_id="later", start_at=start_at)
    r = df.get(f"/instances/{iid}")
    assert (r.status_code, r.json()["runtimeStatus"]) == (202, "Pending")


def test_get_status_show_input_and_history(server, df):
    iid = _start(df, "doubler", data=4)
    _finished(df, iid)
    assert df.get(f"/instances/{iid}", params={"showInput": "false"}).json()["input"] is None
    assert df.get(f"/instances/{iid}", params={"showInput": "True"}).json()["input"] == 4

    events = df.get(f"/instances/{iid}", params={"showHistory": "true"}).json()["historyEvents"]
    assert [e["EventType"] for e in events] == [
        "ExecutionStarted",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    started, task, completed = events
    assert started["FunctionName"] == "doubler"
    assert task["FunctionName"] == "double"
    assert datetime.fromisoformat(task["ScheduledTime"]) <= datetime.fromisoformat(
        task["Timestamp"]
    )
    assert completed["OrchestrationStatus"] == "Completed"
    assert "Result" not in task and "Result" not in completed

    with_output = df.get(
        f"/instances/{iid}", params={"showHistory": "true", "showHistoryOutput": "true"}
    ).json()["historyEvents"]
    assert with_output[1]["Result"] == 8
    assert with_output[2]["Result"] == 8

    bad = df.get(f"/instances/{iid}", params={"showHistory": "maybe"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"


def test_history_shows_suspension_events_and_failures(server, df):
    iid = _start(df, instance_id="h1")
    _running(df, iid)
    df.post(f"/instances/{iid}/suspend", params={"reason": "lunch"})
    df.post(f"/instances/{iid}/raiseEvent/go", json="x")
    df.post(f"/instances/{iid}/resume", params={"reason": "back"})
    _finished(df, iid)
    events = df.get(f"/instances/{iid}", params={"showHistory": "true"}).json()["historyEvents"]
    kinds = [e["EventType"] for e in events]
    assert kinds == [
        "ExecutionStarted",
        "ExecutionSuspended",
        "ExecutionResumed",
        "EventRaised",
        "ExecutionCompleted",
    ]
    assert events[1]["Reason"] == "lunch" and events[2]["Reason"] == "back"
    assert events[3]["Name"] == "go"

    failed = _start(df, "fails")
    _finished(df, failed)
    events = df.get(
        f"/instances/{failed}", params={"showHistory": "true", "showHistoryOutput": "true"}
    ).json()["historyEvents"]
    end = events[-1]
    assert end["OrchestrationStatus"] == "Failed"
    assert end["FailureDetails"]["ErrorType"] == "ValueError"
    assert end["FailureDetails"]["ErrorMessage"] == "boom"
    assert end["Result"] == "ValueError: boom"


# -- list ---------------------------------------------------------------------------------


def test_list_pages_with_the_continuation_token_header(server, df):
    ids = [_start(df, instance_id=f"p{i}") for i in range(5)]
    _start(df, instance_id="other")
    r = df.get("/instances", params={"instanceIdPrefix": "p", "top": "2"})
    assert r.status_code == 200
    seen = [s["instanceId"] for s in r.json()]
    pages = 1
    while token := r.headers.get("x-ms-continuation-token"):
        assert len(r.json()) == 2
        r = df.get(
            "/instances",
            params={"instanceIdPrefix": "p", "top": "2"},
            headers={"x-ms-continuation-token": token},
        )
        seen += [s["instanceId"] for s in r.json()]
        pages += 1
    assert pages == 3
    assert seen == ids[::-1]
    everything = df.get("/instances/").json()
    assert {s["instanceId"] for s in everything} == {*ids, "other"}
    assert all(s["name"] == "waits" and "historyEvents" not in s for s in everything)
    bad_token = df.get("/instances", headers={"x-ms-continuation-token": "not-a-token"})
    assert bad_token.status_code == 400
    assert bad_token.json()["error"] == "invalid_continuation_token"
    for top in ("0", "-1", "two"):
        assert df.get("/instances", params={"top": top}).status_code == 400


def test_list_filters_by_runtime_status_time_and_input(server, df):
    running = _start(df, data={"secret": 1}, instance_id="r1")
    suspended = _start(df, instance_id="s1")
    done = _start(df, "echo", data=3, instance_id="c1")
    _running(df, running)
    _running(df, suspended)
    _finished(df, done)
    df.post(f"/instances/{suspended}/suspend")

    def ids(**params: Any) -> set[str]:
        r = df.get("/instances", params=params)
        assert r.status_code == 200, r.text
        return {s["instanceId"] for s in r.json()}

    assert ids(runtimeStatus="Suspended") == {suspended}
    assert ids(runtimeStatus="suspended") == {suspended}
    assert ids(runtimeStatus="Paused") == {suspended}
    assert ids(runtimeStatus="Running,Completed") == {running, done}
    assert df.get("/instances?runtimeStatus=Running&runtimeStatus=Suspended").status_code == 200
    assert ids(runtimeStatus=["Running", "Suspended"]) == {running, suspended}
    assert ids(runtimeStatus="ContinuedAsNew") == set()
    assert ids(runtimeStatus="Canceled,Completed") == {done}
    unknown = df.get("/instances", params={"runtimeStatus": "Sleeping"})
    assert unknown.status_code == 400 and "Sleeping" in unknown.json()["message"]

    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    assert ids(createdTimeFrom=(now - hour).isoformat()) == {running, suspended, done}
    assert ids(createdTimeFrom=(now + hour).strftime("%Y-%m-%dT%H:%M:%S.%fZ")) == set()
    assert ids(createdTimeTo=(now - hour).strftime("%Y-%m-%dT%H:%M:%SZ")) == set()
    created = datetime.fromisoformat(df.get(f"/instances/{suspended}").json()["createdTime"])
    tick = timedelta(microseconds=10)  # createdTime is rounded to the microsecond
    around = {"createdTimeFrom": str(created - tick), "createdTimeTo": str(created + tick)}
    assert ids(**around) == {suspended}
    bad = df.get("/instances", params={"createdTimeFrom": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"

    inputs = {s["instanceId"]: s["input"] for s in df.get("/instances").json()}
    assert inputs[running] == {"secret": 1}
    hidden = df.get("/instances", params={"showInput": "false"}).json()
    assert all(s["input"] is None for s in hidden)


# -- raise event --------------------------------------------------------------------------


def test_raise_event_delivers_json_data(server, df):
    iid = _start(df, instance_id="ev1")
    r = df.post(f"/instances/{iid}/raiseEvent/go", json={"ok": [1, 2]}, params={"taskHub": "h"})
    assert r.status_code == 202
    assert r.content == b""
    assert _finished(df, iid)["output"] == {"ok": [1, 2]}
    assert server.client.status(iid).output == {"ok": [1, 2]}


def test_raise_event_errors(server, df):
    assert df.post("/instances/ghost/raiseEvent/go", json=1).status_code == 404
    iid = _start(df, instance_id="ev2")
    text = df.post(
        f"/instances/{iid}/raiseEvent/go", content=b"1", headers={"content-type": "text/plain"}
    )
    assert text.status_code == 400
    assert "application/json" in text.json()["message"]
    broken = df.post(
        f"/instances/{iid}/raiseEvent/go",
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 400 and broken.json()["error"] == "malformed"
    empty = df.post(f"/instances/{iid}/raiseEvent/go", headers={"content-type": "application/json"})
    assert empty.status_code == 400
    assert server.client.status(iid).runtime_status in (Status.PENDING, Status.RUNNING)
    null = df.post(
        f"/instances/{iid}/raiseEvent/go",
        content=b"null",
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert null.status_code == 202
    assert _finished(df, iid)["output"] is None
    gone = df.post(f"/instances/{iid}/raiseEvent/go", json=1)
    assert gone.status_code == 410 and gone.json()["error"] == "gone"


# -- terminate, suspend, resume -----------------------------------------------------------


def test_terminate_codes(server, df):
    assert df.post("/instances/ghost/terminate").status_code == 404
    iid = _start(df, instance_id="t1")
    r = df.post(f"/instances/{iid}/terminate", params={"reason": "obsolete"})
    assert r.status_code == 202 and r.content == b""
    st = server.client.status(iid)
    assert st.runtime_status is Status.TERMINATED
    assert "obsolete" in st.failure.message
    assert df.post(f"/instances/{iid}/terminate").status_code == 410


def test_suspend_is_pause_and_resume_continues(server, df):
    iid = _start(df, instance_id="s1")
    _running(df, iid)
    r = df.post(f"/instances/{iid}/suspend", params={"reason": "business hours"})
    assert r.status_code == 202 and r.content == b""
    st = server.client.status(iid)
    assert st.runtime_status is Status.PAUSED
    assert st.pause.reason == "business hours"
    assert st.pause.by.startswith("http@127.0.0.1")
    assert df.post(f"/instances/{iid}/suspend").status_code == 202  # no-op
    assert server.client.status(iid).pause.reason == "business hours"

    # An event raised while suspended is kept, and delivered after resume.
    assert df.post(f"/instances/{iid}/raiseEvent/go", json="payload").status_code == 202
    settle(server.worker)
    assert _df_status(df, iid) == "Suspended"
    assert df.post(f"/instances/{iid}/resume", params={"reason": "night"}).status_code == 202
    assert _finished(df, iid)["output"] == "payload"
    resumed = [e for e in server.client.history(iid) if e.type == "ExecutionResumed"]
    assert resumed[0].data["reason"] == "night"

    live = _start(df, instance_id="s2")
    assert df.post(f"/instances/{live}/resume").status_code == 202  # not suspended: no-op
    assert server.client.status(live).runtime_status is not Status.PAUSED
    for op in ("suspend", "resume"):
        assert df.post(f"/instances/ghost/{op}").status_code == 404
        gone = df.post(f"/instances/{iid}/{op}")
        assert gone.status_code == 410 and gone.json()["error"] == "gone"


def test_suspend_and_resume_record_the_tokens_name(http_server):
    server = http_server(app, tokens={"s3cret": "ops"})
    with httpx.Client(base_url=server.url + PREFIX, timeout=30) as anonymous:
        assert anonymous.post("/orchestrators/waits").status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    with httpx.Client(base_url=server.url + PREFIX, timeout=30, headers=auth) as df:
        iid = _start(df, instance_id="tok")
        _running(df, iid)
        assert df.post(f"/instances/{iid}/suspend", params={"reason": "audit"}).status_code == 202
        st = server.client.status(iid)
        assert (st.pause.by, st.pause.reason) == ("ops", "audit")
        assert df.post(f"/instances/{iid}/resume").status_code == 202
        assert df.post(f"/instances/{iid}/terminate").status_code == 202
    by = {e.type: e.data["by"] for e in server.client.history(iid) if "by" in e.data}
    assert by == {
        "ExecutionSuspended": "ops",
        "ExecutionResumed": "ops",
        "ExecutionTerminated": "ops",
    }


def test_function_key_authenticates_durable_routes_only(http_server):
    """Durable Functions clients send the key as ?code= or x-functions-key, not as a
    bearer token; those routes accept it, tenuto's own API does not."""
    server = http_server(app, tokens={"k3y": "functions"})
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post(f"{PREFIX}/orchestrators/waits/fk1", params={"code": "k3y"})
        assert r.status_code == 202
        assert "code=k3y" in r.json()["statusQueryGetUri"]
        r = http.post(f"{PREFIX}/instances/fk1/suspend", headers={"x-functions-key": "k3y"})
        assert r.status_code == 202
        assert server.client.status("fk1").pause.by == "functions"
        assert http.get(f"{PREFIX}/instances/fk1", params={"code": "wrong"}).status_code == 401
        assert http.get("/api/instances/fk1", params={"code": "k3y"}).status_code == 401


# -- purge --------------------------------------------------------------------------------


def test_purge_one(server, df):
    assert df.delete("/instances/ghost").status_code == 404
    iid = _start(df, instance_id="pg1")
    live = df.delete(f"/instances/{iid}")
    assert live.status_code == 412 and live.json()["error"] == "instance_not_finished"
    df.post(f"/instances/{iid}/terminate")
    r = df.delete(f"/instances/{iid}")
    assert r.status_code == 200 and r.json() == {"instancesDeleted": 1}
    assert df.get(f"/instances/{iid}").status_code == 404
    assert df.delete(f"/instances/{iid}").status_code == 404


def test_purge_by_filter(server, df):
    done = [_start(df, "echo", data=i, instance_id=f"e{i}") for i in range(3)]
    for iid in done:
        _finished(df, iid)
    killed = _start(df, instance_id="k1")
    df.post(f"/instances/{killed}/terminate")
    live = _start(df, instance_id="l1")
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    missing = df.delete("/instances", params={"runtimeStatus": "Completed"})
    assert missing.status_code == 400 and "createdTimeFrom" in missing.json()["message"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert df.delete("/instances", params={"createdTimeFrom": later}).status_code == 404
    past = {"createdTimeFrom": since, "createdTimeTo": since}
    assert df.delete("/instances", params=past).status_code == 404
    only_live = {"createdTimeFrom": since, "runtimeStatus": "Running,Pending"}
    assert df.delete("/instances", params=only_live).status_code == 404

    r = df.delete("/instances/", params={"createdTimeFrom": since, "runtimeStatus": "Completed"})
    assert r.status_code == 200 and r.json() == {"instancesDeleted": 3}
    r = df.delete("/instances", params={"createdTimeFrom": since})
    assert r.status_code == 200 and r.json() == {"instancesDeleted": 1}
    left = {s.instance_id for s in server.client.query().items}
    assert left == {live}


# -- the real azure-functions-durable client ----------------------------------------------


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one call of the (async) Durable Functions client in a fresh event loop, and
    close the HTTP session it keeps in a module global before that loop ends."""
    from azure.durable_functions.models.utils import http_utils

    async def main() -> T:
        try:
            return await coro
        finally:
            await http_utils._close_session()

    return asyncio.run(main())


def _durable_client(server):
    """``DurableOrchestrationClient`` from the binding JSON that the Functions host would
    pass, pointed at this server's Durable Functions routes."""
    import azure.durable_functions as adf

    base = f"{server.url}{PREFIX}"
    instance = f"{base}/instances/INSTANCEID"
    binding = {
        "taskHubName": "TestHub",
        "creationUrls": {
            "createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]",
            "createAndWaitOnNewInstancePostUri": (
                f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
                "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
            ),
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": instance,
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}",
            "purgeHistoryDeleteUri": instance,
            "suspendPostUri": f"{instance}/suspend?reason={{text}}",
            "resumePostUri": f"{instance}/resume?reason={{text}}",
        },
        "baseUrl": base,
        "requiredQueryStringParameters": "",
        "rpcBaseUrl": f"{base}/",
    }
    return adf.DurableOrchestrationClient(json.dumps(binding))


def test_azure_durable_client_start_status_and_events(server):
    from azure.durable_functions import OrchestrationRuntimeStatus as RS

    client = _durable_client(server)
    iid = _run(client.start_new("doubler", client_input=21))
    status = wait_for(
        lambda: (s := _run(client.get_status(iid))).runtime_status == RS.Completed and s,
        interval=0.05,
    )
    assert (status.name, status.instance_id, status.output) == ("doubler", iid, 42)
    assert status.custom_status == {"step": "doubling"}
    assert status.created_time <= status.last_updated_time
    # The client encodes inputs twice; the orchestrator receives the value it was given.
    assert server.client.status(iid).input == 21
    full = _run(client.get_status(iid, show_history=True, show_history_output=True))
    assert [e["EventType"] for e in full.historyEvents][-1] == "ExecutionCompleted"
    assert full.historyEvents[-1]["Result"] == 42

    given = _run(client.start_new("waits", instance_id="df-1", client_input={"k": "v"}))
    assert given == "df-1"
    assert server.client.status("df-1").input == {"k": "v"}
    wait_for(lambda: _run(client.get_status("df-1")).runtime_status == RS.Running, interval=0.05)
    _run(client.raise_event("df-1", "go", {"approved": True}))
    done = wait_for(
        lambda: (s := _run(client.get_status("df-1"))).runtime_status == RS.Completed and s,
        interval=0.05,
    )
    assert done.output == {"approved": True}
    assert server.client.status("df-1").output == {"approved": True}

    with pytest.raises(Exception, match="no orchestrator named 'missing'"):
        _run(client.start_new("missing"))
    with pytest.raises(Exception, match="is gone"):
        _run(client.raise_event("df-1", "go", 1))
    with pytest.raises(Exception, match="No instance with ID ghost found"):
        _run(client.raise_event("ghost", "go", 1))
    assert not _run(client.get_status("ghost"))  # unknown: a falsy status


def test_azure_durable_client_suspend_resume_terminate(server):
    from azure.durable_functions import OrchestrationRuntimeStatus as RS

    client = _durable_client(server)
    iid = _run(client.start_new("waits", instance_id="df-s"))
    wait_for(lambda: _run(client.get_status(iid)).runtime_status == RS.Running, interval=0.05)
    _run(client.suspend(iid, "maintenance window"))
    assert _run(client.get_status(iid)).runtime_status == RS.Suspended
    st = server.client.status(iid)
    assert st.runtime_status is Status.PAUSED
    assert st.pause.reason == "maintenance window"
    assert st.pause.by.startswith("http@")

    _run(client.raise_event(iid, "go", "kept"))
    settle(server.worker)
    assert _run(client.get_status(iid)).runtime_status == RS.Suspended
    _run(client.resume(iid, "window over"))
    done = wait_for(
        lambda: (s := _run(client.get_status(iid))).runtime_status == RS.Completed and s,
        interval=0.05,
    )
    assert done.output == "kept"
    # On a finished instance the client accepts 410 quietly, as it does from Azure.
    _run(client.suspend(iid, "late"))
    _run(client.resume(iid, "late"))
    _run(client.terminate(iid, "late"))
    assert server.client.status(iid).runtime_status is Status.COMPLETED
    with pytest.raises(Exception, match="No instance with ID 'ghost' found"):
        _run(client.suspend("ghost", "x"))

    other = _run(client.start_new("waits"))
    _run(client.terminate(other, "no longer needed"))
    terminated = _run(client.get_status(other))
    assert terminated.runtime_status == RS.Terminated
    assert "no longer needed" in terminated.output
    assert server.client.status(other).runtime_status is Status.TERMINATED


def test_azure_durable_client_queries_and_purges(server):
    from azure.durable_functions import OrchestrationRuntimeStatus as RS

    client = _durable_client(server)
    since = datetime.now(UTC) - timedelta(minutes=5)
    finished = [
        _run(client.start_new("echo", instance_id=f"q-{i}", client_input=i)) for i in (1, 2)
    ]
    running = _run(client.start_new("waits", instance_id="q-live"))
    paused = _run(client.start_new("waits", instance_id="w-paused"))
    for iid in finished:
        wait_for(
            lambda i=iid: _run(client.get_status(i)).runtime_status == RS.Completed, interval=0.05
        )
    wait_for(lambda: _run(client.get_status(paused)).runtime_status == RS.Running, interval=0.05)
    _run(client.suspend(paused, "hold"))

    everything = _run(client.get_status_all())
    assert {s.instance_id for s in everything} == {*finished, running, paused}
    assert {s.runtime_status for s in everything} >= {RS.Completed, RS.Suspended}

    by_prefix = _run(client.get_status_by(instance_id_prefix="q-"))
    assert {s.instance_id for s in by_prefix} == {*finished, running}
    suspended = _run(client.get_status_by(runtime_status=[RS.Suspended]))
    assert [s.instance_id for s in suspended] == [paused]
    window = _run(
        client.get_status_by(
            created_time_from=since,
            created_time_to=datetime.now(UTC) + timedelta(minutes=5),
            runtime_status=[RS.Completed, RS.Running],
        )
    )
    assert {s.instance_id for s in window} >= set(finished)
    assert {s.instance_id for s in window} <= {*finished, running}
    future = _run(client.get_status_by(created_time_from=datetime.now(UTC) + timedelta(hours=1)))
    assert future == []

    one = _run(client.purge_instance_history(finished[0]))
    assert one.instances_deleted == 1
    assert not _run(client.get_status(finished[0]))
    assert _run(client.purge_instance_history("ghost")).instances_deleted == 0
    with pytest.raises(Exception, match="412"):
        _run(client.purge_instance_history(running))  # still live

    _run(client.terminate(running, "done"))
    many = _run(
        client.purge_instance_history_by(
            created_time_from=since, runtime_status=[RS.Completed, RS.Terminated]
        )
    )
    assert many.instances_deleted == 2
    none_left = _run(client.purge_instance_history_by(created_time_from=since))
    assert none_left.instances_deleted == 0  # 404 from the server: nothing matched
    assert {s.instance_id for s in server.client.query().items} == {paused}
