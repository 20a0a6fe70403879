-- The projection engine (internal/engine) keeps, beside each recording's
-- state, its event index (every logged callback of it, duplicates marked),
-- in a versioned record encoding. Records written before it lack the index,
-- so the projections are emptied and the engine derives them again from
-- the log at the next start: every row is rewritten in the new encoding.
DELETE FROM recordings;
DELETE FROM files;
DELETE FROM totals;
UPDATE projection SET seq = 0;

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
