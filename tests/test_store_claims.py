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
