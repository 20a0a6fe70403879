-- What arrived per minute of the server's clock, for the dashboard's chart:
-- each batch's transaction adds its counts with one upsert, after its other
-- writes (the row is shared by every instance; its lock is held briefly).
-- Pruned after ledger.ActivityKept.
CREATE TABLE activity (
    minute     BIGINT PRIMARY KEY,              -- Unix ms, a multiple of 60,000
    callbacks  BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    rejected   BIGINT NOT NULL DEFAULT 0
);

-- The query API's uploadState filter (overdue is worked out when read).
CREATE INDEX recordings_by_upload ON recordings (upload_state, first_seq);
