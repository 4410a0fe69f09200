"""Helpers for the tests that run the real ``durabletask`` SDK against tenuto's gRPC
sidecar: the sidecar with its housekeeping worker, and SDK workers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from durabletask import client as dc
from durabletask.worker import TaskHubGrpcWorker

import tenuto
from conftest import drop_postgres_schema, new_db_url
from tenuto.grpc import GrpcServer

from helpers import wait_for


class Sidecar:
    def __init__(self, db: str, server: GrpcServer) -> None:
        self.db = db
        self.server = server
        self.address = f"127.0.0.1:{server.port}"
        self.client = dc.TaskHubGrpcClient(host_address=self.address)
        self.tenuto = tenuto.Client(store=server.store, actor="tester")

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def run(self, orchestrator: Any, value: Any = None, timeout: float = 30) -> Any:
        iid = self.client.schedule_new_orchestration(orchestrator, input=value)
        state = self.client.wait_for_orchestration_completion(iid, timeout=timeout)
        assert state is not None
        return state


def sdk_worker(
    address: str, orchestrators: list[Any], activities: list[Any], **options: Any
) -> TaskHubGrpcWorker:
    """A started SDK worker that serves only what it registers (work-item filters);
    ``versioning=VersioningOptions(...)`` puts its version in those filters."""
    versioning = options.pop("versioning", None)
    worker = TaskHubGrpcWorker(host_address=address, **options)
    for o in orchestrators:
        worker.add_orchestrator(o)
    for a in activities:
        worker.add_activity(a)
    if versioning is not None:
        worker.use_versioning(versioning)
    worker.use_work_item_filters()
    worker.start()
    return worker


@contextmanager
def open_sidecar(
    backend: str, directory: Path, lease_seconds: float, **options: Any
) -> Iterator[Sidecar]:
    """A sidecar (with its housekeeping worker) on a fresh database of ``backend``."""
    db = new_db_url(backend, directory)
    server = GrpcServer(db, port=0, lease_seconds=lease_seconds, **options).start()
    housekeeping = tenuto.Worker(tenuto.App(), store=server.store, shutdown_grace=1).start()
    side = Sidecar(db, server)
    try:
        yield side
    finally:
        side.client.close()
        housekeeping.stop()
        server.stop(grace=1)
        if backend == "postgres":
            drop_postgres_schema(db)


@contextmanager
def connected(
    side: Sidecar, orchestrators: list[Any], activities: list[Any], **options: Any
) -> Iterator[TaskHubGrpcWorker]:
    """An SDK worker connected to ``side`` for the duration of the block."""
    before = {s.id for s in side.server.dispatcher.streams}
    worker = sdk_worker(side.address, orchestrators, activities, **options)
    try:
        wait_for(
            lambda: [s for s in side.server.dispatcher.streams if s.id not in before],
            what="the SDK worker to connect",
        )
        yield worker
    finally:
        worker.stop()
