-- Dashboard sessions ended by a logout before they expire, shared by every
-- instance. The cookie is stateless (signed expiry and id); this list is
-- what makes a logout hold everywhere. Instances reread it every few
-- seconds (until > now: a handful of rows); a revocation goes once its
-- session would have expired anyway.
CREATE TABLE revoked_sessions (
    id    TEXT   PRIMARY KEY,                   -- the cookie's random session id
    until BIGINT NOT NULL                       -- the session's expiry, Unix ms
);
CREATE INDEX revoked_sessions_until ON revoked_sessions (until);
