"""Instance ids on every route (issue 22, items 9 and 10).

Any id that follows the rules (1-256 characters, none of ``/ \\ # ?``, control
characters or lone surrogates, no leading or trailing whitespace) works everywhere: in
every script, with spaces, ``%`` and emoji, through the Python client, the REST API, the
Durable Functions routes (with the real ``azure-functions-durable`` client) and the
command line; tenuto percent-encodes it in every URL and header it builds. Ids that
break the rules are refused before anything is written, sub-orchestration ids included,
and a derived child id that would be too long is shortened into a valid one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tenuto
from tenuto import Status

from helpers import wait_for

app = tenuto.App()

#: Valid ids that need encoding in a URL or a header.
ODD_IDS = [
    "заказ-1",
    "注文-2",
    "a b",
    "a%b",
    "a%20b",
    "100%",
    "emoji-😀-🚀",
    "ü+&=;,:@!$'()*~",
    "nbsp\u00a0inside",
    "x" * 256,
]
#: Ids that break the rules.
BAD_IDS = [
    "team/backup-1",
    "a?b",
    "a#b",
    "a\\b",
    " lead",
    "trail ",
    "x" * 257,
    "nul\x00",
    "",
    ".",
    "..",
]

#: Bad ids that cannot be put in a URL path at all.
IN_NO_URL = ("", ".", "..")


@app.activity
def add_one(x: int) -> int:
    return x + 1


@app.orchestrator
def waits(ctx, _):
    return (yield ctx.wait_for_event("go"))


@app.orchestrator
def child(ctx, n):
    return (yield ctx.call_activity(add_one, n))


@app.orchestrator
def parent(ctx, n):
    return (yield ctx.call_sub_orchestrator(child, n))


@app.orchestrator
def waiting_parent(ctx, _):
    return (yield ctx.call_sub_orchestrator(waits, None))


@app.orchestrator
def generations(ctx, n):
    out = yield ctx.call_sub_orchestrator(child, n)
    if n == 0:
        ctx.continue_as_new(1)
    return out


@app.orchestrator
def names_its_child(ctx, child_id):
    try:
        yield ctx.call_sub_orchestrator(child, 1, instance_id=child_id)
    except ValueError as exc:
        return f"refused: {exc}"
    return "created"


@app.orchestrator
def names_its_child_uncaught(ctx, child_id):
    return (yield ctx.call_sub_orchestrator(child, 1, instance_id=child_id))


def path(iid: str) -> str:
    return quote(iid.encode("utf-8", "surrogatepass"), safe="")


# -- valid ids that need encoding, on every route -----------------------------------------


def test_odd_ids_work_on_every_rest_route(http_server):
    server = http_server(app)
    with httpx.Client(base_url=server.url, timeout=30) as api:
        for iid in ODD_IDS:
            r = api.post("/api/instances", json={"name": "waits", "instance_id": iid})
            assert r.status_code == 201, (iid, r.text)
            location = r.headers["location"]
            assert location.isascii() and unquote(location) == f"/api/instances/{iid}"
            assert api.get(location).json()["instance_id"] == iid
            one = f"/api/instances/{path(iid)}"
            assert api.get(f"{one}/history").json()["instance_id"] == iid
            assert api.post(f"{one}/pause", json={"reason": "r"}).json()["changed"]
            assert api.post(f"{one}/events/go", json={"for": iid}).status_code == 202
            assert api.post(f"{one}/resume", json={}).json()["changed"]
            done = api.get(one, params={"wait": 10}).json()
            assert (done["runtime_status"], done["output"]) == ("COMPLETED", {"for": iid})
            listed = api.get("/api/instances", params={"id_prefix": iid}).json()["items"]
            assert [i["instance_id"] for i in listed] == [iid]
            assert api.delete(one).json() == {"count": 1}


def test_odd_ids_work_on_the_durable_functions_routes(http_server):
    server = http_server(app)
    prefix = f"{server.url}/runtime/webhooks/durabletask"
    with httpx.Client(timeout=30) as df:
        for iid in ODD_IDS:
            r = df.post(f"{prefix}/orchestrators/waits/{path(iid)}?code=k")
            assert r.status_code == 202, (iid, r.text)
            links = r.json()
            assert links["id"] == iid
            status_url = links["statusQueryGetUri"]
            assert status_url.isascii() and r.headers["location"] == status_url
            assert (
                unquote(urlsplit(status_url).path)
                == f"/runtime/webhooks/durabletask/instances/{iid}"
            )
            live = df.get(status_url)
            assert live.status_code == 202 and live.json()["instanceId"] == iid
            assert live.headers["location"].isascii()
            assert df.get(live.headers["location"]).json()["instanceId"] == iid
            assert df.post(links["suspendPostUri"].replace("{text}", "r")).status_code == 202
            assert server.client.status(iid).runtime_status is Status.PAUSED
            assert df.post(links["resumePostUri"].replace("{text}", "r")).status_code == 202
            event = links["sendEventPostUri"].replace("{eventName}", "go")
            assert df.post(event, json={"for": iid}).status_code == 202
            assert server.client.wait(iid, timeout=10).output == {"for": iid}
            assert df.get(status_url).status_code == 200
            assert df.delete(links["purgeHistoryDeleteUri"]).json() == {"instancesDeleted": 1}


def test_odd_ids_work_with_the_azure_durable_functions_client(http_server):
    from azure.durable_functions import OrchestrationRuntimeStatus as RS

    from test_http_durable import _durable_client, _run

    server = http_server(app)
    client = _durable_client(server)
    for iid in ["заказ-1", "a b", "emoji-😀", "100%"]:
        assert _run(client.start_new("waits", instance_id=iid)) == iid
        wait_for(lambda i=iid: _run(client.get_status(i)).runtime_status == RS.Running)
        _run(client.suspend(iid, "check"))
        assert server.client.status(iid).runtime_status is Status.PAUSED
        _run(client.resume(iid, "go on"))
        _run(client.raise_event(iid, "go", {"for": iid}))
        done = wait_for(
            lambda i=iid: (s := _run(client.get_status(i))).runtime_status == RS.Completed and s
        )
        assert done.instance_id == iid and done.output == {"for": iid}


def test_odd_ids_work_on_the_command_line(db_url, start_worker):
    start_worker(app)
    env = {**os.environ, "TENUTO_DB": db_url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        run = subprocess.run(
            [sys.executable, "-m", "tenuto", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert run.returncode == 0, (args, run.stderr)
        return run

    for iid in ["заказ-1", "a%b c", "emoji-😀"]:
        assert cli("start", "waits", "--id", iid).stdout.strip() == iid
        cli("pause", iid, "--reason", "check")
        assert json.loads(cli("status", iid, "--json").stdout)["runtime_status"] == "PAUSED"
        cli("raise", iid, "go", json.dumps({"for": iid}))
        cli("resume", iid)
        with tenuto.Client(db_url) as c:
            assert c.wait(iid, timeout=10).output == {"for": iid}
        assert iid in cli("history", iid).stdout
        listed = json.loads(cli("list", "--json").stdout)["items"]
        assert iid in [i["instance_id"] for i in listed]
        cli("purge", iid)
    bad = subprocess.run(
        [sys.executable, "-m", "tenuto", "start", "waits", "--id", "team/backup-1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 1 and "invalid instance id 'team/backup-1'" in bad.stderr


# -- ids that break the rules: refused, nothing written, never a 500 ---------------------


def test_bad_ids_are_refused_everywhere_before_anything_is_written(http_server):
    server = http_server(app)
    with httpx.Client(base_url=server.url, timeout=30) as api:
        for iid in BAD_IDS:
            with pytest.raises((ValueError, TypeError)):
                server.client.start(waits, instance_id=iid)
            r = api.post("/api/instances", json={"name": "waits", "instance_id": iid})
            assert r.status_code == 422, (iid, r.text)
            # An empty id is no id in a URL (the route without one starts a random id),
            # and every URL client resolves "." and ".." away: those never reach a route.
            if iid not in IN_NO_URL:
                r = api.post(f"/runtime/webhooks/durabletask/orchestrators/waits/{path(iid)}")
                assert r.status_code in (400, 404, 405), (iid, r.text)
                r = api.get(f"/api/instances/{path(iid)}")
                assert r.status_code in (404, 422), (iid, r.text)
                r = api.get(f"/runtime/webhooks/durabletask/instances/{path(iid)}")
                assert r.status_code in (400, 404), (iid, r.text)
    assert server.client.query().items == []


# -- sub-orchestration ids -----------------------------------------------------------------


def test_an_invalid_explicit_child_id_fails_that_call_and_creates_nothing(client, start_worker):
    start_worker(app)
    caught = client.wait(client.start(names_its_child, "team/backup-1"), timeout=30)
    assert caught.output.startswith("refused: invalid sub-orchestration instance id")
    assert "'team/backup-1'" in caught.output
    uncaught = client.wait(client.start(names_its_child_uncaught, "x" * 300), timeout=30)
    assert uncaught.runtime_status is Status.FAILED
    assert uncaught.failure is not None and uncaught.failure.type == "ValueError"
    assert "(300 characters)" in uncaught.failure.message
    assert {s.name for s in client.query().items} == {"names_its_child", "names_its_child_uncaught"}
    ok = client.wait(client.start(names_its_child, "team-backup-1"), timeout=30)
    assert ok.output == "created" and client.status("team-backup-1").parent_instance_id


def test_a_derived_child_id_of_a_long_parent_is_valid_and_addressable(client, start_worker):
    start_worker(app)
    for long_id in ("p" * 256, "q" * 250):  # 'q'*250 + ':0' fits; 'p'*256 + ':0' does not
        assert client.wait(client.start(parent, 1, instance_id=long_id), timeout=30).output == 2
    children = {s.parent_instance_id: s.instance_id for s in client.query(name="child").items}
    assert children["q" * 250] == "q" * 250 + ":0"
    shortened = children["p" * 256]
    assert len(shortened) == 256 and shortened.endswith(":0") and "~" in shortened
    assert shortened.startswith("p" * 200)
    assert client.status(shortened).output == 2
    assert client.wait(client.start(parent, 1, instance_id="p" * 255 + "x"), timeout=30)
    other = {s.parent_instance_id: s.instance_id for s in client.query(name="child").items}
    assert other["p" * 255 + "x"] != shortened  # distinct parents, distinct children

    # A live child of a long parent can be paused, resumed and terminated by its id.
    waiting = client.start(waiting_parent, instance_id="w" * 256)
    kid = wait_for(
        lambda: next(
            (s.instance_id for s in client.query(name="waits").items if s.parent_instance_id),
            None,
        )
    )
    assert len(kid) <= 256
    assert client.pause(kid, "check") and client.status(kid).runtime_status is Status.PAUSED
    assert client.resume(kid)
    client.terminate(kid, "done with it")
    assert client.wait(waiting, timeout=30).runtime_status is Status.FAILED

    # After continue_as_new the generation is part of the id, shortened the same way.
    client.wait(client.start(generations, 0, instance_id="g" * 256), timeout=30)
    gen_kids = [
        s.instance_id for s in client.query(name="child").items if s.parent_instance_id == "g" * 256
    ]
    assert len(gen_kids) == 2 and all(len(k) <= 256 for k in gen_kids)
    assert any(k.endswith(":1:0") for k in gen_kids)


# -- fuzzed: ids from all of Unicode, on every route ----------------------------------------

_ANY_CHAR = st.characters(codec=None, exclude_categories=())
IDS = st.one_of(
    st.text(_ANY_CHAR, min_size=0, max_size=12),
    st.sampled_from(ODD_IDS),
    st.sampled_from(BAD_IDS),
    st.text(st.sampled_from("/\\#?% \t\n\x00\x7f\u00a0\u2028é😀\ud800"), min_size=1, max_size=6),
    st.integers(250, 260).map(lambda n: "z" * n),
)


def valid_id(iid: str) -> bool:
    """The id rules, restated independently of tenuto's implementation."""
    return (
        1 <= len(iid) <= 256
        and iid == iid.strip()
        and not any(c in "/\\#?" or ord(c) < 32 or ord(c) == 127 for c in iid)
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in iid)
        and iid not in (".", "..")
    )


