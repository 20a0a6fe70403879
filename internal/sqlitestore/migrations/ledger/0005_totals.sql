-- The ledger's totals by status and upload state (without overdue), kept
-- by the projector in the transaction that changes the recordings, so the
-- overview and /metrics read a handful of rows instead of every recording
-- (over 3 s at a million recordings).
CREATE TABLE totals (
    status        TEXT    NOT NULL,
    upload_state  TEXT    NOT NULL,
    recordings    INTEGER NOT NULL,
    pending_files INTEGER NOT NULL,             -- known files not uploaded
    PRIMARY KEY (status, upload_state)
) WITHOUT ROWID;
INSERT INTO totals (status, upload_state, recordings, pending_files)
    SELECT status, upload_state, COUNT(*), COALESCE(SUM(file_count - uploaded_count), 0) FROM recordings GROUP BY status, upload_state;

-- Overdue depends on the clock, so it is counted when read: over the
-- recordings not fully uploaded only, from this index alone.
CREATE INDEX recordings_not_uploaded ON recordings (end_received_at, upload_state, file_count, uploaded_count)
    WHERE upload_state NOT IN ('none', 'complete');
DROP INDEX recordings_by_end;
