"""A tenuto worker in a process of its own: ``python -m bench.worker_proc DB_URL``.

Runs the orchestrators and activities of :mod:`bench.apps` with the worker's defaults
until SIGTERM or SIGINT (what ``tenuto worker bench.apps:app --db URL`` does, without
depending on the CLI).
"""

from __future__ import annotations

import sys

import tenuto

from .apps import app


def main(argv: list[str]) -> None:
    """Run a worker on ``argv[0]`` until a signal stops it."""
    tenuto.Worker(app, argv[0]).run()


if __name__ == "__main__":
    main(sys.argv[1:])
