-- Schedules: an orchestrator started at fire times (every N seconds, or a cron expression).
-- A paused schedule is a standing pause of kind 'schedule' (table standing_pauses).
CREATE TABLE schedules (
    schedule_id  text PRIMARY KEY,
    orchestrator text NOT NULL,
    input        text,              -- JSON text given to every run
    spec         text NOT NULL,     -- JSON: when it fires and what it does on overlap
    next_fire    double precision, -- the first fire time not handled yet (NULL: ended)
    last_run     text,              -- the id of the latest run started
    buffered     double precision, -- buffer_one: a fire time waiting for the latest run
    watch_run    text,              -- pause_on_failure: the run whose failure pauses it
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL
);
CREATE INDEX schedules_next_fire ON schedules (next_fire) WHERE next_fire IS NOT NULL;
-- Flow control: at most max_concurrent running (activities; for orchestrators the most
-- RUNNING instances) and at most per_second starts in any second, across every worker.
CREATE TABLE flow_limits (
    kind           text NOT NULL,   -- 'activity' or 'orchestrator'
    name           text NOT NULL,
    max_concurrent integer,
    per_second     double precision,
    reason         text,
    by             text,
    since          double precision NOT NULL,
    source         text NOT NULL,   -- 'client' (set by a call) or 'code' (an app default)
    PRIMARY KEY (kind, name)
);
-- Recent starts of rate-limited activities (a rolling window, pruned as it moves).
CREATE TABLE limit_starts (
    name text NOT NULL,
    at   double precision NOT NULL
);
CREATE INDEX limit_starts_name_at ON limit_starts (name, at);
-- start(..., priority=): the order in which a limited orchestrator's PENDING instances start.
ALTER TABLE instances ADD COLUMN priority integer NOT NULL DEFAULT 0;
