-- Live workers, each written by itself at its lease cadence (a heartbeat): who is
-- working, where, serving what. A row whose last_seen is older than its lease is a
-- worker gone; readers skip it, and starting workers remove long-gone ones.
CREATE TABLE workers (
    id            text PRIMARY KEY,
    host          text NOT NULL,
    pid           integer NOT NULL,
    kind          text NOT NULL,          -- 'tenuto' or 'sdk' (a Durable Task SDK worker)
    started_at    double precision NOT NULL,
    last_seen     double precision NOT NULL,
    lease_seconds double precision NOT NULL,
    orchestrators text,                   -- JSON list of names; NULL: any
    activities    text,                   -- JSON list of names; NULL: any
    running       integer NOT NULL DEFAULT 0
);
-- When the attempt that holds an activity's lease started (pending work shows it).
ALTER TABLE activities ADD COLUMN started_at double precision;
-- The events an orchestration waits for after its last step: a JSON list of
-- {"name", "timeout_at"} (NULL: none, or not known for this orchestration).
ALTER TABLE instances ADD COLUMN awaiting text;
