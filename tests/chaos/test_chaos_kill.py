"""Worker processes SIGKILL themselves inside activities, inside orchestration steps and
right after commits, round after round, while the test pauses, resumes, raises events
and terminates at random. Nothing may be lost, run twice into history, or start while
paused."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from .harness import (
    KILL_POINTS,
    Fleet,
    Round,
    assert_no_problems,
    client_for,
    kills_by_point,
    rounds,
)


@pytest.mark.slow
def test_workers_killed_at_random_moments(db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "chaos.log"
    log.touch()
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    n = rounds(8)
    started = time.monotonic()
    with client_for(db_url) as client, Fleet(db_url, log, size=2, kills=True, seed=seed) as fleet:
        for r in range(n):
            rnd = Round(client, db_url, log, rng, f"k{r}", instances=12, commands=30)
            rnd.start()
            rnd.command()
            rnd.settle()
            assert_no_problems(rnd.check())
        deaths = list(fleet.deaths)
    kills = kills_by_point(log)
    print(
        f"\nchaos kill (seed {seed}): {n} rounds, {len(deaths)} workers SIGKILLed "
        f"({dict(kills)}), {time.monotonic() - started:.1f} s"
    )
    # The faults really happened: workers died by SIGKILL, at every kill point.
    assert deaths and all(code == -9 for _, code in deaths), deaths
    assert set(kills) == set(KILL_POINTS), kills
