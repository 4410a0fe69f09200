-- The tracking outbox: one row per tracking record (an instance started, paused, ...),
-- written in the transaction of the change it records. ``id`` is the order rows were
-- written in; ``seq`` the order the drainer emits them in (NULL: not yet sequenced).
CREATE TABLE outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq         BIGINT,
    ts          DOUBLE PRECISION NOT NULL,
    event       TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE UNIQUE INDEX outbox_seq ON outbox (seq) WHERE seq IS NOT NULL;
CREATE INDEX outbox_pending ON outbox (id) WHERE seq IS NULL;
-- The drainer's lease (one process per deployment emits), the last sequence number it
-- assigned and the last it emitted.
CREATE TABLE outbox_drain (
    name      TEXT PRIMARY KEY,
    holder    TEXT,
    lease_until DOUBLE PRECISION,
    sequenced BIGINT NOT NULL DEFAULT 0,
    emitted   BIGINT NOT NULL DEFAULT 0
);
INSERT INTO outbox_drain (name) VALUES ('tracking');
-- How many records of each event (and pause source) were emitted: counters every
-- process's /metrics reads.
CREATE TABLE outbox_counts (
    event  TEXT NOT NULL,
    source TEXT NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (event, source)
);
