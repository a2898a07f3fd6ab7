-- store-sqlite migration 1: the session table and its indexes.
--
-- The table is named sessions here. Every identifier that names the table
-- or one of its indexes is written in double quotes and starts with the
-- table name, so another name is one textual substitution: replace each
-- double quote immediately followed by sessions with a double quote
-- followed by your name (any double quote inside your name doubled).
-- SqliteStore::migrate does exactly that.
--
-- Times are whole milliseconds since the Unix epoch, UTC: comparisons are
-- integer comparisons and never depend on the host time zone or on how a
-- date is spelled as text.

CREATE TABLE IF NOT EXISTS "sessions" (
    -- SHA-256 of the session id (32 bytes), never the id itself.
    "key" BLOB NOT NULL PRIMARY KEY CHECK (length("key") = 32),
    -- The session values: a JSON object, as text.
    "data" TEXT NOT NULL,
    -- 1 when created, one more on every successful save.
    "version" INTEGER NOT NULL CHECK ("version" >= 1),
    "created_at" INTEGER NOT NULL,
    -- The session is live while expires_at is later than now.
    "expires_at" INTEGER NOT NULL,
    -- The absolute lifetime: a touch never moves expires_at past it.
    "deadline" INTEGER NOT NULL,
    -- The logged-in user, for "log out everywhere".
    "principal" TEXT,
    -- The session's own expiry policy as JSON, when it has one.
    "expiry" TEXT
);

-- Finds expired rows for cleanup without a full scan.
CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx"
    ON "sessions" ("expires_at");

-- Finds one user's sessions; anonymous sessions are left out of it.
CREATE INDEX IF NOT EXISTS "sessions_principal_idx"
    ON "sessions" ("principal")
    WHERE "principal" IS NOT NULL;
