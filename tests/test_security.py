"""Security: the token on every route, no code execution from data, parameterized SQL,
XSS and CSRF defences, instances isolated from each other, loopback by default."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import tenuto
from tenuto.http import middleware

from helpers import wait_for

SRC = Path(tenuto.__file__).parent
STATIC = SRC / "http" / "static"

app = tenuto.App()


@app.orchestrator
def keeps(ctx: tenuto.OrchestrationContext, value: Any) -> Any:
    ctx.set_custom_status({"holding": value})
    got = yield ctx.wait_for_event("go")
    return {"input": value, "event": got}


@pytest.fixture
def backend() -> str:
    """These tests are about the HTTP layer and the source: one backend is enough."""
    return "sqlite"


TOKEN = "s3cret-token-value"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# -- the token on every route ----------------------------------------------------------


def routes(asgi: Any) -> Iterator[tuple[str, str]]:
    """``(method, path)`` of every route of tenuto's FastAPI app (behind its checks), found
    from the app object itself (so a route added later is covered without editing this)."""

    def walk(items: list[Any]) -> Iterator[tuple[str, str]]:
        for r in items:
            if hasattr(r, "effective_candidates"):  # an included router (FastAPI >= 0.116)
                yield from walk(r.effective_candidates())
            elif hasattr(r, "routes") and not getattr(r, "methods", None):
                prefix = getattr(r, "path", "")
                if type(r).__name__ == "Mount":
                    yield "GET", f"{prefix}/{{path}}"
                else:
                    yield from ((m, prefix + p) for m, p in walk(r.routes))
            else:
                for method in sorted(getattr(r, "methods", None) or ()):
                    if method != "HEAD":
                        yield method, r.path

    return walk(asgi.routes)


#: Served without a token, on purpose: the dashboard's static shell (HTML, script, styles)
#: holds no data; it asks for the token and sends it with every API call it makes.
PUBLIC = {("GET", "/"), ("GET", "/static/{path}"), ("GET", "/docs-assets/{path}")}


def _fill(path: str) -> str:
    values = {"path": "app.js", "name": "keeps", "functionName": "keeps", "eventName": "go"}
    if path.startswith("/docs-assets/"):
        values["path"] = "swagger-ui.css"
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "tok-1"), path)


def test_every_route_needs_the_token(http_server: Any) -> None:
    server = http_server(app, tokens={TOKEN: "alice"})
    found = sorted(set(routes(server.server.config.app)))
    paths = {p for _, p in found}
    # The enumeration sees the whole app (a broken one would check nothing).
    assert {"/api/instances/{instance_id}/pause", "/metrics", "/openapi.json"} <= paths
    assert any(p.startswith("/runtime/webhooks/durabletask/") for p in paths)
    assert len(found) >= 30, found
    server.client.start("keeps", "x", instance_id="tok-1")
    wait_for(lambda: server.client.status("tok-1").runtime_status is tenuto.Status.RUNNING)
    before = server.client.history("tok-1")
    refused = [
        ({}, {}),
        ({"Authorization": "Bearer wrong"}, {}),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, {}),  # a prefix of the token
        ({"Authorization": f"Bearer {TOKEN}x"}, {}),
        ({"Authorization": f"Basic {TOKEN}"}, {}),
        ({"Authorization": TOKEN}, {}),
        ({"x-functions-key": "wrong"}, {"code": "wrong"}),
        ({"Cookie": f"token={TOKEN}; tenuto_token={TOKEN}; Authorization={TOKEN}"}, {}),
    ]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for method, path in found:
            url = _fill(path)
            if (method, path) in PUBLIC:
                assert http.request(method, url).status_code == 200, url
                continue
            for headers, params in refused:
                r = http.request(method, url, headers=headers, params=params, json={})
                assert r.status_code == 401, (method, url, headers, r.status_code, r.text)
                assert r.json()["error"] == "unauthorized"
        # Nothing any refused request asked for happened ...
        assert server.client.history("tok-1") == before
        assert [s.instance_id for s in server.client.query().items] == ["tok-1"]
        # ... and the token is what made the difference.
        for method, path in found:
            r = http.request(method, _fill(path), headers=AUTH, json={})
            assert r.status_code != 401, (method, path)


def test_durable_functions_routes_take_the_function_key_too(http_server: Any) -> None:
    server = http_server(app, tokens={TOKEN: "df"})
    base = "/runtime/webhooks/durabletask/instances"
    with httpx.Client(base_url=server.url) as http:
        assert http.get(base, params={"code": TOKEN}).status_code == 200
        assert http.get(base, headers={"x-functions-key": TOKEN}).status_code == 200
        # ... but only there: the key is not a token for the rest of the API.
        assert http.get("/api/instances", params={"code": TOKEN}).status_code == 401
        assert http.get("/api/instances", headers={"x-functions-key": TOKEN}).status_code == 401


def test_tokens_are_compared_in_constant_time() -> None:
    """The guard compares a presented token with ``hmac.compare_digest``, against every
    configured token (no early exit that would tell which one nearly matched), and never
    looks tokens up by value."""
    tree = ast.parse(inspect.getsource(middleware.RequireToken))
    match = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_match")
    calls = [ast.unparse(n.func) for n in ast.walk(match) if isinstance(n, ast.Call)]
    assert "hmac.compare_digest" in calls
    assert not any(isinstance(n, ast.Return | ast.Break) for n in ast.walk(match.body[1]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            text = ast.unparse(node)
            assert not ("presented" in text and "secret" in text), text
        if isinstance(node, ast.Subscript):  # a dict lookup by the presented secret
            assert "presented" not in ast.unparse(node.slice), ast.unparse(node)


# -- XSS ---------------------------------------------------------------------------------

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def test_user_strings_come_back_as_json_never_html(http_server: Any) -> None:
    server = http_server(app)
    with httpx.Client(base_url=server.url) as http:
        r = http.post(
            "/api/instances", json={"name": "keeps", "input": XSS, "instance_id": "xss-1"}
        )
        assert r.status_code == 201, r.text
        wait_for(lambda: server.client.status("xss-1").custom_status is not None)
        http.post("/api/instances/xss-1/pause", json={"reason": XSS, "by": XSS})
        http.post("/api/instances/xss-1/resume", json={"reason": XSS})
        http.post("/api/instances/xss-1/events/go", json=XSS)
        server.client.wait("xss-1", timeout=10)
        for url in [
            "/api/instances/xss-1",
            "/api/instances/xss-1/history",
            "/api/instances?id_prefix=xss",
            f"/api/instances/{XSS}",  # a 404 that names the id
            "/runtime/webhooks/durabletask/instances/xss-1?showHistory=true",
        ]:
            r = http.get(url)
            assert r.headers["content-type"].startswith("application/json"), (url, r.headers)
            assert "text/html" not in r.headers["content-type"]
        assert XSS in http.get("/api/instances/xss-1/history").text.replace("\\/", "/")


def _code(js: str) -> str:
    """JavaScript without its comments (which may name what the code avoids)."""
    js = re.sub(r"/\*.*?\*/", "", js, flags=re.S)
    return re.sub(r"(?m)^\s*//.*$", "", js)


def test_dashboard_script_never_parses_html_from_data() -> None:
    scripts = list(STATIC.glob("*.js"))
    assert scripts
    for script in scripts:
        code = _code(script.read_text())
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            'setTimeout("',
            "document.cookie",  # the token is never kept in a cookie (CSRF)
            "localStorage",  # nor where any script of the origin could read it later
        ):
            assert sink not in code, f"{script.name} uses {sink}"
    html = (STATIC / "index.html").read_text()
    assert "<script>" not in html.replace(" ", ""), "inline scripts are refused by the CSP"


def test_dashboard_page_sends_a_strict_content_security_policy(http_server: Any) -> None:
    server = http_server()
    with httpx.Client(base_url=server.url) as http:
        r = http.get("/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


# -- CSRF ----------------------------------------------------------------------------------


def test_state_changes_need_the_token_header_not_a_cookie(http_server: Any) -> None:
    server = http_server(app, tokens={TOKEN: "alice"})
    server.client.start("keeps", 1, instance_id="csrf-1")
    with httpx.Client(base_url=server.url) as http:
        for name in ("token", "tenuto_token", "Authorization", "session"):
            r = http.post("/api/instances/csrf-1/terminate", headers={"Cookie": f"{name}={TOKEN}"})
            assert r.status_code == 401, r.text
        assert server.client.status("csrf-1").runtime_status is not tenuto.Status.TERMINATED


def test_cross_origin_form_posts_are_refused(http_server: Any) -> None:
    server = http_server(app)  # even without tokens: a web page must not drive the server
    server.client.start("keeps", 1, instance_id="form-1")
    form = {"content-type": "application/x-www-form-urlencoded"}
    with httpx.Client(base_url=server.url) as http:
        for origin in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            for url in (
                "/api/instances/form-1/terminate",
                "/api/instances",
                "/api/bulk/terminate",
                "/runtime/webhooks/durabletask/instances/form-1/terminate",
            ):
                r = http.post(url, content=b"reason=x&name=keeps", headers={**form, **origin})
                assert r.status_code == 403, (url, r.status_code, r.text)
        # A form post from no site at all still is not JSON: refused, nothing changes.
        r = http.post("/api/instances", content=b"name=keeps&instance_id=f2", headers=form)
        assert 400 <= r.status_code < 500
        ids = [s.instance_id for s in server.client.query().items]
        assert ids == ["form-1"]
        assert server.client.status("form-1").runtime_status is not tenuto.Status.TERMINATED


# -- isolation -------------------------------------------------------------------------------


def test_one_instance_routes_never_show_another_instance(http_server: Any) -> None:
    server = http_server(app)
    c = server.client
    # "iso" is a prefix of "iso2": a lookup by prefix or pattern would mix them up.
    for iid, secret in (("iso", "SECRET-OF-ISO"), ("iso2", "SECRET-OF-ISO2")):
        c.start("keeps", secret, instance_id=iid)
        wait_for(lambda iid=iid: c.status(iid).custom_status is not None)
        c.raise_event(iid, "go", f"event-{secret}")
        c.wait(iid, timeout=10)
    per_instance = [
        (m, p)
        for m, p in routes(server.server.config.app)
        if m == "GET" and re.search(r"\{instance_?[iI]d\}", p)
    ]
    assert len(per_instance) >= 3, per_instance
    with httpx.Client(base_url=server.url) as http:
        for _, path in per_instance:
            url = re.sub(r"\{instance_?[iI]d\}", "iso", path)
            r = http.get(
                url, params={"showHistory": "true", "showHistoryOutput": "true", "showInput": True}
            )
            assert r.status_code == 200, (url, r.text)
            assert "SECRET-OF-ISO2" not in r.text, url
            if path.endswith("/work"):  # what is in flight holds no values: its id says whose
                assert r.json()["instance_id"] == "iso", url
            else:
                assert "SECRET-OF-ISO" in r.text, url
        for probe in ("iso%2F..%2Fiso2", "iso*", "iso%25", "is_"):
            r = http.get(f"/api/instances/{probe}")
            assert r.status_code == 404 and "SECRET" not in r.text, (probe, r.text)


# -- binding ---------------------------------------------------------------------------------


def test_the_server_binds_to_loopback_by_default() -> None:
    from click.testing import CliRunner

    from tenuto.cli import main
    from tenuto.cli.serving import run_server

    assert inspect.signature(run_server).parameters["host"].default == "127.0.0.1"
    command = main.commands["serve"]  # type: ignore[attr-defined]
    host = next(p for p in command.params if p.name == "host")
    assert host.default == "127.0.0.1"
    out = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "127.0.0.1" in out


# -- no code from data -------------------------------------------------------------------------

#: Modules that turn bytes into code or arbitrary objects.
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "jsonpickle"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_no_pickle_eval_exec_marshal_or_yaml_load_in_the_source() -> None:
    problems = []
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in UNSAFE_MODULES:
                        problems.append(f"{where}: import {alias.name}")
            elif isinstance(node, ast.ImportFrom):
                if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                    problems.append(f"{where}: from {node.module} import ...")
            elif isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                if func in UNSAFE_CALLS:
                    problems.append(f"{where}: {func}()")
                if func.endswith(("yaml.load", "yaml.unsafe_load", "yaml.full_load")):
                    problems.append(f"{where}: {func}()")
                if func.startswith("subprocess.") and any(k.arg == "shell" for k in node.keywords):
                    problems.append(f"{where}: {func}(shell=...)")
    assert not problems, problems


def test_the_source_scan_catches_what_it_looks_for(tmp_path: Path) -> None:
    """The scan above is not vacuous: it finds each thing it forbids in a sample."""
    sample = "import pickle\nfrom marshal import loads\neval('1')\nyaml.load(x)\n"
    tree = ast.parse(sample)
    found = [type(n).__name__ for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert found == ["Import", "ImportFrom"]
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert "eval" in calls & UNSAFE_CALLS and "yaml.load" in calls


# -- parameterized SQL -------------------------------------------------------------------

_SQL = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|VALUES|SET|FROM|RETURNING|LIMIT|NOTIFY|LISTEN)\b"
)

#: Expressions that may be interpolated into SQL text: SQL fragments built by the stores
#: themselves (column lists, conditions made of placeholders, fixed function names),
#: never values. Values go through placeholders (``?``/``%s``); a schema name goes through
#: ``psycopg.sql.Identifier`` after validation. Anything new here needs a reason.
SQL_FRAGMENTS = {
    # column lists and fixed conditions (module constants)
    "INSTANCE_COLUMNS",
    "_ACTIVITY_COLUMNS",
    "_STANDING_COLUMNS",
    "_SCHEDULE_COLUMNS",
    "_LIMIT_COLUMNS",
    "_WORKER_COLUMNS",
    "_WORKER_UPDATE",
    "_INSTANCE_PAUSED",
    "_TYPE_HELD",
    "AS_LEFT",
    # the entity tables' column lists and fixed conditions (store/_entity_sql.py)
    "ENTITY_COLUMNS",
    "_OP_COLUMNS",
    "_O_COLUMNS",
    "_MAY_RUN",
    "_TYPE_PAUSED",
    # conditions and lists built from placeholders by the dialect
    "cond",
    "scond",
    "where",
    "' AND '.join(conds)",
    "marks",
    "values",
    "', '.join('?' * len(values))",
    "self.d.for_update",
    "self.d.skip_locked",
    "tail",
    # column names checked against INSTANCE_FIELDS / fixed tables, and their SQL types
    "c",
    "column",
    "table",
    "sets",
    "pairs",
    "types",
    "_COLUMN_TYPES[c]",
    # pg_advisory_xact_lock or pg_advisory_xact_lock_shared
    "lock",
}


def _sql_fstrings(path: Path) -> list[tuple[int, str]]:
    """``(line, expression)`` of every value interpolated into an f-string that holds SQL."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if _SQL.search(text):
                for v in node.values:
                    if isinstance(v, ast.FormattedValue):
                        out.append((node.lineno, ast.unparse(v.value)))
    return out


