-- Outbound delivery (issue 13). The projection engine announces events as
-- it folds (internal/delivery) and commits them here, with the projection
-- that caused them: the outbox. Destinations read it from their cursors.

-- When a recording may next announce an event by time alone (completed
-- after it settled, upload_overdue): the engine's periodic pass looks up
-- the recordings due. NULL for most.
ALTER TABLE recordings ADD COLUMN due_at INTEGER;
CREATE INDEX recordings_due ON recordings (due_at) WHERE due_at IS NOT NULL;

-- AUTOINCREMENT: a seq is never given again after the newest events were
-- pruned, or a cursor past them would skip new ones.
CREATE TABLE outbound (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    record_id    TEXT    NOT NULL,
    app_key      TEXT    NOT NULL,
    room_id      TEXT    NOT NULL,
    at           INTEGER NOT NULL,              -- derived at, Unix ms
    committed_at INTEGER NOT NULL,              -- server clock, Unix ms
    payload      BLOB    NOT NULL               -- the event as sent (JSON)
);
CREATE INDEX outbound_by_commit ON outbound (committed_at);

CREATE TABLE destinations (
    id              TEXT    PRIMARY KEY,
    spec            TEXT    NOT NULL,           -- what users set, JSON (delivery.Destination)
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT    NOT NULL DEFAULT '',
    failing_since   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    cursor          INTEGER NOT NULL,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     INTEGER NOT NULL DEFAULT 0
);

-- Events a destination holds back per recording: the first failed and
-- waits for its retry, the others wait behind it.
CREATE TABLE delivery_held (
    destination TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    record_id   TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    next_at     INTEGER NOT NULL,
    last_status INTEGER NOT NULL,
    last_error  TEXT    NOT NULL,
    PRIMARY KEY (destination, seq)
) WITHOUT ROWID;

CREATE TABLE dead_letters (
    destination TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    event_id    TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    last_status INTEGER NOT NULL,
    last_error  TEXT    NOT NULL,
    dead_at     INTEGER NOT NULL,
    PRIMARY KEY (destination, seq)
) WITHOUT ROWID;

-- The newest attempts per destination, for the dashboard and the API.
CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    destination TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    event_id    TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    latency_ms  INTEGER NOT NULL,
    error       TEXT    NOT NULL
);
CREATE INDEX delivery_attempts_by_destination ON delivery_attempts (destination, id);
