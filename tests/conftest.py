from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tenuto

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh database for one test."""
    return f"sqlite:///{tmp_path / 'tenuto.db'}"


@pytest.fixture
def client(db_url: str) -> Iterator[tenuto.Client]:
    with tenuto.Client(db_url, actor="tester") as c:
        yield c


@pytest.fixture
def start_worker(db_url: str) -> Iterator[Callable[..., tenuto.Worker]]:
    """Start in-process workers on the test database; all are stopped at teardown."""
    workers: list[tenuto.Worker] = []

    def start(app: tenuto.App, **options: Any) -> tenuto.Worker:
        options.setdefault("shutdown_grace", 5.0)
        worker = tenuto.Worker(app, db_url, **options).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
