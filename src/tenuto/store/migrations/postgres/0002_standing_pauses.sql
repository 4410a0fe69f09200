-- Standing pauses: a whole orchestrator type, or one activity type everywhere.
CREATE TABLE standing_pauses (
    kind      text NOT NULL,          -- 'orchestrator' or 'activity'
    name      text NOT NULL,
    reason    text,
    by        text,
    since     double precision NOT NULL,
    resume_at double precision,
    PRIMARY KEY (kind, name)
);
