-- Durable entities: one row per entity ('@name@key'), with its state (JSON text, NULL:
-- none), the orchestration holding its lock, its pause, and the lease of the worker
-- running a batch of its operations.
CREATE TABLE entities (
    entity_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    key           TEXT NOT NULL,
    state         TEXT,
    locked_by     TEXT,
    last_modified REAL NOT NULL,
    pause_reason  TEXT,
    pause_by      TEXT,
    pause_since   REAL,
    pause_resume_at REAL,
    lease         TEXT,
    lease_until   REAL
);
CREATE INDEX entities_name_key ON entities (name, key);
CREATE INDEX entities_locked_by ON entities (locked_by) WHERE locked_by IS NOT NULL;
CREATE INDEX entities_resume_at ON entities (pause_resume_at)
    WHERE pause_resume_at IS NOT NULL;
-- Operations waiting for an entity, applied in id order (kind: call, signal, lock,
-- unlock); caller_* name the orchestration and task a response goes to.
CREATE TABLE entity_ops (
    id               INTEGER PRIMARY KEY,
    entity_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    operation        TEXT,
    input            TEXT,
    caller_id        TEXT,
    caller_execution TEXT,
    caller_task      INTEGER,
    lock_set         TEXT,
    visible_at       REAL NOT NULL,
    created_at       REAL NOT NULL
);
CREATE INDEX entity_ops_entity ON entity_ops (entity_id, id);
CREATE INDEX entity_ops_visible ON entity_ops (visible_at);
