"""Which work a claim selects by name: a list, any name, or any but some."""

from __future__ import annotations

import time

import pytest

import tenuto
from tenuto.store import open_store

app = tenuto.App()


@app.orchestrator
def alpha(ctx: tenuto.OrchestrationContext, _: object) -> None:
    return None


@app.orchestrator
def beta(ctx: tenuto.OrchestrationContext, _: object) -> None:
    return None


@pytest.fixture
def queued(db_url: str) -> str:
    with tenuto.Client(db_url, app=app) as client:
        client.start("alpha", instance_id="a")
        client.start("beta", instance_id="b")
    return db_url


@pytest.mark.parametrize(
    ("names", "exclude", "expected"),
    [
        (["alpha"], (), {"a"}),
        (None, (), {"a", "b"}),
        (None, ["beta"], {"a"}),
        (["alpha", "beta"], ["alpha"], {"b"}),
        ([], (), set()),
    ],
)
def test_claim_steps_selects_by_name(queued: str, names, exclude, expected) -> None:
    store = open_store(queued)
    try:
        now = time.time() + 1
        due = store.read(lambda r: r.next_work_at(names, [], exclude))
        assert (due is not None) == bool(expected)
        claimed = store.run(
            lambda tx: tx.claim_steps(names, now, 10, "lease", now + 30, exclude=exclude)
        )
        assert {row.instance_id for row, _ in claimed} == expected
    finally:
        store.close()


def test_insert_instances_reports_each_row_and_inserts_a_repeated_id_once(queued: str) -> None:
    from tenuto.status import Status
    from tenuto.store.base import InstanceRow

    def row(iid: str, x: int) -> InstanceRow:
        now = time.time()
        return InstanceRow(
            instance_id=iid,
            name="alpha",
            status=Status.PENDING,
            execution_id=f"e-{x}",
            input=str(x),
            created_at=now,
            updated_at=now,
            next_due=now,
            parent_task_id=x,
            tags='{"k": "v"}',
        )

    store = open_store(queued)
    try:
        rows = [row("c", 1), row("a", 2), row("d", 3), row("c", 4)]
        assert store.run(lambda tx: tx.insert_instances(rows)) == [True, False, True, False]
        stored = store.read(lambda r: r.get_instance("c"))
        assert stored is not None
        assert (stored.execution_id, stored.input, stored.parent_task_id, stored.tags) == (
            "e-1",
            "1",
            1,
            '{"k": "v"}',
        )
        assert store.read(lambda r: r.get_instance("a")).execution_id != "e-2"
    finally:
        store.close()
