"""What tenuto stores as a JSON value, on every entry point (issue 22, items 5 and 8).

One bad value must never stop the engine: a lone surrogate (what ``os.fsdecode`` gives
for a file name that is not UTF-8), NaN, an integer no reader decodes, or nesting deeper
than 100 levels makes the one activity attempt or instance that produced it fail with a
clear "not valid JSON text" error, or the one request that carried it be refused before
anything is written; every other instance keeps advancing. Reads stay robust to what an
older version stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tenuto
from tenuto import Status
from tenuto.store.base import InstanceRow

app = tenuto.App()
NOT_UTF8 = os.fsdecode(b"report-\xff.csv")  # 'report-\udcff.csv'


def nested(depth: int, leaf: Any = 1) -> Any:
    """``leaf`` inside ``depth`` lists: ``nested(2) == [[1]]``."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@app.activity
def add_one(x: int) -> int:
    return x + 1


@app.activity(retry=tenuto.RetryPolicy(max_attempts=2, first_delay=0.01))
def list_files(_: object) -> list[str]:
    return ["ok.csv", NOT_UTF8]


@app.activity
def open_missing(_: object) -> None:
    with open(os.fsdecode(b"/nonexistent-dir/\xff.csv")):  # FileNotFoundError naming it
        pass


@app.activity
def too_deep(_: object) -> Any:
    return nested(101)


@app.orchestrator
def steps(ctx, n):
    total = 0
    for _ in range(n):
        total = yield ctx.call_activity(add_one, total)
    return total


@app.orchestrator
def reads_a_bad_file_name(ctx, _):
    return (yield ctx.call_activity(list_files, None))


@app.orchestrator
def fails_on_a_bad_file_name(ctx, _):
    return (yield ctx.call_activity(open_missing, None))


@app.orchestrator
def activity_too_deep(ctx, _):
    return (yield ctx.call_activity(too_deep, None))


@app.orchestrator
def returns_a_bad_file_name(ctx, _):
    yield ctx.call_activity(add_one, 1)
    return {"file": NOT_UTF8}


@app.orchestrator
def reports_a_bad_file_name(ctx, _):
    yield ctx.call_activity(add_one, 1)
    ctx.set_custom_status({"current": NOT_UTF8})
    return "unreachable"


@app.orchestrator
def returns_too_deep(ctx, _):
    yield ctx.call_activity(add_one, 1)
    return nested(101)


@app.orchestrator
def pauses_with_a_bad_reason(ctx, _):
    yield ctx.pause(f"cannot read {NOT_UTF8}")


@app.orchestrator
def echo(ctx, value):
    return value


@app.orchestrator
def waits(ctx, _):
    return (yield ctx.wait_for_event("go"))


# -- one bad value, one failure; everything else goes on ---------------------------------

BAD = {
    "reads_a_bad_file_name": (
        "tenuto.errors.ActivityFailed",
        "the output of activity 'list_files'",
    ),
    "activity_too_deep": ("tenuto.errors.ActivityFailed", "the output of activity 'too_deep'"),
    "returns_a_bad_file_name": (
        "tenuto.errors.InvalidJSON",
        "the output of orchestrator 'returns_a_bad_file_name'",
    ),
    "reports_a_bad_file_name": (
        "tenuto.errors.InvalidJSON",
        "the custom status of orchestrator 'reports_a_bad_file_name'",
    ),
    "returns_too_deep": ("tenuto.errors.InvalidJSON", "nests lists and objects more than 100"),
}


