"""The examples run end to end, as the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.slow
def test_backup_demo_pauses_and_resumes_from_another_process(tmpdir_env):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "backup.py"), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**tmpdir_env, "BACKUP_CHUNK_SECONDS": "0.05"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"PAUSED +\d+/12 chunks +\(paused by operator: business hours\)", out.stdout)
    assert "finished: COMPLETED" in out.stdout
    assert "ExecutionSuspended by operator: business hours" in out.stdout
    assert "ExecutionResumed by operator: night window" in out.stdout
    assert "activity retry" in out.stderr  # the flaky copies were retried by the worker


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment whose temporary folder is a fresh one: after the example, it must
    be empty again (an example removes the folders it makes)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    yield {**os.environ, "TMPDIR": str(folder)}
    assert list(folder.iterdir()) == [], "the example left temporary files behind"


def _run(name: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.mark.slow
def test_approval_example(tmpdir_env):
    out = _run("approval.py", tmpdir_env)
    assert "-> {'id': 'EXP-1', 'status': 'approved', 'by': 'dana'}" in out
    assert "-> {'id': 'EXP-2', 'status': 'escalated'}" in out
    assert "status while paused: PAUSED" in out
    assert "-> {'id': 'EXP-3', 'status': 'rejected', 'by': 'sam'}" in out


@pytest.mark.slow
def test_fan_out_example(tmpdir_env):
    out = _run("fan_out.py", tmpdir_env)
    assert re.search(r"resized 24 images in [\d.]+ s \(8 at a time\), saved 29520 bytes", out)


@pytest.mark.slow
def test_saga_example_compensates_in_reverse_order(tmpdir_env):
    out = _run("saga.py", tmpdir_env)
    assert "'booked': True" in out
    assert "'compensated': ['hotel-confirmation', 'flight-confirmation']" in out
    assert out.index("cancelled hotel") < out.index("cancelled flight")


@pytest.mark.slow
def test_monitor_example_keeps_history_short(tmpdir_env):
    out = _run("monitor.py", tmpdir_env)
    assert "after 5 rounds: alerts in rounds [3]" in out
    assert "history kept: 6 events (one round, not five)" in out
