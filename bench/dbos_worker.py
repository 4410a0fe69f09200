"""DBOS in a process of its own, for the cancel/resume analogue of workload (e):
``python -m bench.dbos_worker DB_URL VARIANT`` (stops on SIGTERM)."""

from __future__ import annotations

import sys

from .dbos_workloads import serve

if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
