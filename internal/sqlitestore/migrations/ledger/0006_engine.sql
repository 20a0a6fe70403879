-- The projection engine (internal/engine) keeps, beside each recording's
-- state, its event index (every logged callback of it, duplicates marked),
-- in a versioned record encoding. Records written before it lack the index,
-- so the projections are emptied and the engine derives them again from
-- the log at the next start: every row is rewritten in the new encoding.
DELETE FROM recordings;
DELETE FROM totals;
UPDATE projection SET seq = 0;

-- Which recordings hold a file of a name, for GET /v1/files/{name}: keyed
-- by a 64-bit hash of the name and the recording's rowid instead of both
-- strings (the name is in the record; a lookup checks it there), which
-- took the table from about 300 to about 70 bytes per recording of four
-- files.
DROP TABLE files;
CREATE TABLE files (
    name_hash INTEGER NOT NULL,                 -- engine.NameHash(file name)
    recording INTEGER NOT NULL,                 -- recordings.id
    PRIMARY KEY (name_hash, recording)
) WITHOUT ROWID;

-- The feed's duplicate marks (the log itself is never written after the
-- acknowledged commit): rare, so only the duplicates are listed.
CREATE TABLE duplicates (seq INTEGER PRIMARY KEY);

-- Callbacks and duplicates per minute of arrival, counted by the engine as
-- it projects (the log file's activity table keeps the rejected requests,
-- which never reach the log).
CREATE TABLE activity (
    minute     INTEGER PRIMARY KEY,             -- Unix ms, a multiple of 60,000
    callbacks  INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0
);
