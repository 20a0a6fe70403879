-- The query API's uploadState filter (overdue is worked out when read).
CREATE INDEX recordings_by_upload ON recordings (upload_state, first_seq);
