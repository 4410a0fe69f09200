"""Fan-out/fan-in: resize many images in parallel, then sum the bytes saved.

``ctx.when_all`` waits for every activity; the worker runs them concurrently (up to its
``concurrency``). Pausing the orchestration holds the ones not yet started.

Run it::

    python examples/fan_out.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import tenuto

app = tenuto.App()


@app.activity
def list_images(folder: str) -> list[str]:
    return [f"{folder}/img-{i:03d}.jpg" for i in range(24)]


@app.activity
def resize(path: str) -> int:
    time.sleep(0.05)  # pretend to work
    return 1000 + len(path) * 10  # bytes saved


@app.orchestrator
def resize_all(ctx: tenuto.OrchestrationContext, folder: str):  # type: ignore[no-untyped-def]
    images = yield ctx.call_activity(list_images, folder)
    saved = yield ctx.when_all([ctx.call_activity(resize, p) for p in images])
    ctx.set_custom_status({"images": len(images)})
    return {"images": len(images), "bytes_saved": sum(saved)}


def main() -> None:
    # A database of its own, in a temporary folder removed at the end.
    with tempfile.TemporaryDirectory(prefix="tenuto-fanout-") as tmp:
        run(f"sqlite:///{Path(tmp) / 'fanout.db'}")


def run(db: str) -> None:
    with tenuto.Worker(app, db, concurrency=8), tenuto.Client(db, app=app) as client:
        started = time.monotonic()
        iid = client.start(resize_all, "photos/2026")
        result = client.wait(iid, timeout=60).output
        print(
            f"resized {result['images']} images in {time.monotonic() - started:.2f} s "
            f"(8 at a time), saved {result['bytes_saved']} bytes"
        )


if __name__ == "__main__":
    main()