def test_fuzzed_ids_work_or_are_refused_on_every_route(http_server):
    server = http_server()
    df = "/runtime/webhooks/durabletask"
    api = httpx.Client(base_url=server.url, timeout=30)

    @given(iid=IDS)
    @settings(
        max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(iid: str) -> None:
        ok = valid_id(iid)
        seen[ok] += 1
        body = json.dumps({"name": "waits", "instance_id": iid}).encode()
        r = api.post("/api/instances", content=body, headers={"content-type": "application/json"})
        if not ok:
            assert r.status_code == 422, (iid, r.text)
            with pytest.raises((ValueError, TypeError)):
                server.client.start("waits", instance_id=iid)
            if iid not in IN_NO_URL:
                # An encoded "/" is decoded before routing: another route may answer
                # (a redirect to the list for a trailing one), never this instance.
                moved = (307,) if "/" in iid else ()
                for url in (f"/api/instances/{path(iid)}", f"{df}/instances/{path(iid)}"):
                    assert api.get(url).status_code in (400, 404, 422, *moved), (iid, url)
            return
        assert r.status_code == 201, (iid, r.text)
        assert unquote(r.headers["location"]) == f"/api/instances/{iid}"
        one = f"/api/instances/{path(iid)}"
        for request in (
            lambda: api.get(one),
            lambda: api.get(f"{one}/history"),
            lambda: api.post(f"{one}/pause", json={}),
            lambda: api.post(f"{one}/events/go", json=1),
            lambda: api.get(f"{df}/instances/{path(iid)}"),
            lambda: api.post(f"{df}/instances/{path(iid)}/resume"),
        ):
            answer = request()
            assert answer.status_code < 300, (iid, answer.text)
            assert answer.headers.get("location", "").isascii()
        assert api.post(f"{one}/terminate", json={}).json()["instance_id"] == iid
        assert api.delete(one).status_code == 200

    seen = {True: 0, False: 0}
    try:
        check()
    finally:
        api.close()
    assert seen[True] >= 10 and seen[False] >= 10, seen
