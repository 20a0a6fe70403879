-- The ledger's totals by status and upload state (without overdue), kept
-- in each batch's transaction beside the recordings it changes, so the
-- overview and /metrics read a handful of rows instead of every recording.
-- Its rows are shared by every instance; batches update them last, in a
-- fixed order, while they hold the feed lock anyway.
CREATE TABLE totals (
    status        TEXT   NOT NULL,
    upload_state  TEXT   NOT NULL,
    recordings    BIGINT NOT NULL,
    pending_files BIGINT NOT NULL,              -- known files not uploaded
    PRIMARY KEY (status, upload_state)
);
INSERT INTO totals (status, upload_state, recordings, pending_files)
    SELECT status, upload_state, COUNT(*), COALESCE(SUM(file_count - uploaded_count), 0) FROM recordings
    WHERE first_seq IS NOT NULL GROUP BY status, upload_state;

-- Overdue depends on the clock, so it is counted when read: over the
-- recordings not fully uploaded only, from this index alone.
CREATE INDEX recordings_not_uploaded ON recordings (end_received_at, upload_state, file_count, uploaded_count)
    WHERE upload_state NOT IN ('none', 'complete');
DROP INDEX recordings_by_end;
