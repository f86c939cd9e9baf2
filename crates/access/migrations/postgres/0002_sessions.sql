-- Trailmark access store, schema 2 (PostgreSQL; see ../0002_sessions.sql for SQLite): web UI
-- sessions, shared by every instance. Only the SHA-256 of the cookie's token is stored. Times
-- are Unix milliseconds.

CREATE TABLE sessions (
    hash       BYTEA PRIMARY KEY,
    "user"     TEXT NOT NULL REFERENCES users (name),
    created_ms BIGINT NOT NULL,
    seen_ms    BIGINT NOT NULL
);

CREATE INDEX sessions_user ON sessions ("user");
CREATE INDEX sessions_created ON sessions (created_ms);
