"""Rules of the code's layout that review alone would not keep: read from the syntax
trees of the source, imports inside functions included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tenuto

SRC = Path(tenuto.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["tenuto", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, anywhere in it, as absolute names; ``from P import
    n`` counts as importing ``P.n`` when that is a module, else ``P``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if _is_module(sub) else base)
    return found


def _is_module(name: str) -> bool:
    if not name.startswith("tenuto."):
        return False
    path = SRC.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def import_graph(package: str) -> dict[str, set[str]]:
    """Every module of ``package`` (``tenuto.x``) and the modules of ``package`` it
    imports."""
    directory = SRC.joinpath(*package.split(".")[1:])
    modules = {_module_name(p): _imports(p) for p in sorted(directory.rglob("*.py"))}
    return {m: {i for i in imports if i in modules and i != m} for m, imports in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as the list of its modules (first one repeated last), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_within_the_http_package_flow_one_way() -> None:
    """The route modules, the middlewares and the app assembly share what they need
    through ``tenuto.http.common``; none imports another in a circle (not even from
    inside a function)."""
    graph = import_graph("tenuto.http")
    assert {"tenuto.http.api", "tenuto.http.app"} <= graph.keys()
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_http_package_builds_the_app_and_runs_nothing() -> None:
    """Serving (uvicorn, the worker, the gRPC server, signal handling) is the command
    line's business (``tenuto.cli.serving``); ``tenuto.http`` only builds the ASGI app."""
    running = ("uvicorn", "signal", "tenuto.worker", "tenuto.grpc", "tenuto.cli")
    for path in sorted((SRC / "http").rglob("*.py")):
        for name in _imports(path):
            assert not any(name == r or name.startswith(f"{r}.") for r in running), (
                f"{_module_name(path)} imports {name}"
            )


STATIC = SRC / "http" / "static"
_JS_IMPORT = re.compile(r'^import \{([^}]*)\} from "\./([\w.-]+\.js)";$', re.M)
_JS_EXPORT = re.compile(r"^export (?:async )?(?:function|const|let|class) ([\w$]+)", re.M)


def test_dashboard_modules_import_each_other_one_way() -> None:
    """The page loads one script, ``app.js``, as a module; every module it reaches exists
    in the package, exports what is imported from it, and is imported one way (no
    cycle); no module is left unreached."""
    html = (STATIC / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == ['<script type="module" src="static/app.js">']
    graph: dict[str, set[str]] = {}
    for path in sorted(STATIC.glob("*.js")):
        code = path.read_text()
        graph[path.name] = set()
        for names, target in _JS_IMPORT.findall(code):
            assert (STATIC / target).exists(), f"{path.name} imports {target}, which is missing"
            exported = set(_JS_EXPORT.findall((STATIC / target).read_text()))
            wanted = {n.strip() for n in names.split(",") if n.strip()}
            assert wanted <= exported, f"{path.name} imports {wanted - exported} from {target}"
            graph[path.name].add(target)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])
    reached, todo = set(), ["app.js"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    assert reached == graph.keys(), f"never loaded: {sorted(graph.keys() - reached)}"
