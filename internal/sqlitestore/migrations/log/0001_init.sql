-- The log file: the raw callback log (every callback answered 200, in
-- arrival order), the verifier's replay memory and the quarantine.
-- seq is the rowid, so it is gapless (a rolled-back batch frees its numbers).
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY,
    received_at   INTEGER NOT NULL,             -- server clock, Unix ms
    app_key       TEXT    NOT NULL,
    record_id     TEXT    NOT NULL,
    type          INTEGER NOT NULL,
    timestamp     INTEGER NOT NULL,             -- RC's clock, Unix ms
    file_name     TEXT    NOT NULL,
    code          INTEGER NOT NULL,
    error_message TEXT    NOT NULL,
    duplicate     INTEGER NOT NULL DEFAULT 0,
    dedupe_key    BLOB    NOT NULL,             -- SHA-256 of the callback's rc.Key
    body          BLOB    NOT NULL              -- exactly as received
);
-- A recording's events, and the identity check: the writer looks a key up
-- here before it appends (one original per identity; redeliveries are kept,
-- marked duplicate). Keyed by record_id first, a recording's callbacks share
-- leaf pages, which keeps the acknowledged commit small.
CREATE INDEX events_by_record ON events (record_id, dedupe_key);

-- The verifier's replay memory: signatures accepted, until they expire.
-- Written in arrival order and read back only at start (the memory answers
-- from RAM), so it has no key: an index on (app_key, nonce, timestamp) would
-- cost a random page write per callback on the acknowledged path. The index
-- on until grows at its right edge and lets pruning skip the live rows.
CREATE TABLE replay (
    app_key     TEXT    NOT NULL,
    nonce       TEXT    NOT NULL,
    timestamp   TEXT    NOT NULL,
    body_digest BLOB    NOT NULL,
    until       INTEGER NOT NULL                -- Unix ms
);
CREATE INDEX replay_until ON replay (until);

-- Refused requests, capped by count and bytes.
CREATE TABLE quarantine (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    status    INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    message   TEXT    NOT NULL,
    remote    TEXT    NOT NULL,
    method    TEXT    NOT NULL,
    path      TEXT    NOT NULL,
    header    TEXT    NOT NULL,                 -- JSON
    body      BLOB    NOT NULL,
    body_size INTEGER NOT NULL
);
