-- One log, one engine (issue 12). The acknowledged commit only appends a
-- callback's bytes to the log; the projection engine (internal/engine)
-- tails the log in commit order and writes the feed, the recordings, the
-- files, the totals and the activity counts. Instances append
-- concurrently: no cluster-wide lock on the write path.
--
-- The log's order is (tx, id): the id of the transaction that wrote the
-- row, then the row's id. A reader takes only rows of transactions older
-- than every transaction still running (pg_snapshot_xmin), so no row can
-- later commit behind a position it read; docs/architecture.md explains.
CREATE TABLE log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx          xid8   NOT NULL DEFAULT pg_current_xact_id(),
    received_at BIGINT NOT NULL,              -- server clock, Unix ms
    body        BYTEA  NOT NULL               -- the callback exactly as received
);
CREATE INDEX log_order ON log (tx, id);

-- The old log's rows, in their feed order: tx 0 is below every real
-- transaction id, so (tx, id) = (0, old seq) keeps the old order ahead of
-- every new row.
INSERT INTO log (id, tx, received_at, body) OVERRIDING SYSTEM VALUE
    SELECT seq, '0'::xid8, received_at, body FROM events ORDER BY seq;
SELECT setval(pg_get_serial_sequence('log', 'id'), GREATEST((SELECT MAX(id) FROM log), 1), (SELECT MAX(id) FROM log) IS NOT NULL);
DROP TABLE events;
DROP TABLE feed;

-- The feed readers follow (GET /v1/events, the SSE stream, delivery):
-- gapless seqs in commit order, given by the one projector as it projects.
CREATE TABLE feed (
    seq       BIGINT  PRIMARY KEY,
    log_id    BIGINT  NOT NULL,
    duplicate BOOLEAN NOT NULL
);

-- How far the projections have come, written in each projection's
-- transaction: the last feed seq and the last log row applied.
CREATE TABLE projection (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    seq    BIGINT  NOT NULL,
    tx     xid8    NOT NULL,
    log_id BIGINT  NOT NULL
);
INSERT INTO projection (id, seq, tx, log_id) VALUES (1, 0, '0', 0);

-- The projections start over: the engine rebuilds every record (its event
-- index and duplicate marks included) from the log at the next start.
-- Activity keeps its rejected counts; the callbacks are counted again as
-- the engine projects them.
DELETE FROM recordings;

-- Which recordings hold a file of a name, for GET /v1/files/{name}: keyed
-- by a 64-bit hash of the name (engine.NameHash) instead of the name,
-- which is in the record (a lookup checks it there): about half the bytes.
DROP TABLE files;
CREATE TABLE files (
    name_hash BIGINT NOT NULL,
    record_id TEXT   NOT NULL,
    PRIMARY KEY (name_hash, record_id)
);
DELETE FROM totals;
UPDATE activity SET callbacks = 0, duplicates = 0;
DELETE FROM activity WHERE rejected = 0;
COMMENT ON COLUMN recordings.state IS 'engine.EncodeRecord: a version byte, then the record';
