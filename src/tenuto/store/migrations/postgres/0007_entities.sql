-- Durable entities: one row per entity ('@name@key'), with its state (JSON text, NULL:
-- none), the orchestration holding its lock, its pause, and the lease of the worker
-- running a batch of its operations.
CREATE TABLE entities (
    entity_id     text PRIMARY KEY,
    name          text NOT NULL,
    key           text NOT NULL,
    state         text,
    locked_by     text,
    last_modified double precision NOT NULL,
    pause_reason  text,
    pause_by      text,
    pause_since   double precision,
    pause_resume_at double precision,
    lease         text,
    lease_until   double precision
);
CREATE INDEX entities_name_key ON entities (name, key);
CREATE INDEX entities_locked_by ON entities (locked_by) WHERE locked_by IS NOT NULL;
CREATE INDEX entities_resume_at ON entities (pause_resume_at)
    WHERE pause_resume_at IS NOT NULL;
-- Operations waiting for an entity, applied in id order (kind: call, signal, lock,
-- unlock); caller_* name the orchestration and task a response goes to.
CREATE TABLE entity_ops (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity_id        text NOT NULL,
    kind             text NOT NULL,
    operation        text,
    input            text,
    caller_id        text,
    caller_execution text,
    caller_task      integer,
    lock_set         text,
    visible_at       double precision NOT NULL,
    created_at       double precision NOT NULL
);
CREATE INDEX entity_ops_entity ON entity_ops (entity_id, id);
CREATE INDEX entity_ops_visible ON entity_ops (visible_at);
