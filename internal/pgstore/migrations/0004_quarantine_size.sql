-- The quarantine's byte cap counts everything a row stores (body, header
-- JSON, message, remote, path, reason, method and a fixed overhead: see
-- ledger.PrepareRejection), not the body alone: forged requests with large
-- headers grew the store far past the cap while it said it held little.
ALTER TABLE quarantine ADD COLUMN stored_size BIGINT NOT NULL DEFAULT 0;
UPDATE quarantine SET stored_size = 64 + length(body) + octet_length(header::text) + octet_length(message)
    + octet_length(remote) + octet_length(path) + octet_length(reason) + octet_length(method);
