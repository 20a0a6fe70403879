-- What arrived per minute of the server's clock, for the dashboard's chart:
-- one row per minute, added to by each group commit (one upsert per batch,
-- not per callback), pruned after ledger.ActivityKept. It lives beside the
-- log it counts, in the same transactions, so it never disagrees with it.
CREATE TABLE activity (
    minute     INTEGER PRIMARY KEY,             -- Unix ms, a multiple of 60,000
    callbacks  INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    rejected   INTEGER NOT NULL DEFAULT 0
);
