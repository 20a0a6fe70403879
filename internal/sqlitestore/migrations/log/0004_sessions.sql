-- Dashboard sessions ended by a logout before they expire. The cookie is
-- stateless (signed expiry and id); this list is what makes a logout hold.
-- Every instance rereads it every few seconds (until > now: a handful of
-- rows) and a revocation goes once its session would have expired anyway.
CREATE TABLE revoked_sessions (
    id    TEXT    PRIMARY KEY,                  -- the cookie's random session id
    until INTEGER NOT NULL                      -- the session's expiry, Unix ms
);
CREATE INDEX revoked_sessions_until ON revoked_sessions (until);
