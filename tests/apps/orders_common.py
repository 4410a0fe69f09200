"""Activities shared by the versions of the ``order`` orchestrator (orders_v1..v4), for
tests that change the code under running and paused instances.

Each activity appends a line to the file named by ``$ORDERS_LOG`` (so a test can count
how often each one ran). ``charge`` fails while the file named by ``$FAIL_FLAG`` exists.
"""

from __future__ import annotations

import os

import tenuto


def log(line: str) -> None:
    with open(os.environ["ORDERS_LOG"], "a") as f:
        f.write(line + "\n")


def register(app: tenuto.App, charge_retry: tenuto.RetryPolicy | None = None) -> None:
    """Register the activities on ``app``."""

    @app.activity
    def reserve(item: str) -> str:
        log(f"reserve {item}")
        return f"reserved {item}"

    @app.activity
    def check_fraud(item: str) -> str:
        log(f"check_fraud {item}")
        return "clean"

    @app.activity(retry=charge_retry)
    def charge(item: str) -> str:
        log(f"charge {item}")
        flag = os.environ.get("FAIL_FLAG")
        if flag and os.path.exists(flag):
            raise ConnectionError(f"payment service down (flag {os.path.basename(flag)})")
        return f"charged {item}"

    @app.activity
    def ship(item: str) -> str:
        log(f"ship {item}")
        return f"shipped {item}"
