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

-- Sign-ins through the identity provider started and not yet finished (ten minutes, used
-- once), so the provider may send the browser back to any instance.
CREATE TABLE pending_logins (
    hash       BYTEA PRIMARY KEY,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    next       TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Failed sign-ins per user name (lower-cased) in the current window, shared by every instance.
CREATE TABLE login_failures (
    name     TEXT PRIMARY KEY,
    start_ms BIGINT NOT NULL,
    count    BIGINT NOT NULL
);
