-- tenuto schema, version 1 (PostgreSQL). Runs with search_path set to tenuto's schema.
-- Times are epoch seconds (UTC) as double precision; JSON columns hold text.

CREATE TABLE instances (
    instance_id         text PRIMARY KEY,
    name                text NOT NULL,
    status              text NOT NULL,
    execution_id        text NOT NULL,
    generation          integer NOT NULL DEFAULT 0,
    input               text,
    output              text,
    failure             text,
    custom_status       text,
    created_at          double precision NOT NULL,
    updated_at          double precision NOT NULL,
    started_at          double precision,
    completed_at        double precision,
    start_at            double precision,
    parent_instance_id  text,
    parent_execution_id text,
    parent_task_id      integer,
    pause_reason        text,
    pause_by            text,
    pause_since         double precision,
    pause_resume_at     double precision,
    pause_source        text,
    history_len         integer NOT NULL DEFAULT 0,
    -- When the orchestration next has work: NULL while paused, finished, or idle.
    next_due            double precision,
    -- The worker running an orchestration step holds a lease until it commits.
    lease               text,
    lease_until         double precision,
    -- Steps claimed since the last one committed (a step that keeps crashing fails).
    claims              integer NOT NULL DEFAULT 0
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
    instance_id text NOT NULL,
    seq         integer NOT NULL,
    type        text NOT NULL,
    ts          double precision NOT NULL,
    data        text NOT NULL,
    PRIMARY KEY (instance_id, seq)
);

-- Messages for orchestrations: activity results, timers, events.
CREATE TABLE inbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id  text NOT NULL,
    execution_id text,
    type         text NOT NULL,
    ts           double precision NOT NULL,
    data         text NOT NULL,
    visible_at   double precision NOT NULL
);
CREATE INDEX inbox_instance ON inbox (instance_id, id);

-- Activity executions. visible_at is when the next attempt may start, or, while
-- leased, when the lease expires; held is set while the instance is paused.
CREATE TABLE activities (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id  text NOT NULL,
    execution_id text NOT NULL,
    task_id      integer NOT NULL,
    name         text NOT NULL,
    input        text,
    retry        text,
    attempt      integer NOT NULL DEFAULT 1,
    held         smallint NOT NULL DEFAULT 0,
    visible_at   double precision NOT NULL,
    lease        text,
    created_at   double precision NOT NULL
);
CREATE INDEX activities_ready ON activities (visible_at, id) WHERE held = 0;
CREATE INDEX activities_instance ON activities (instance_id);
CREATE INDEX activities_lease ON activities (lease) WHERE lease IS NOT NULL;

-- Orchestrator and activity names served by workers, for validating client calls.
CREATE TABLE names (
    kind    text NOT NULL,
    name    text NOT NULL,
    seen_at double precision NOT NULL,
    PRIMARY KEY (kind, name)
);
