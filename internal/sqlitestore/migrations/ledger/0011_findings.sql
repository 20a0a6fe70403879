-- Completeness findings (issue 16). findings holds the recording's
-- findings that do not depend on the clock (ledger.StateFindingMask: 1
-- segment_gap, 2 missing_files), written by the projection engine as it
-- saves a record; the clock's findings (not_ended, stalled) are read from
-- the recordings still recording. Recordings stored before this migration
-- read 0 until `recledger replay` derives them again (it rebuilds every
-- record from the log), so run it once after the upgrade to list the
-- older recordings' gaps and missing files.
--
-- The partial index holds the recordings a finding filter can select,
-- in page order; queries repeat its condition word for word so that the
-- planners see they may use it.
ALTER TABLE recordings ADD COLUMN findings INTEGER NOT NULL DEFAULT 0;
CREATE INDEX recordings_attention_by_seq ON recordings (first_seq)
    WHERE findings <> 0 OR status = 'recording';
