-- Live workers, each written by itself at its lease cadence (a heartbeat): who is
-- working, where, serving what. A row whose last_seen is older than its lease is a
-- worker gone; readers skip it, and starting workers remove long-gone ones.
CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    kind          TEXT NOT NULL,          -- 'tenuto' or 'sdk' (a Durable Task SDK worker)
    started_at    REAL NOT NULL,
    last_seen     REAL NOT NULL,
    lease_seconds REAL NOT NULL,
    orchestrators TEXT,                   -- JSON list of names; NULL: any
    activities    TEXT,                   -- JSON list of names; NULL: any
    running       INTEGER NOT NULL DEFAULT 0
);
-- When the attempt that holds an activity's lease started (pending work shows it).
ALTER TABLE activities ADD COLUMN started_at REAL;
-- The events an orchestration waits for after its last step: a JSON list of
-- {"name", "timeout_at"} (NULL: none, or not known for this orchestration).
ALTER TABLE instances ADD COLUMN awaiting TEXT;
