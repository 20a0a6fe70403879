-- Outbound delivery (issue 13). The projection engine announces events as
-- it folds (internal/delivery) and commits them here, with the projection
-- that caused them: the outbox. Destinations read it from their cursors.

-- When a recording may next announce an event by time alone (completed
-- after it settled, upload_overdue): the engine's periodic pass looks up
-- the recordings due. NULL for most.
ALTER TABLE recordings ADD COLUMN due_at BIGINT;
CREATE INDEX recordings_due ON recordings (due_at) WHERE due_at IS NOT NULL;

-- One projector writes at a time (the engine fences its commits), so seqs
-- become visible in order; a rolled-back step leaves a gap, which readers skip.
CREATE TABLE outbound (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    record_id    TEXT    NOT NULL,
    app_key      TEXT    NOT NULL,
    room_id      TEXT    NOT NULL,
    at           BIGINT  NOT NULL,              -- derived at, Unix ms
    committed_at BIGINT  NOT NULL,              -- server clock, Unix ms
    payload      BYTEA   NOT NULL               -- the event as sent (JSON)
);
CREATE INDEX outbound_by_commit ON outbound (committed_at);

CREATE TABLE destinations (
    id              TEXT    PRIMARY KEY,
    spec            TEXT    NOT NULL,           -- what users set, JSON (delivery.Destination)
    enabled         BOOLEAN NOT NULL,
    disabled_reason TEXT    NOT NULL DEFAULT '',
    failing_since   BIGINT  NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL,
    cursor          BIGINT  NOT NULL,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     BIGINT  NOT NULL DEFAULT 0
);

-- Events a destination holds back per recording: the first failed and
-- waits for its retry, the others wait behind it.
CREATE TABLE delivery_held (
    destination TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    record_id   TEXT    NOT NULL,
    attempts    BIGINT  NOT NULL,
    next_at     BIGINT  NOT NULL,
    last_status BIGINT  NOT NULL,
    last_error  TEXT    NOT NULL,
    PRIMARY KEY (destination, seq)
);

CREATE TABLE dead_letters (
    destination TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    event_id    TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    attempts    BIGINT  NOT NULL,
    last_status BIGINT  NOT NULL,
    last_error  TEXT    NOT NULL,
    dead_at     BIGINT  NOT NULL,
    PRIMARY KEY (destination, seq)
);

-- The newest attempts per destination, for the dashboard and the API.
CREATE TABLE delivery_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    destination TEXT    NOT NULL,
    at          BIGINT  NOT NULL,
    seq         BIGINT  NOT NULL,
    event_id    TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    status      BIGINT  NOT NULL,
    latency_ms  BIGINT  NOT NULL,
    error       TEXT    NOT NULL
);
CREATE INDEX delivery_attempts_by_destination ON delivery_attempts (destination, id);
