-- The raw callback log: every callback answered 200, in arrival order.
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
-- One original per callback identity; redeliveries are kept, marked duplicate.
CREATE UNIQUE INDEX events_original ON events (dedupe_key) WHERE duplicate = 0;
CREATE INDEX events_by_record ON events (record_id, seq);

-- Projections, derived from events through ledger.Apply; `recledger replay`
-- rebuilds them. state is the JSON of ledger.State; the columns beside it
-- are copies for filtering.
CREATE TABLE recordings (
    record_id       TEXT PRIMARY KEY,
    app_key         TEXT    NOT NULL,
    room_id         TEXT    NOT NULL,
    session_id      TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    mode            INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    upload_state    TEXT    NOT NULL,           -- without overdue, which depends on the clock
    started_at      INTEGER,
    end_received_at INTEGER,
    first_seen_at   INTEGER NOT NULL,
    last_event_at   INTEGER NOT NULL,
    state           BLOB    NOT NULL
) WITHOUT ROWID;

CREATE TABLE files (
    file_name     TEXT    NOT NULL,
    record_id     TEXT    NOT NULL,
    upload_status TEXT    NOT NULL,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (file_name, record_id)
) WITHOUT ROWID;

-- The verifier's replay memory: signatures accepted, until they expire.
CREATE TABLE replay (
    app_key     TEXT    NOT NULL,
    nonce       TEXT    NOT NULL,
    timestamp   TEXT    NOT NULL,
    body_digest BLOB    NOT NULL,
    until       INTEGER NOT NULL,               -- Unix ms
    PRIMARY KEY (app_key, nonce, timestamp)
) WITHOUT ROWID;

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
