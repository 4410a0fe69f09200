-- Standing pauses: a whole orchestrator type, or one activity type everywhere.
CREATE TABLE standing_pauses (
    kind      TEXT NOT NULL,          -- 'orchestrator' or 'activity'
    name      TEXT NOT NULL,
    reason    TEXT,
    by        TEXT,
    since     REAL NOT NULL,
    resume_at REAL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
