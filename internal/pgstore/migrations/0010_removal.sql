-- Retention and erasure (issue 15). removals counts the removals
-- (ledger.Remover.Forget), and every projection's Save is fenced on it: a
-- projector that cached a record removed meanwhile fails its Save
-- (engine.ErrRemoved), drops its cache and steps again. Retention picks
-- recordings by the arrival of their last callback. Erasures leave an
-- audit row that names no one.
ALTER TABLE projection ADD COLUMN removals BIGINT NOT NULL DEFAULT 0;

CREATE INDEX recordings_by_last_event ON recordings (last_event_at);

CREATE TABLE erasures (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,                 -- server clock, Unix ms
    app_key    TEXT   NOT NULL,                 -- '' for every app
    recordings BIGINT NOT NULL,
    log_rows   BIGINT NOT NULL,
    files      BIGINT NOT NULL,
    outbound   BIGINT NOT NULL,
    quarantine BIGINT NOT NULL
);
