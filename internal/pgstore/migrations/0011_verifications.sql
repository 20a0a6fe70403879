-- Storage verification (issue 16): what recledger found at each uploaded
-- file's URL, and the verifier's work queue. An observation of the
-- customer's storage, not derived from the log: a rebuild leaves it alone;
-- removing a recording (retention, erasure) deletes its rows. The URL is
-- never kept (presigned URLs carry credentials), only a hash of it.
CREATE TABLE verifications (
    record_id    TEXT    NOT NULL,
    file_name    TEXT    NOT NULL,
    app_key      TEXT    NOT NULL,
    url_hash     TEXT    NOT NULL,              -- ledger.URLHash of the URL checked
    state        TEXT    NOT NULL,              -- ledger.VerificationState
    http_status  BIGINT,                        -- the storage's last answer; NULL when none came
    size         BIGINT,
    content_type TEXT    NOT NULL DEFAULT '',
    etag         TEXT    NOT NULL DEFAULT '',
    checked_at   BIGINT,                        -- server clock, Unix ms; NULL until a check ended
    attempts     BIGINT  NOT NULL DEFAULT 0,
    error        TEXT    NOT NULL DEFAULT '',
    next_at      BIGINT  NOT NULL DEFAULT 0,    -- when due, Unix ms; 0 when nothing is due
    announced    BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (record_id, file_name)
);
CREATE INDEX verifications_due ON verifications (next_at) WHERE next_at > 0;
CREATE INDEX verifications_by_state ON verifications (state, record_id);
CREATE INDEX verifications_unannounced ON verifications (checked_at) WHERE NOT announced AND state <> 'pending';

-- The feed seq up to which the verifier queued the uploads it saw.
CREATE TABLE verification_cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL
);
INSERT INTO verification_cursor (id, seq) VALUES (1, 0);
