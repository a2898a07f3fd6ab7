-- store-postgres migration 1: the sessions table and its indexes.
--
-- :"schema" and :"table" are psql variables; `migrate()` replaces them with
-- the configured names, quoted. With psql:
--   psql -v schema=public -v table=sessions -1 -f 0001_sessions.sql
--
-- key:        SHA-256 of the session id (the id itself is never stored)
-- data:       the session's values, a JSON object, kept exactly as written
-- version:    1 on create, one more on every save (optimistic locking)
-- expires_at: the session is live strictly before this instant
-- deadline:   the absolute lifetime; a touch never moves expires_at past it
-- principal:  the logged-in user, for "log out everywhere"
-- expiry:     the session's own expiry policy ("remember me"), as JSON text
CREATE TABLE :"schema".:"table" (
    key        bytea       PRIMARY KEY CHECK (octet_length(key) = 32),
    data       json        NOT NULL,
    version    bigint      NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    deadline   timestamptz NOT NULL,
    principal  text,
    expiry     text
);

-- Expired-row cleanup scans by expiry.
CREATE INDEX ON :"schema".:"table" (expires_at);

-- "Log out everywhere" looks sessions up by principal; most rows have none.
CREATE INDEX ON :"schema".:"table" (principal) WHERE principal IS NOT NULL;
