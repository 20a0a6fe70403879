-- The raw callback log. seq, the feed's order, is taken from the feed row
-- under a cluster-wide lock held until commit, so it follows commit order and
-- has no gaps: a reader following seq never misses a late commit.
CREATE TABLE events (
    seq           BIGINT PRIMARY KEY,
    received_at   BIGINT   NOT NULL,
    app_key       TEXT     NOT NULL CHECK (length(app_key) <= 256),
    record_id     TEXT     NOT NULL CHECK (length(record_id) <= 256),
    type          INTEGER  NOT NULL,
    timestamp     BIGINT   NOT NULL,
    file_name     TEXT     NOT NULL CHECK (length(file_name) <= 1024),
    code          INTEGER  NOT NULL,
    error_message TEXT     NOT NULL,
    duplicate     BOOLEAN  NOT NULL DEFAULT false,
    dedupe_key    BYTEA    NOT NULL CHECK (length(dedupe_key) = 32),
    body          BYTEA    NOT NULL
);
CREATE UNIQUE INDEX events_original ON events (dedupe_key) WHERE NOT duplicate;
CREATE INDEX events_by_record ON events (record_id, seq);

CREATE TABLE feed (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT  NOT NULL
);
INSERT INTO feed (id, last) VALUES (1, 0);

CREATE TABLE recordings (
    record_id       TEXT PRIMARY KEY CHECK (length(record_id) <= 256),
    first_seq       BIGINT,                      -- the seq of its first event: the page order
    app_key         TEXT    NOT NULL,
    room_id         TEXT    NOT NULL,
    session_id      TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    mode            INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('recording', 'ended', 'complete', 'failed')),
    upload_state    TEXT    NOT NULL,
    started_at      BIGINT,
    end_received_at BIGINT,
    first_seen_at   BIGINT  NOT NULL,
    last_event_at   BIGINT  NOT NULL,
    file_count      INTEGER NOT NULL DEFAULT 0,
    uploaded_count  INTEGER NOT NULL DEFAULT 0,
    state           BYTEA   NOT NULL            -- ledger.State as JSON; PostgreSQL need not parse it
);
CREATE UNIQUE INDEX recordings_by_first_seq ON recordings (first_seq);
CREATE INDEX recordings_by_room    ON recordings (room_id, first_seq);
CREATE INDEX recordings_by_session ON recordings (session_id, first_seq);
CREATE INDEX recordings_by_user    ON recordings (user_id, first_seq);
CREATE INDEX recordings_by_app     ON recordings (app_key, first_seq);
CREATE INDEX recordings_by_status  ON recordings (status, first_seq);
CREATE INDEX recordings_by_end     ON recordings (end_received_at) WHERE end_received_at IS NOT NULL;

CREATE TABLE files (
    file_name     TEXT   NOT NULL CHECK (length(file_name) <= 1024),
    record_id     TEXT   NOT NULL,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (file_name, record_id)
);

-- The verifier's replay memory, shared by every instance.
CREATE TABLE replay (
    app_key     TEXT   NOT NULL,
    nonce       TEXT   NOT NULL,
    timestamp   TEXT   NOT NULL,
    body_digest BYTEA  NOT NULL,
    until       BIGINT NOT NULL,
    PRIMARY KEY (app_key, nonce, timestamp)
);
CREATE INDEX replay_until ON replay (until);

CREATE TABLE quarantine (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT  NOT NULL,
    status    INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    message   TEXT    NOT NULL,
    remote    TEXT    NOT NULL,
    method    TEXT    NOT NULL,
    path      TEXT    NOT NULL,
    header    JSONB   NOT NULL,
    body      BYTEA   NOT NULL CHECK (length(body) <= 65536),
    body_size BIGINT  NOT NULL
);