def test_a_value_that_is_not_json_text_fails_its_activity_or_instance_and_nothing_else(
    client, start_worker
):
    start_worker(app)
    bad = {name: client.start(name) for name in BAD}
    bad_file = client.start(fails_on_a_bad_file_name)
    bad_reason = client.start(pauses_with_a_bad_reason)
    good = [client.start(steps, 3) for _ in range(5)]

    for iid in good:
        st = client.wait(iid, timeout=30)
        assert (st.runtime_status, st.output) == (Status.COMPLETED, 3)
    for name, iid in bad.items():
        st = client.wait(iid, timeout=30)
        kind, where = BAD[name]
        assert st.runtime_status is Status.FAILED, (name, st)
        assert st.failure is not None and st.failure.type == kind, (name, st.failure)
        assert where in st.failure.message, (name, st.failure.message)
    lone = client.status(bad["reads_a_bad_file_name"]).failure
    assert lone is not None
    assert "after 2 attempts" in lone.message  # retried per its policy, then failed
    assert "not valid JSON text" in lone.message and "lone surrogate" in lone.message
    assert "[1]" in lone.message  # where in the value
    # An error message naming a file that is not UTF-8 is stored with the name escaped.
    st = client.wait(bad_file, timeout=30)
    assert st.failure is not None and "FileNotFoundError" in st.failure.message
    assert "\\udcff.csv" in st.failure.message
    st = client.wait(bad_reason, timeout=30)
    assert st.failure is not None and "lone surrogates" in st.failure.message
    # Later instances run as well: nothing was left poisoned.
    assert client.wait(client.start(steps, 2), timeout=30).output == 2


# -- refused before anything is written, on every entry point -----------------------------

#: Values that are not valid JSON text, and what the refusal says.
REFUSED: list[tuple[Any, str]] = [
    (NOT_UTF8, "lone surrogate"),
    ({"files": [{"name": NOT_UTF8}]}, "['files'][0]['name']"),
    ({NOT_UTF8: 1}, "key"),
    (float("nan"), "NaN"),
    ([1.0, float("inf")], "NaN or Infinity"),
    (10**4301, "more than 4300 digits"),
    (nested(101), "more than 100 levels"),
    (nested(600), "more than 100 levels"),
]


@pytest.mark.parametrize(
    ("value", "says"),
    REFUSED,
    ids=["surrogate", "nested-surrogate", "key", "nan", "inf", "digits", "depth-101", "depth-600"],
)
def test_the_client_refuses_a_value_that_is_not_json_text(client, value, says):
    with pytest.raises(tenuto.InvalidJSON, match="not valid JSON text") as refused:
        client.start(echo, value)
    assert says in str(refused.value)
    assert "the input of orchestrator 'echo'" in str(refused.value)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, TypeError)
    with pytest.raises(tenuto.InvalidJSON):
        client.start_many(echo, [1, value, 2])
    assert client.query().items == []  # nothing was written

    iid = client.start(waits)
    with pytest.raises(tenuto.InvalidJSON, match="the data of event 'go'"):
        client.raise_event(iid, "go", value)
    assert [e.type for e in client.history(iid) if e.type == "EventRaised"] == []


def test_nesting_up_to_100_levels_is_stored_and_read_back(client, start_worker):
    start_worker(app)
    value = {"deep": nested(99)}  # 100 levels with the object
    st = client.wait(client.start(echo, value), timeout=30)
    assert st.output == value and st.input == value


