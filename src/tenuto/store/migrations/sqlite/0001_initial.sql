-- tenuto schema, version 1 (SQLite). Times are epoch seconds (UTC); JSON columns hold text.

CREATE TABLE instances (
    instance_id         TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    status              TEXT NOT NULL,
    execution_id        TEXT NOT NULL,
    generation          INTEGER NOT NULL DEFAULT 0,
    input               TEXT,
    output              TEXT,
    failure             TEXT,
    custom_status       TEXT,
    created_at          REAL NOT NULL,
    updated_at          REAL NOT NULL,
    started_at          REAL,
    completed_at        REAL,
    start_at            REAL,
    parent_instance_id  TEXT,
    parent_execution_id TEXT,
    parent_task_id      INTEGER,
    pause_reason        TEXT,
    pause_by            TEXT,
    pause_since         REAL,
    pause_resume_at     REAL,
    pause_source        TEXT,
    history_len         INTEGER NOT NULL DEFAULT 0,
    -- When the orchestration next has work: NULL while paused, finished, or idle.
    next_due            REAL,
    -- The worker running an orchestration step holds a lease until it commits.
    lease               TEXT,
    lease_until         REAL,
    -- Steps claimed since the last one committed (a step that keeps crashing fails).
    claims              INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_next_due ON instances (next_due) WHERE next_due IS NOT NULL;
CREATE INDEX instances_created ON instances (created_at, instance_id);
CREATE INDEX instances_status_created ON instances (status, created_at, instance_id);
CREATE INDEX instances_name_created ON instances (name, created_at, instance_id);
CREATE INDEX instances_parent ON instances (parent_instance_id)
    WHERE parent_instance_id IS NOT NULL;
CREATE INDEX instances_resume_at ON instances (pause_resume_at)
    WHERE pause_resume_at IS NOT NULL;

-- Append-only event history of each instance's current execution.
CREATE TABLE history (
    instance_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    type        TEXT NOT NULL,
    ts          REAL NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;

-- Messages for orchestrations: activity results, timers, events.
CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    execution_id TEXT,
    type         TEXT NOT NULL,
    ts           REAL NOT NULL,
    data         TEXT NOT NULL,
    visible_at   REAL NOT NULL
);
CREATE INDEX inbox_instance ON inbox (instance_id, id);

-- Activity executions. visible_at is when the next attempt may start, or, while
-- leased, when the lease expires; held is set while the instance is paused.
CREATE TABLE activities (
    id           INTEGER PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id      INTEGER NOT NULL,
    name         TEXT NOT NULL,
    input        TEXT,
    retry        TEXT,
    attempt      INTEGER NOT NULL DEFAULT 1,
    held         INTEGER NOT NULL DEFAULT 0,
    visible_at   REAL NOT NULL,
    lease        TEXT,
    created_at   REAL NOT NULL
);
CREATE INDEX activities_ready ON activities (visible_at, id) WHERE held = 0;
CREATE INDEX activities_instance ON activities (instance_id);
CREATE INDEX activities_lease ON activities (lease) WHERE lease IS NOT NULL;

-- Orchestrator and activity names served by workers, for validating client calls.
CREATE TABLE names (
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
