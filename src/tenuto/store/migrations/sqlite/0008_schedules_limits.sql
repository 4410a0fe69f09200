-- Schedules: an orchestrator started at fire times (every N seconds, or a cron expression).
-- A paused schedule is a standing pause of kind 'schedule' (table standing_pauses).
CREATE TABLE schedules (
    schedule_id  TEXT PRIMARY KEY,
    orchestrator TEXT NOT NULL,
    input        TEXT,              -- JSON text given to every run
    spec         TEXT NOT NULL,     -- JSON: when it fires and what it does on overlap
    next_fire    REAL,              -- the first fire time not handled yet (NULL: ended)
    last_run     TEXT,              -- the id of the latest run started
    buffered     REAL,              -- buffer_one: a fire time waiting for the latest run
    watch_run    TEXT,              -- pause_on_failure: the run whose failure pauses it
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE INDEX schedules_next_fire ON schedules (next_fire) WHERE next_fire IS NOT NULL;
-- Flow control: at most max_concurrent running (activities; for orchestrators the most
-- RUNNING instances) and at most per_second starts in any second, across every worker.
CREATE TABLE flow_limits (
    kind           TEXT NOT NULL,   -- 'activity' or 'orchestrator'
    name           TEXT NOT NULL,
    max_concurrent INTEGER,
    per_second     REAL,
    reason         TEXT,
    by             TEXT,
    since          REAL NOT NULL,
    source         TEXT NOT NULL,   -- 'client' (set by a call) or 'code' (an app default)
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
-- Recent starts of rate-limited activities (a rolling window, pruned as it moves).
CREATE TABLE limit_starts (
    name TEXT NOT NULL,
    at   REAL NOT NULL
);
CREATE INDEX limit_starts_name_at ON limit_starts (name, at);
-- start(..., priority=): the order in which a limited orchestrator's PENDING instances start.
ALTER TABLE instances ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
