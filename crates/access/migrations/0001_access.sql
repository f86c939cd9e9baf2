-- Trailmark access store, schema 1: orgs, projects, users, grants, API tokens.
-- Mutable state (grants are revoked, tokens revoked, passwords changed), deliberately kept out
-- of the append-only evidence log. Secrets are never stored: users have an argon2id PHC
-- string, tokens the SHA-256 of the whole token text.

CREATE TABLE orgs (
    name TEXT PRIMARY KEY
) STRICT;

CREATE TABLE projects (
    org  TEXT NOT NULL REFERENCES orgs (name),
    name TEXT NOT NULL,
    PRIMARY KEY (org, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_phc  TEXT NOT NULL
) STRICT;

-- One row per (user, role, scope). `scope` is the text form (`acme` or `acme/payments`);
-- `org` and `project` repeat it so that the foreign keys keep grants pointing at real scopes
-- (a NULL project, an org scope, is not checked against `projects`).
CREATE TABLE user_grants (
    user    TEXT NOT NULL REFERENCES users (name),
    role    TEXT NOT NULL,
    scope   TEXT NOT NULL,
    org     TEXT NOT NULL REFERENCES orgs (name),
    project TEXT,
    PRIMARY KEY (user, role, scope),
    FOREIGN KEY (org, project) REFERENCES projects (org, name)
) STRICT, WITHOUT ROWID;

-- API tokens. `hash` is SHA-256 of the whole token text; times are RFC 3339 strings
-- (exact round trip of the caller's timestamps). Rows are kept after revocation so lists and
-- audits still show them.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        BLOB NOT NULL CHECK (length(hash) = 32),
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
) STRICT;
CREATE INDEX tokens_org ON tokens (org);