def test_store_sql_interpolates_no_values() -> None:
    problems = []
    stores = sorted((SRC / "store").glob("*.py"))
    checked = 0
    for path in stores:
        for line, expr in _sql_fstrings(path):
            checked += 1
            if expr not in SQL_FRAGMENTS:
                problems.append(f"{path.name}:{line}: {{{expr}}} interpolated into SQL")
        for node in ast.walk(ast.parse(path.read_text())):
            # "..." % value or "...".format(value) on SQL text (sql.SQL(...).format is safe)
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Mod)
                and isinstance(node.left, ast.Constant)
                and _SQL.search(str(node.left.value))
            ):
                problems.append(f"{path.name}:{node.lineno}: % formatting of SQL")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "format"
                and isinstance(node.func.value, ast.Constant)
                and _SQL.search(str(node.func.value.value))
            ):
                problems.append(f"{path.name}:{node.lineno}: str.format of SQL")
    assert checked > 20, "the scan found no SQL f-strings at all: is it looking?"
    assert not problems, problems


def test_the_sql_scan_flags_an_interpolated_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('def f(x, iid):\n    x.execute(f"SELECT * FROM t WHERE id = {iid}")\n')
    assert _sql_fstrings(bad) == [(2, "iid")]


@pytest.mark.parametrize(
    "schema", ['x"; DROP TABLE instances; --', "Upper", "a b", "a-b", "1abc" * 20]
)
def test_postgres_schema_names_are_validated(schema: str) -> None:
    from urllib.parse import quote

    from tenuto.store.postgres import parse_url

    with pytest.raises(ValueError, match="schema"):
        parse_url(f"postgresql://u@h/db?schema={quote(schema)}")
    assert parse_url("postgresql://u@h/db?schema=ok_1")[1] == "ok_1"
