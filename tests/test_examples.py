"""The examples run end to end, as the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.slow
def test_backup_demo_pauses_and_resumes_from_another_process():
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "backup.py"), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BACKUP_CHUNK_SECONDS": "0.05"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"PAUSED +\d+/12 chunks +\(paused by operator: business hours\)", out.stdout)
    assert "finished: COMPLETED" in out.stdout
    assert "ExecutionSuspended by operator: business hours" in out.stdout
    assert "ExecutionResumed by operator: night window" in out.stdout
    assert "activity retry" in out.stderr  # the flaky copies were retried by the worker
