-- Counts copied out of the state, for the metrics' totals of files pending
-- and overdue without reading every state.
ALTER TABLE recordings ADD COLUMN file_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recordings ADD COLUMN uploaded_count INTEGER NOT NULL DEFAULT 0;
CREATE INDEX recordings_by_end ON recordings (end_received_at) WHERE end_received_at IS NOT NULL;
