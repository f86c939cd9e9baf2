-- Trailmark access store, schema 2: web UI sessions, shared by every process on the store (so
-- a restart does not sign people out, and several instances behind one address accept each
-- other's sessions). The cookie's token is never stored: only its SHA-256. Times are Unix
-- milliseconds.

CREATE TABLE sessions (
    hash       BLOB PRIMARY KEY,
    user       TEXT NOT NULL REFERENCES users (name),
    created_ms INTEGER NOT NULL,
    seen_ms    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_user ON sessions (user);
CREATE INDEX sessions_created ON sessions (created_ms);

-- Sign-ins through the identity provider that were started and not yet finished (at most ten
-- minutes, used once), so the provider may send the browser back to any instance. Keyed by the
-- SHA-256 of the `state` value; the nonce and PKCE verifier must be kept to finish the sign-in.
CREATE TABLE pending_logins (
    hash       BLOB PRIMARY KEY,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    next       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Failed sign-ins per user name (lower-cased) in the current window, shared by every process, so
-- the limit on password guessing holds across instances. Rows of past windows are removed as new
-- failures arrive; a successful sign-in removes the user's row.
CREATE TABLE login_failures (
    name     TEXT PRIMARY KEY,
    start_ms INTEGER NOT NULL,
    count    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
