-- Placeholder: another branch of issue 11 adds the log's migration 0003.
-- This no-op keeps the versions gapless on the sessions branch; the merge
-- replaces it with that branch's file.
SELECT 1;
