"""An app whose worker process traces to a file: ``python -m apps.traced DB_URL SPANS``
(run from tests/) runs a worker with tracing enabled, writing each finished span as a
JSON line to SPANS, until SIGTERM."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import tenuto
from tenuto import tracing

app = tenuto.App()


@app.activity
def inc(x: int) -> int:
    return x + 1


@app.orchestrator
def flow(ctx: tenuto.OrchestrationContext, x: int) -> Any:
    return (yield ctx.call_activity(inc, x))


class FileExporter(SpanExporter):
    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a") as f:
            for s in spans:
                f.write(json.dumps(record(s)) + "\n")
        return SpanExportResult.SUCCESS


def record(s: ReadableSpan) -> dict[str, Any]:
    """A span as the tests compare it."""
    assert s.context is not None
    return {
        "name": s.name,
        "trace_id": f"{s.context.trace_id:032x}",
        "span_id": f"{s.context.span_id:016x}",
        "parent": None if s.parent is None else f"{s.parent.span_id:016x}",
        "attributes": dict(s.attributes or {}),
        "events": [e.name for e in s.events],
    }


if __name__ == "__main__":
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter(sys.argv[2])))
    tracing.enable(provider)
    tenuto.Worker(app, sys.argv[1]).run()
