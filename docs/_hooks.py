"""MkDocs hooks: pages generated from the code itself, so they cannot drift from it.

``reference/http.md`` gets a table of every route, built from the OpenAPI document the
server serves; ``changelog.md`` includes the repository's CHANGELOG.md; ``performance.md``
includes the latest benchmark report and chart from ``bench/results/``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent


def _openapi() -> dict[str, Any]:
    import tenuto
    from tenuto.http import create_app

    with tempfile.TemporaryDirectory() as tmp:
        client = tenuto.Client(f"sqlite:///{tmp}/docs.db")
        try:
            return create_app(client, dashboard=False).openapi()
        finally:
            client.close()


def _routes_table(doc: dict[str, Any], prefix: str) -> str:
    lines = ["| Method | Path | What it does | Responses |", "| --- | --- | --- | --- |"]
    for path, operations in doc["paths"].items():
        if not path.startswith(prefix):
            continue
        for method, op in operations.items():
            summary = (op.get("description") or op.get("summary") or "").strip().splitlines()
            codes = ", ".join(sorted(op.get("responses", {})))
            lines.append(
                f"| `{method.upper()}` | `{path}` | {summary[0] if summary else ''} | {codes} |"
            )
    return "\n".join(lines)


_BENCH = ROOT / "bench" / "results"


def _bench_results() -> str:
    """The machine and result tables of the latest run, without the report's own title."""
    report = (_BENCH / "latest.md").read_text()
    body = report.split("\n", 1)[1]
    # The chart is published next to the page by on_files; the report names it relatively.
    return body.replace("](latest.png)", "](images/bench-latest.png)")


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(
        File.generated(config, "images/bench-latest.png", abs_src_path=str(_BENCH / "latest.png"))
    )
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- routes:" in markdown:
        doc = _openapi()
        for prefix in ("/api", "/runtime/webhooks/durabletask", "/metrics"):
            markdown = markdown.replace(f"<!-- routes:{prefix} -->", _routes_table(doc, prefix))
        markdown = markdown.replace("<!-- openapi-version -->", doc["info"]["version"])
    if "<!-- bench:results -->" in markdown:
        markdown = markdown.replace("<!-- bench:results -->", _bench_results())
    if "<!-- changelog -->" in markdown:
        markdown = markdown.replace(
            "<!-- changelog -->", (ROOT / "CHANGELOG.md").read_text().split("\n", 1)[1]
        )
    return markdown


def on_post_build(config: Any) -> None:
    """Publish the OpenAPI document next to the site."""
    site = Path(config["site_dir"])
    (site / "openapi.json").write_text(json.dumps(_openapi(), indent=2))
