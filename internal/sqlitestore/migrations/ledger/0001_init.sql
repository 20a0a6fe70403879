-- The ledger file: projections derived from the log file's events through
-- ledger.Apply, just behind the acknowledged commits (projection.seq says how
-- far). Its own file has its own write lock, so the projector writes beside
-- the log's writer instead of taking turns with it; `recledger replay`
-- rebuilds it. state is the JSON of ledger.State; the columns beside it are
-- copies for filtering.
CREATE TABLE projection (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL                        -- every event up to here is applied
);
INSERT INTO projection (id, seq) VALUES (1, 0);

CREATE TABLE recordings (
    id              INTEGER PRIMARY KEY,
    record_id       TEXT    NOT NULL UNIQUE,
    first_seq       INTEGER NOT NULL UNIQUE,    -- its first event in the log: the page order
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
);

-- Which recording holds a file: written once, when the file first appears
-- (its state lives in the recording's).
CREATE TABLE files (
    file_name     TEXT    NOT NULL,
    record_id     TEXT    NOT NULL,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (file_name, record_id)
) WITHOUT ROWID;
