-- Trailmark access store, schema 1, PostgreSQL dialect (same tables and rules as
-- ../0001_access.sql for SQLite): orgs, projects, users, grants, API tokens. Mutable state,
-- deliberately kept out of the append-only evidence log. Secrets are never stored: users have
-- an argon2id PHC string, tokens the SHA-256 of the whole token text.

CREATE TABLE orgs (
    name TEXT PRIMARY KEY
);

CREATE TABLE projects (
    org  TEXT NOT NULL REFERENCES orgs (name),
    name TEXT NOT NULL,
    PRIMARY KEY (org, name)
);

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_phc  TEXT NOT NULL
);

CREATE TABLE user_grants (
    "user"  TEXT NOT NULL REFERENCES users (name),
    role    TEXT NOT NULL,
    scope   TEXT NOT NULL,
    org     TEXT NOT NULL REFERENCES orgs (name),
    project TEXT,
    PRIMARY KEY ("user", role, scope),
    FOREIGN KEY (org, project) REFERENCES projects (org, name)
);

-- `seq` orders tokens by creation (SQLite uses its rowid).
CREATE TABLE tokens (
    seq         BIGSERIAL UNIQUE,
    id          TEXT PRIMARY KEY,
    hash        BYTEA NOT NULL CHECK (length(hash) = 32),
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    org         TEXT NOT NULL REFERENCES orgs (name),
    project     TEXT,
    owner       TEXT REFERENCES users (name),
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT,
    created_by  TEXT NOT NULL,
    FOREIGN KEY (org, project) REFERENCES projects (org, name)
);
CREATE INDEX tokens_org ON tokens (org);
