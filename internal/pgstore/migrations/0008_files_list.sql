-- GET /v1/files and the dashboard's files page list the files not
-- uploaded yet newest recording first: this index holds only the
-- recordings with such files (a few among a million), in page order.
CREATE INDEX recordings_not_uploaded_by_seq ON recordings (first_seq)
    WHERE upload_state NOT IN ('none', 'complete');
