-- Finished instances by the time they finished: what retention purges, oldest first.
CREATE INDEX instances_finished ON instances (status, completed_at)
    WHERE completed_at IS NOT NULL;
-- Settings shared by every worker and client of the store (the retention policy), one
-- JSON text per key.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- W3C trace context (a traceparent) of the span an instance, or an activity, was
-- started under; NULL when tracing was off.
ALTER TABLE instances ADD COLUMN trace_parent TEXT;
ALTER TABLE activities ADD COLUMN trace_parent TEXT;
-- The next due time of each orchestrator's instances, read by idle workers (from the
-- head of the index: cheap however many instances are scheduled far ahead).
CREATE INDEX instances_name_due ON instances (name, next_due) WHERE next_due IS NOT NULL;