def test_the_rest_api_refuses_before_writing(http_server):
    server = http_server(app)
    with httpx.Client(base_url=server.url, timeout=30) as api:
        for text, says in [
            (json.dumps(nested(600)), "more than 100 levels"),
            (json.dumps(nested(101)), "more than 100 levels"),
            ("[" * 100_000 + "]" * 100_000, "more than 100 levels"),
            ('{"name": "\\udcff"}', "lone surrogate"),
            ("1" * 5000, "more than 4300 digits"),
            ("1e400", "too large"),
        ]:
            body = f'{{"name": "echo", "input": {text}}}'
            r = api.post(
                "/api/instances", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 422, (text[:20], r.text)
            assert r.json()["error"] == "invalid_json" and says in r.json()["message"]
        r = api.post("/api/instances", json={"name": "waits", "instance_id": "w"})
        assert r.status_code == 201
        deep = json.dumps(nested(300))
        r = api.post(
            "/api/instances/w/events/go", content=deep, headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and "more than 100 levels" in r.json()["message"]
        nan = api.post(
            "/api/instances",
            content=b'{"name": "echo", "input": NaN}',
            headers={"content-type": "application/json"},
        )
        assert nan.status_code == 400 and nan.json()["error"] == "malformed"

        listed = api.get("/api/instances")
        assert listed.status_code == 200
        assert [i["instance_id"] for i in listed.json()["items"]] == ["w"]
        history = api.get("/api/instances/w/history").json()["events"]
        assert "EventRaised" not in [e["type"] for e in history]


def test_the_durable_functions_routes_refuse_before_writing(http_server):
    server = http_server(app)
    prefix = f"{server.url}/runtime/webhooks/durabletask"
    with httpx.Client(base_url=prefix, timeout=30) as df:
        deep = json.dumps(nested(600)).encode()
        for body in (deep, json.dumps(json.dumps(nested(150))).encode(), b'"\\ud800"'):
            r = df.post("/orchestrators/echo/df-1", content=body)
            assert r.status_code == 400, r.text
            assert "not valid JSON text" in r.json()["ExceptionMessage"]
        assert server.client.query().items == []
        server.client.start(waits, instance_id="df-w")
        r = df.post(
            "/instances/df-w/raiseEvent/go",
            content=deep,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400 and "more than 100 levels" in r.json()["message"]
        assert "EventRaised" not in [e.type for e in server.client.history("df-w")]


def test_the_command_line_refuses_before_writing(db_url):
    env = {**os.environ, "TENUTO_DB": db_url}
    for text, says in [
        (json.dumps(nested(150)), "more than 100 levels"),
        ('"\\udcff"', "lone surrogate"),
    ]:
        run = subprocess.run(
            [sys.executable, "-m", "tenuto", "start", "echo", text],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert run.returncode == 2 and says in run.stderr, run.stderr
    with tenuto.Client(db_url) as c:
        assert c.query().items == []


# -- reads are robust to what an older version stored --------------------------------------

DEEP_TEXT = json.dumps({"deep": nested(599)})


def _store_old_row(client: tenuto.Client, iid: str) -> None:
    """Write an instance as a version without the nesting bound could have: a 600-level
    input, output and custom status, and a 600-level event in its history."""
    row = InstanceRow(
        instance_id=iid,
        name="echo",
        status=Status.COMPLETED,
        execution_id="e1",
        input=DEEP_TEXT,
        output=DEEP_TEXT,
        custom_status=DEEP_TEXT,
        created_at=1.0,
        updated_at=2.0,
        completed_at=2.0,
    )
    event = tenuto.history.Event("EventRaised", 1.5, {"name": "go", "data": nested(600)})

    def write(tx: Any) -> None:
        tx.insert_instances([row])
        tx.annotate([iid], event)

    client.store.run(write)


def test_a_deep_value_stored_by_an_older_version_is_still_listed_and_shown(http_server, db_url):
    server = http_server(app)
    _store_old_row(server.client, "old-1")

    with httpx.Client(base_url=server.url, timeout=30) as api:
        one = api.get("/api/instances/old-1")
        assert one.status_code == 200, one.text
        assert one.json()["input"] == DEEP_TEXT  # shown as its JSON text
        listed = api.get("/api/instances")
        assert listed.status_code == 200 and listed.json()["items"][0]["output"] == DEEP_TEXT
        assert api.get("/api/instances/old-1/history").status_code == 200
        df = api.get("/runtime/webhooks/durabletask/instances/old-1?showHistory=true")
        assert df.status_code == 200 and df.json()["output"] == DEEP_TEXT
        assert api.get("/runtime/webhooks/durabletask/instances").status_code == 200

    env = {**os.environ, "TENUTO_DB": db_url}
    for args in (["list", "--json"], ["list"], ["status", "old-1", "--json"], ["history", "old-1"]):
        run = subprocess.run(
            [sys.executable, "-m", "tenuto", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert run.returncode == 0, (args, run.stderr[-500:])
        if args == ["list", "--json"]:
            assert json.loads(run.stdout)["items"][0]["input"] == DEEP_TEXT

    st = server.client.status("old-1")
    assert st.input == DEEP_TEXT and st.output == DEEP_TEXT and st.custom_status == DEEP_TEXT
    assert [s.instance_id for s in server.client.query().items] == ["old-1"]
    shown = server.client.history("old-1")[-1].data["data"]
    assert json.loads(shown) == nested(600)


# -- fuzzed: JSON values with lone surrogates, deep nesting, huge numbers, NaN ---------------

_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=6)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(4298, 4302).map(lambda n: -(10**n) if n % 2 else 10**n)  # huge integers
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT
)
JSON_VALUES = st.one_of(
    st.recursive(
        _SCALARS,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
        max_leaves=8,
    ),
    st.tuples(st.integers(90, 120), _SCALARS).map(lambda t: nested(*t)),
    st.tuples(st.integers(95, 105), _SCALARS).map(lambda t: {"k": nested(*t)}),
)


def storable(value: Any, depth: int = 0) -> bool:
    """The rules, restated independently of tenuto's implementation."""
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return abs(value) < 10**4300  # at most 4300 digits
    if isinstance(value, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if depth + 1 > 100:
        return False
    if isinstance(value, dict):
        return all(storable(k) and storable(v, depth + 1) for k, v in value.items())
    return all(storable(v, depth + 1) for v in value)


def _body(iid: str, value: Any) -> bytes:
    # json.dumps writes NaN, lone surrogates (as escapes) and, with Python's digit limit
    # lifted for the moment (the server is idle meanwhile), any integer: what a careless
    # client sends.
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps({"name": "echo", "instance_id": iid, "input": value}).encode()
    finally:
        sys.set_int_max_str_digits(limit)


def test_fuzzed_values_are_stored_exactly_or_refused_cleanly(http_server):
    server = http_server()  # no worker: the instances stay as they were stored
    api = httpx.Client(base_url=server.url, timeout=30)
    seen = {"n": 0, "True": 0, "False": 0}

    @given(value=JSON_VALUES)
    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(value: Any) -> None:
        seen["n"] += 1
        ok = storable(value)
        seen[f"{ok}"] += 1
        iid = f"fuzz-{seen['n']}"
        if ok:
            server.client.start("echo", value, instance_id=iid)
            assert server.client.status(iid).input == value
        else:
            with pytest.raises(tenuto.InvalidJSON, match="not valid JSON text"):
                server.client.start("echo", value, instance_id=iid)
            with pytest.raises(tenuto.InstanceNotFound):
                server.client.status(iid)
        r = api.post(
            "/api/instances",
            content=_body(f"rest-{iid}", value),
            headers={"content-type": "application/json"},
        )
        if ok:
            assert r.status_code == 201, r.text
            assert api.get(f"/api/instances/rest-{iid}").json()["input"] == value
        else:
            assert r.status_code in (400, 422), r.text
            assert api.get(f"/api/instances/rest-{iid}").status_code == 404

    try:
        check()
    finally:
        api.close()
    assert seen["True"] >= 10 and seen["False"] >= 10, seen


_PLAIN = st.text(st.sampled_from('[]{}"\\ab:,é\n\u2028'), max_size=8)


@given(
    value=st.recursive(
        st.none() | st.integers() | _PLAIN,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_PLAIN, inner, max_size=3),
        max_leaves=20,
    )
    | st.tuples(st.integers(95, 105), _PLAIN).map(lambda t: {"k[": nested(*t)}),
    limit=st.integers(1, 102),
    indent=st.sampled_from([None, 1]),
)
@settings(max_examples=300, deadline=None, database=None)
def test_the_nesting_read_from_the_text_is_the_nesting_of_the_value(value, limit, indent):
    from tenuto import _json

    # Brackets, quotes and backslashes inside strings must not fool the text-based check,
    # in tenuto's compact text or in any other writer's.
    texts = [json.dumps(value, indent=indent), json.dumps(value, ensure_ascii=False)]
    if not _json._deeper_than(value, _json.MAX_DEPTH):
        texts.append(_json.dumps(value, "v"))
    for text in texts:
        assert _json._text_deeper_than(text, limit) == _json._deeper_than(value, limit)
