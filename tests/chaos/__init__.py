"""Fault injection: tenuto hurt on purpose, with every invariant checked after each round.

The suite runs real components only: worker processes started with ``tenuto worker`` and
killed with SIGKILL, real SQLite files locked by another process, a PostgreSQL server the
test starts itself (restarted, its connections cut), and a clock the test moves.

================================  ==========================================================
``test_chaos_kill.py``            worker processes kill themselves (SIGKILL) inside an
                                  activity, inside an orchestration step, and right after a
                                  commit, while the test pauses, resumes, raises events and
                                  terminates at random (both backends)
``test_chaos_postgres.py``        the test's own PostgreSQL server restarted, and every
                                  connection cut with ``pg_terminate_backend``, mid-round
``test_chaos_sqlite_lock.py``     the SQLite file held by ``BEGIN EXCLUSIVE`` in another
                                  process while workers and clients operate
``test_chaos_clock.py``           the clock jumps forward and backward under timers, pauses
                                  and scheduled resumes (both backends)
``test_chaos_pause_races.py``     PostgreSQL: five actors pause and resume one by one, by
                                  filter, by cascade and by standing pauses while retries and
                                  chains run; "nothing claimable while paused" is sampled
                                  from the tables all along (``TENUTO_CHAOS_SECONDS``)
================================  ==========================================================

After every round :func:`chaos.harness.check_round` checks, from the store itself:

- every instance reaches the state its commands imply (COMPLETED with the expected
  output, TERMINATED, or still PAUSED when the last command was a pause);
- each activity result reaches its orchestrator exactly once (one ``TaskCompleted`` per
  ``TaskScheduled`` task id, none without one);
- nothing starts while paused: no history event between an ``ExecutionSuspended`` and its
  ``ExecutionResumed`` but a termination, and no activity attempt begins between the moment
  ``pause()`` returned and the moment ``resume()`` was called;
- history is append-only and gap-free: stored sequence numbers are ``0..n-1`` with
  ``n = history_len``, and every snapshot taken mid-round is a prefix of the final history.

The CI version is short (a few rounds per test). For the long version set
``TENUTO_CHAOS_ROUNDS`` (for example 200), or run ``python -m bench.chaos --rounds 200``.
"""
