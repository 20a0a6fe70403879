-- The log becomes append-only bytes (issue 12): the acknowledged commit
-- writes one row per callback and nothing else. Duplicate marking, the
-- per-recording index and the activity counts of callbacks move to the
-- projection engine (the ledger file); the fields the old table copied out
-- of the body are read from the body. sig is what the replay memory needs
-- to survive a restart (8 bytes of the signature's identity hash, then 8
-- of the body's SHA-256; NULL when unsigned): at start the memory is
-- rebuilt from the rows still inside the signature tolerance window, so the
-- replay table, and its pages in every commit, are gone.
CREATE TABLE log (
    seq         INTEGER PRIMARY KEY,            -- the feed's seq: gapless, commit order
    received_at INTEGER NOT NULL,               -- server clock, Unix ms
    body        BLOB    NOT NULL,               -- exactly as received
    sig         BLOB
);
INSERT INTO log (seq, received_at, body) SELECT seq, received_at, body FROM events ORDER BY seq;
DROP TABLE events;
-- Signatures remembered before the upgrade are forgotten: a replay of one
-- of the last few minutes' requests is no longer recognised as such.
DROP TABLE replay;
