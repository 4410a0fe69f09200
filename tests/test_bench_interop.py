"""``python -m bench.interop``: the runner of the Durable Task SDK's own e2e tests.

CI cannot download their repository, so the runner runs here on a stand-in checkout laid
out as theirs is (``tests/durabletask/`` with ``_port_utils.py``), whose test calls
``durabletask.testing.create_test_backend`` as theirs do: it must get tenuto behind the
port, on each backend, and the table must count what passed and failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("durabletask")

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench import interop

from conftest import PG_URL

PORT_UTILS = """
import socket

def find_free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
"""

E2E = """
import pytest
from durabletask import client, worker
from durabletask.testing import create_test_backend

from tests.durabletask._port_utils import find_free_port

PORT = find_free_port()
HOST = f"localhost:{PORT}"


@pytest.fixture(autouse=True)
def backend():
    b = create_test_backend(port=PORT)
    yield b
    b.stop()
    b.reset()


def plus_one(ctx, n):
    return n + 1


def orchestrator(ctx, n):
    return (yield ctx.call_activity(plus_one, input=n))


def test_runs_on_tenuto(backend):
    assert type(backend).__name__ == "TenutoBackend"
    with worker.TaskHubGrpcWorker(host_address=HOST) as w:
        w.add_orchestrator(orchestrator)
        w.add_activity(plus_one)
        w.start()
        with client.TaskHubGrpcClient(host_address=HOST) as c:
            iid = c.schedule_new_orchestration(orchestrator, input=1)
            state = c.wait_for_orchestration_completion(iid, timeout=30)
    assert state.serialized_output == "2"


def test_that_fails():
    assert False, "counted as failed"


def test_entity_things_are_deselected():
    assert False, "never runs"
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    folder = tmp_path / "checkout" / "tests" / "durabletask"
    folder.mkdir(parents=True)
    (folder / "_port_utils.py").write_text(PORT_UTILS)
    (folder / "test_orchestration_e2e.py").write_text(E2E)
    return tmp_path / "checkout"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_runner_puts_tenuto_behind_their_backend(suite: Path, backend: str) -> None:
    if backend == "postgres" and not PG_URL:
        pytest.skip("set TENUTO_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL tests")
    db = "sqlite" if backend == "sqlite" else str(PG_URL)
    results = interop.run(suite, db, files=("test_orchestration_e2e.py",))
    counts = results["test_orchestration_e2e.py"]
    assert (counts.passed, counts.failed, counts.skipped) == (1, 1, 0)
    assert counts.failures == ["test_that_fails"]
    table = interop.table(results)
    assert "| `test_orchestration_e2e.py` | 1 | 1 | 0 |" in table


def test_a_folder_that_is_not_their_checkout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="must name a checkout of durabletask-python"):
        interop.run(tmp_path, "sqlite")
