"""One workload of one system, in a fresh process (started by :mod:`bench.runner`).

``python -m bench.child SYSTEM WORKLOAD VARIANT URL SCALE_JSON`` prints one line
``BENCH_RESULT <json>`` with the workload's numbers (or ``{"error": ...}``).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from typing import Any

from .scale import Scale

RESULT_PREFIX = "BENCH_RESULT "


def run(system: str, workload: str, variant: str, url: str, scale: Scale) -> dict[str, Any]:
    """Run ``workload`` of ``system`` on ``url``; its numbers."""
    if workload == "s":
        from . import sdk_workloads

        return sdk_workloads.run(system, url, scale)
    if system == "tenuto":
        from . import tenuto_workloads

        return tenuto_workloads.WORKLOADS[workload](url, scale)
    if system == "dbos":
        from . import dbos_workloads

        return dbos_workloads.run(workload, url, variant, scale)
    raise ValueError(f"unknown system {system!r}")


def main(argv: list[str]) -> int:
    system, workload, variant, url, scale_json = argv
    logging.basicConfig(level=logging.WARNING)
    try:
        result = run(system, workload, variant, url, Scale.from_json(json.loads(scale_json)))
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
