-- Retention and erasure (issue 15). Retention picks recordings by the
-- arrival of their last callback; erasures leave an audit row that names
-- no one (the app key, if the erasure was limited to one, and counts).
CREATE INDEX recordings_by_last_event ON recordings (last_event_at);

CREATE TABLE erasures (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,                -- server clock, Unix ms
    app_key    TEXT    NOT NULL,                -- '' for every app
    recordings INTEGER NOT NULL,
    log_rows   INTEGER NOT NULL,
    files      INTEGER NOT NULL,
    outbound   INTEGER NOT NULL,
    quarantine INTEGER NOT NULL
);
