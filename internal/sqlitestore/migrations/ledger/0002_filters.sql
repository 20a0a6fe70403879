-- Indexes for the query API's filters, each ending in the page order
-- (first_seq, newest first). They are written by the projector, off the acknowledged path.
CREATE INDEX recordings_by_room    ON recordings (room_id, first_seq);
CREATE INDEX recordings_by_session ON recordings (session_id, first_seq);
CREATE INDEX recordings_by_user    ON recordings (user_id, first_seq);
CREATE INDEX recordings_by_app     ON recordings (app_key, first_seq);
CREATE INDEX recordings_by_status  ON recordings (status, first_seq);
