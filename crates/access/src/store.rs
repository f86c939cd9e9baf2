//! The access store: orgs, projects, users, grants and API tokens, in their own SQLite file or
//! in PostgreSQL (shared by every instance of a scaled-out deployment).
//!
//! This is mutable state (grants and tokens are revoked, passwords changed), so it lives apart
//! from the append-only evidence log. What it must never hold is a secret: users have an
//! argon2id hash, tokens the SHA-256 of the token text.

use std::path::Path;

use jiff::Timestamp;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::db::{Arg, Backend, Db, Row, Val, first_int};
use crate::error::AccessError;
use crate::password;
use crate::principal::{Principal, PrincipalKind, UserName};
use crate::role::{Grant, Role};
use crate::scope::{OrgName, ProjectName, Scope};
use crate::token::{self, TokenId, TokenInfo, TokenSecret};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, listed once for both dialects so the two lists cannot drift apart; each
/// dialect has its own file (and so its own checksum) under `dir`.
macro_rules! migrations {
    ($dir:literal) => {
        &[
            Migration {
                version: 1,
                name: "0001_access",
                sql: include_str!(concat!($dir, "0001_access.sql")),
            },
            Migration {
                version: 2,
                name: "0002_sessions",
                sql: include_str!(concat!($dir, "0002_sessions.sql")),
            },
        ]
    };
}

const MIGRATIONS: &[Migration] = migrations!("../migrations/");

/// The same schema in PostgreSQL's dialect (its own checksums: the two files differ).
const PG_MIGRATIONS: &[Migration] = migrations!("../migrations/postgres/");

/// How many fresh ids to try when a new token id collides with an existing one (40 random
/// bits: a second collision in a row means something is wrong with the random source).
const ID_ATTEMPTS: usize = 4;

/// Orgs, projects, users, grants and API tokens, in one SQLite database (WAL,
/// `synchronous=FULL`) or in PostgreSQL. All methods take `&self`; calls are serialized on one
/// connection, except password hashing, which runs outside the lock. Writes hold the write lock
/// from the start of their transaction (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock),
/// so a check-then-insert cannot race another process.
pub struct AccessStore {
    db: Backend,
}

impl std::fmt::Debug for AccessStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessStore").finish_non_exhaustive()
    }
}

/// A token row as stored, before its text columns are parsed.
struct TokenRow {
    id: String,
    hash: Vec<u8>,
    name: String,
    role: String,
    scope: String,
    owner: Option<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    created_by: String,
}

const TOKEN_COLUMNS: &str =
    "id, hash, name, role, scope, owner, created_at, expires_at, revoked_at, created_by";

impl TokenRow {
    fn read(row: &Row) -> Result<TokenRow, AccessError> {
        let text = |i: usize| row.get(i).and_then(Val::text);
        let required = |i: usize| {
            text(i).ok_or_else(|| {
                AccessError::Incompatible(format!("a stored token lacks column {i}"))
            })
        };
        Ok(TokenRow {
            id: required(0)?,
            hash: row.get(1).and_then(Val::bytes).unwrap_or_default(),
            name: required(2)?,
            role: required(3)?,
            scope: required(4)?,
            owner: text(5),
            created_at: required(6)?,
            expires_at: text(7),
            revoked_at: text(8),
            created_by: required(9)?,
        })
    }

    fn info(&self) -> Result<TokenInfo, AccessError> {
        let corrupt = |what: &str| {
            AccessError::Incompatible(format!("stored token {:?} has an invalid {what}", self.id))
        };
        let time = |text: &str, what: &str| text.parse::<Timestamp>().map_err(|_| corrupt(what));
        Ok(TokenInfo {
            id: TokenId::parse(&self.id).map_err(|_| corrupt("id"))?,
            name: self.name.clone(),
            grant: Grant {
                role: self.role.parse().map_err(|_| corrupt("role"))?,
                scope: self.scope.parse().map_err(|_| corrupt("scope"))?,
            },
            owner: self.owner.clone(),
            created_at: time(&self.created_at, "creation time")?,
            expires_at: self
                .expires_at
                .as_deref()
                .map(|t| time(t, "expiry time"))
                .transpose()?,
            revoked_at: self
                .revoked_at
                .as_deref()
                .map(|t| time(t, "revocation time"))
                .transpose()?,
            created_by: self.created_by.clone(),
        })
    }
}

impl AccessStore {
    /// Opens (creating if needed) the access database at `path`, applying or checking its
    /// migrations. A new file is created with mode 0600.
    pub fn open(path: &Path) -> Result<AccessStore, AccessError> {
        create_private(path)?;
        let conn = Connection::open(path).map_err(AccessError::storage("opening the database"))?;
        AccessStore::init_sqlite(conn, true)
    }

    /// A store that lives only as long as the value (tests, tools).
    pub fn open_in_memory() -> Result<AccessStore, AccessError> {
        let conn = Connection::open_in_memory()
            .map_err(AccessError::storage("opening an in-memory database"))?;
        AccessStore::init_sqlite(conn, false)
    }

    /// Opens the access tables in the PostgreSQL database `url` names (creating or checking
    /// them), so several instances share one set of orgs, users and tokens.
    pub fn open_postgres(url: &str) -> Result<AccessStore, AccessError> {
        let store = AccessStore {
            db: Backend::postgres(url)?,
        };
        store.db.write(|db| migrate(db, PG_MIGRATIONS))?;
        password::warm_up();
        Ok(store)
    }

    fn init_sqlite(conn: Connection, durable: bool) -> Result<AccessStore, AccessError> {
        if durable {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(AccessError::storage("enabling WAL"))?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(AccessError::storage("setting synchronous=FULL"))?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(AccessError::storage("enabling foreign keys"))?;
        let store = AccessStore {
            db: Backend::sqlite(conn)?,
        };
        store.db.write(|db| migrate(db, MIGRATIONS))?;
        // Compute the dummy password hash now rather than on the first unknown-user login,
        // which would otherwise be measurably slower than the rest.
        password::warm_up();
        Ok(store)
    }

    /// Writes a consistent copy of the access database at `src` (SQLite) to `dest`, a new file
    /// readable by its owner only (it holds password and token hashes), as of one read
    /// transaction (`VACUUM INTO`), and fsyncs it.
    pub fn snapshot_file(src: &Path, dest: &Path) -> Result<(), AccessError> {
        let fail = |op: &'static str| {
            move |e: rusqlite::Error| AccessError::Storage {
                op,
                message: e.to_string(),
            }
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(dest).map_err(|e| AccessError::Storage {
            op: "creating the snapshot file",
            message: format!("{}: {e}", dest.display()),
        })?;
        let dest_text = dest.to_str().ok_or_else(|| AccessError::Storage {
            op: "writing a snapshot",
            message: format!("{} is not a UTF-8 path", dest.display()),
        })?;
        let conn = Connection::open_with_flags(src, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(fail("opening the access database"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(fail("setting the busy timeout"))?;
        conn.execute("VACUUM INTO ?1", [dest_text])
            .map_err(fail("writing a snapshot"))?;
        std::fs::File::open(dest)
            .and_then(|f| f.sync_all())
            .map_err(|e| AccessError::Storage {
                op: "syncing the snapshot",
                message: format!("{}: {e}", dest.display()),
            })
    }

    /// Whether this store is in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.db.is_postgres()
    }

    // ---- orgs and projects ---------------------------------------------------------------

    /// Creates an org. An existing name is a `Duplicate` error.
    pub fn create_org(&self, org: &OrgName) -> Result<(), AccessError> {
        self.db.write(|db| {
            let added = db.exec(
                "INSERT INTO orgs (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[Arg::Text(org.as_str())],
                "creating an org",
            )?;
            if added == 0 {
                return Err(AccessError::Duplicate {
                    what: "org",
                    name: org.to_string(),
                });
            }
            Ok(())
        })
    }

    /// Every org, sorted by name.
    pub fn orgs(&self) -> Result<Vec<OrgName>, AccessError> {
        let names = self.db.read(|db| {
            strings(
                db,
                "SELECT name FROM orgs ORDER BY name",
                &[],
                "listing orgs",
            )
        })?;
        names
            .iter()
            .map(|n| OrgName::parse(n).map_err(|_| corrupt_name("org", n)))
            .collect()
    }

    /// Creates a project in an existing org.
    pub fn create_project(&self, org: &OrgName, project: &ProjectName) -> Result<(), AccessError> {
        self.db.write(|db| {
            require_org(db, org)?;
            let added = db.exec(
                "INSERT INTO projects (org, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[Arg::Text(org.as_str()), Arg::Text(project.as_str())],
                "creating a project",
            )?;
            if added == 0 {
                return Err(AccessError::Duplicate {
                    what: "project",
                    name: format!("{org}/{project}"),
                });
            }
            Ok(())
        })
    }

    /// The projects of an org, sorted by name.
    pub fn projects(&self, org: &OrgName) -> Result<Vec<ProjectName>, AccessError> {
        let names = self.db.read(|db| {
            require_org(db, org)?;
            strings(
                db,
                "SELECT name FROM projects WHERE org = $1 ORDER BY name",
                &[Arg::Text(org.as_str())],
                "listing projects",
            )
        })?;
        names
            .iter()
            .map(|n| ProjectName::parse(n).map_err(|_| corrupt_name("project", n)))
            .collect()
    }

    // ---- users and grants ----------------------------------------------------------------

    /// Creates a local user. The name must be `[a-z0-9][a-z0-9._-]{0,63}`; the password at
    /// least 12 characters. Only its argon2id hash is stored.
    pub fn create_user(&self, name: &str, password: &str) -> Result<(), AccessError> {
        let name = UserName::parse(name)?;
        password::check_policy(password)?;
        if self.user_exists(&name)? {
            return Err(AccessError::Duplicate {
                what: "user",
                name: name.to_string(),
            });
        }
        // Hash outside the lock: it takes tens of milliseconds by design.
        let phc = password::hash(password)?;
        self.db.write(|db| {
            let added = db.exec(
                "INSERT INTO users (name, password_phc) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[Arg::Text(name.as_str()), Arg::Text(&phc)],
                "creating a user",
            )?;
            if added == 0 {
                return Err(AccessError::Duplicate {
                    what: "user",
                    name: name.to_string(),
                });
            }
            Ok(())
        })
    }

    /// Replaces a user's password (same rules as [`AccessStore::create_user`]).
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AccessError> {
        let name = UserName::parse(name)?;
        password::check_policy(password)?;
        if !self.user_exists(&name)? {
            return Err(unknown_user(name.as_str()));
        }
        let phc = password::hash(password)?;
        self.db.write(|db| {
            db.exec(
                "UPDATE users SET password_phc = $1 WHERE name = $2",
                &[Arg::Text(&phc), Arg::Text(name.as_str())],
                "changing a password",
            )?;
            // A new password signs the user out everywhere: whoever knew the old one may hold
            // a session made with it.
            db.exec(
                "DELETE FROM sessions WHERE \"user\" = $1",
                &[Arg::Text(name.as_str())],
                "ending a user's sessions",
            )
            .map(drop)
        })
    }

    /// Checks a user's password and returns the user principal (`user:<name>`) with its
    /// grants. An unknown user and a wrong password give the same `BadCredentials` error,
    /// after the same amount of argon2 work.
    pub fn authenticate_user(&self, name: &str, password: &str) -> Result<Principal, AccessError> {
        let stored: Option<String> = match UserName::parse(name) {
            Ok(user) if password.len() <= password::MAX_PASSWORD_BYTES => self
                .db
                .read(|db| {
                    strings(
                        db,
                        "SELECT password_phc FROM users WHERE name = $1",
                        &[Arg::Text(user.as_str())],
                        "looking up a user",
                    )
                })?
                .into_iter()
                .next(),
            _ => None,
        };
        match stored {
            Some(phc) if password::verify(password, &phc) => self.user_principal(name),
            Some(_) => Err(AccessError::BadCredentials),
            None => {
                // Unknown user: spend the same time as a real check so timing does not reveal
                // which users exist. (Over-long passwords are checked against nothing real.)
                password::verify_dummy(password.get(..password::MAX_PASSWORD_BYTES).unwrap_or(""));
                Err(AccessError::BadCredentials)
            }
        }
    }

    /// The principal of an existing user, without a password check: for a server that has
    /// already authenticated the user (a session) and needs current grants.
    pub fn user_principal(&self, name: &str) -> Result<Principal, AccessError> {
        let grants = self.grants(name)?;
        Ok(Principal {
            id: format!("user:{name}"),
            kind: PrincipalKind::User,
            grants,
            person: Some(name.to_owned()),
        })
    }

    /// Grants a user a role on an existing org or project. Granting what the user already has
    /// changes nothing and is not an error.
    pub fn grant(&self, user: &str, grant: Grant) -> Result<(), AccessError> {
        self.db.write(|db| {
            require_user(db, user)?;
            require_scope(db, &grant.scope)?;
            let scope = grant.scope.to_string();
            db.exec(
                "INSERT INTO user_grants (\"user\", role, scope, org, project)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    Arg::Text(user),
                    Arg::Text(grant.role.as_str()),
                    Arg::Text(&scope),
                    Arg::Text(grant.scope.org().as_str()),
                    Arg::OptText(grant.scope.project().map(ProjectName::as_str)),
                ],
                "granting a role",
            )
            .map(drop)
        })
    }

    /// Removes exactly this grant; true if the user had it. Person tokens of the user lose
    /// what it gave them at their next authentication.
    pub fn revoke_grant(&self, user: &str, grant: &Grant) -> Result<bool, AccessError> {
        self.db.write(|db| {
            require_user(db, user)?;
            let removed = db.exec(
                "DELETE FROM user_grants WHERE \"user\" = $1 AND role = $2 AND scope = $3",
                &[
                    Arg::Text(user),
                    Arg::Text(grant.role.as_str()),
                    Arg::Text(&grant.scope.to_string()),
                ],
                "revoking a grant",
            )?;
            Ok(removed > 0)
        })
    }

    /// A user's grants, sorted by role then scope.
    pub fn grants(&self, user: &str) -> Result<Vec<Grant>, AccessError> {
        self.db.read(|db| {
            require_user(db, user)?;
            user_grants(db, user)
        })
    }

    /// Every user name, sorted.
    pub fn users(&self) -> Result<Vec<String>, AccessError> {
        self.db.read(|db| {
            strings(
                db,
                "SELECT name FROM users ORDER BY name",
                &[],
                "listing users",
            )
        })
    }

    fn user_exists(&self, name: &UserName) -> Result<bool, AccessError> {
        self.db.read(|db| {
            exists(
                db,
                "SELECT 1 FROM users WHERE name = $1",
                &[Arg::Text(name.as_str())],
            )
        })
    }

    // ---- API tokens ----------------------------------------------------------------------

    /// Creates an API token and returns its text (to show once; only its hash is kept) and
    /// what is stored about it.
    ///
    /// The grant's scope must exist. With an `owner` (an existing user) the token is a person
    /// token acting for that user: at each authentication its grant is intersected with the
    /// owner's *current* grants (see [`AccessStore::authenticate_token`]), so it can never do
    /// more than its owner, even after the owner loses a grant.
    pub fn create_token(
        &self,
        name: &str,
        grant: Grant,
        owner: Option<&str>,
        expires_at: Option<Timestamp>,
        created_by: &str,
        now: Timestamp,
    ) -> Result<(TokenSecret, TokenInfo), AccessError> {
        token::check_name(name)?;
        if let Some(expires_at) = expires_at
            && expires_at <= now
        {
            return Err(AccessError::ExpiryNotInFuture { expires_at, now });
        }
        self.db.write(|db| {
            require_scope(db, &grant.scope)?;
            if let Some(owner) = owner {
                require_user(db, owner)?;
            }
            let scope = grant.scope.to_string();
            let created = now.to_string();
            let expires = expires_at.map(|t| t.to_string());
            for _ in 0..ID_ATTEMPTS {
                let (id, secret, hash) = token::generate()?;
                let added = db.exec(
                    "INSERT INTO tokens (id, hash, name, role, scope, org, project,
                         owner, created_at, expires_at, revoked_at, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11)
                     ON CONFLICT DO NOTHING",
                    &[
                        Arg::Text(id.as_str()),
                        Arg::Bytes(&hash[..]),
                        Arg::Text(name),
                        Arg::Text(grant.role.as_str()),
                        Arg::Text(&scope),
                        Arg::Text(grant.scope.org().as_str()),
                        Arg::OptText(grant.scope.project().map(ProjectName::as_str)),
                        Arg::OptText(owner),
                        Arg::Text(&created),
                        Arg::OptText(expires.as_deref()),
                        Arg::Text(created_by),
                    ],
                    "creating a token",
                )?;
                if added == 1 {
                    let info = TokenInfo {
                        id,
                        name: name.to_owned(),
                        grant: grant.clone(),
                        owner: owner.map(str::to_owned),
                        created_at: now,
                        expires_at,
                        revoked_at: None,
                        created_by: created_by.to_owned(),
                    };
                    return Ok((secret, info));
                }
            }
            Err(AccessError::Randomness(format!(
                "{ID_ATTEMPTS} new token ids in a row were already taken"
            )))
        })
    }

    /// Tokens (including revoked and expired ones) in creation order, all or those whose
    /// grant is in `org`.
    pub fn tokens(&self, org: Option<&OrgName>) -> Result<Vec<TokenInfo>, AccessError> {
        let rows = self.db.read(|db| {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE $1::text IS NULL OR org = $1 ORDER BY {}",
                db.creation_order()
            );
            // SQLite has no `::text` casts; PostgreSQL needs the type of a lone NULL.
            let sql = if db.creation_order() == "rowid" {
                sql.replace("$1::text", "$1")
            } else {
                sql
            };
            db.rows(
                &sql,
                &[Arg::OptText(org.map(OrgName::as_str))],
                "listing tokens",
            )
        })?;
        rows.iter()
            .map(|r| TokenRow::read(r).and_then(|t| t.info()))
            .collect()
    }

    /// One token's information.
    pub fn token(&self, id: &TokenId) -> Result<TokenInfo, AccessError> {
        self.db
            .read(|db| token_row(db, id))?
            .ok_or_else(|| AccessError::UnknownToken { id: id.clone() })?
            .info()
    }

    // ---- web sessions ----------------------------------------------------------------------

    /// Starts a web session for `user`, known by `hash` (the SHA-256 of the cookie's token;
    /// the token itself is never stored). Sessions past `max` are removed on the way.
    pub fn start_session(
        &self,
        hash: &[u8; 32],
        user: &str,
        now: Timestamp,
        max: std::time::Duration,
    ) -> Result<(), AccessError> {
        let now_ms = now.as_millisecond();
        let oldest = now_ms.saturating_sub(millis(max));
        self.db.write(|db| {
            db.exec(
                "DELETE FROM sessions WHERE created_ms <= $1",
                &[Arg::Int(oldest)],
                "removing expired sessions",
            )?;
            let known = db.rows(
                "SELECT name FROM users WHERE name = $1",
                &[Arg::Text(user)],
                "reading a user",
            )?;
            if known.is_empty() {
                return Err(unknown_user(user));
            }
            db.exec(
                "INSERT INTO sessions (hash, \"user\", created_ms, seen_ms) VALUES ($1, $2, $3, $3)",
                &[Arg::Bytes(hash), Arg::Text(user), Arg::Int(now_ms)],
                "starting a session",
            )?;
            Ok(())
        })
    }

    /// The user of the live session `hash`, or `None` when there is none or it expired: idle
    /// for `idle`, or older than `max` (an expired session is removed). Using a session keeps
    /// it alive; the time it was last seen is written at most once a minute (so reading a page
    /// does not mean a write), which makes the idle limit exact to within that minute.
    pub fn session_user(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
        idle: std::time::Duration,
        max: std::time::Duration,
    ) -> Result<Option<String>, AccessError> {
        const SEEN_GRANULARITY_MS: i64 = 60_000;
        let now_ms = now.as_millisecond();
        let row = self.db.read(|db| {
            db.rows(
                "SELECT \"user\", created_ms, seen_ms FROM sessions WHERE hash = $1",
                &[Arg::Bytes(hash)],
                "reading a session",
            )
        })?;
        let Some(row) = row.first() else {
            return Ok(None);
        };
        let (Some(user), Some(created), Some(seen)) = (
            row.first().and_then(Val::text),
            row.get(1).and_then(Val::int),
            row.get(2).and_then(Val::int),
        ) else {
            return Err(AccessError::Incompatible(
                "a stored session lacks a column".into(),
            ));
        };
        if now_ms.saturating_sub(seen) >= millis(idle)
            || now_ms.saturating_sub(created) >= millis(max)
        {
            self.end_session(hash)?;
            return Ok(None);
        }
        if now_ms.saturating_sub(seen) >= SEEN_GRANULARITY_MS {
            self.db.write(|db| {
                db.exec(
                    "UPDATE sessions SET seen_ms = $1 WHERE hash = $2",
                    &[Arg::Int(now_ms), Arg::Bytes(hash)],
                    "refreshing a session",
                )
            })?;
        }
        Ok(Some(user))
    }

    /// Ends the session `hash` (sign-out); an unknown one is no error.
    pub fn end_session(&self, hash: &[u8; 32]) -> Result<(), AccessError> {
        self.db.write(|db| {
            db.exec(
                "DELETE FROM sessions WHERE hash = $1",
                &[Arg::Bytes(hash)],
                "ending a session",
            )
        })?;
        Ok(())
    }

    /// Ends every session of `user`; returns how many there were.
    pub fn end_sessions_of(&self, user: &str) -> Result<u64, AccessError> {
        self.db.write(|db| {
            db.exec(
                "DELETE FROM sessions WHERE \"user\" = $1",
                &[Arg::Text(user)],
                "ending a user's sessions",
            )
        })
    }

    /// Failed sign-ins for `name` (case-insensitive) in the window that started within
    /// `window` of `now`; 0 when there is none.
    pub fn login_failures(
        &self,
        name: &str,
        now: Timestamp,
        window: std::time::Duration,
    ) -> Result<u32, AccessError> {
        let name = name.to_lowercase();
        let oldest = now.as_millisecond().saturating_sub(millis(window));
        let rows = self.db.read(|db| {
            db.rows(
                "SELECT count FROM login_failures WHERE name = $1 AND start_ms > $2",
                &[Arg::Text(&name), Arg::Int(oldest)],
                "reading failed sign-ins",
            )
        })?;
        Ok(first_int(&rows).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Counts a failed sign-in for `name` (case-insensitive): a window starts at the first
    /// failure and lasts `window`. Returns the failures in the current window, this one
    /// included. Rows of windows that are over are removed on the way.
    pub fn record_login_failure(
        &self,
        name: &str,
        now: Timestamp,
        window: std::time::Duration,
    ) -> Result<u32, AccessError> {
        let name = name.to_lowercase();
        let now_ms = now.as_millisecond();
        let oldest = now_ms.saturating_sub(millis(window));
        self.db.write(|db| {
            db.exec(
                "DELETE FROM login_failures WHERE start_ms <= $1",
                &[Arg::Int(oldest)],
                "removing past sign-in failures",
            )?;
            let count = first_int(&db.rows(
                "SELECT count FROM login_failures WHERE name = $1",
                &[Arg::Text(&name)],
                "reading failed sign-ins",
            )?);
            let count = match count {
                Some(n) => {
                    db.exec(
                        "UPDATE login_failures SET count = $1 WHERE name = $2",
                        &[Arg::Int(n.saturating_add(1)), Arg::Text(&name)],
                        "counting a failed sign-in",
                    )?;
                    n.saturating_add(1)
                }
                None => {
                    db.exec(
                        "INSERT INTO login_failures (name, start_ms, count) VALUES ($1, $2, 1)",
                        &[Arg::Text(&name), Arg::Int(now_ms)],
                        "counting a failed sign-in",
                    )?;
                    1
                }
            };
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
    }

    /// Forgets `name`'s failed sign-ins (it signed in).
    pub fn clear_login_failures(&self, name: &str) -> Result<(), AccessError> {
        let name = name.to_lowercase();
        self.db.write(|db| {
            db.exec(
                "DELETE FROM login_failures WHERE name = $1",
                &[Arg::Text(&name)],
                "clearing failed sign-ins",
            )
        })?;
        Ok(())
    }

    /// Keeps a sign-in through the identity provider until it is finished: its nonce, PKCE
    /// verifier and where to go next, by `hash` (the SHA-256 of its `state`). Ones older than
    /// `lifetime` are removed on the way; with `max` or more under way, a new one is refused
    /// (`Ok(false)`), so anonymous clicks cannot grow the table without bound.
    #[allow(clippy::too_many_arguments)]
    pub fn start_pending_login(
        &self,
        hash: &[u8; 32],
        nonce: &str,
        verifier: &str,
        next: &str,
        now: Timestamp,
        lifetime: std::time::Duration,
        max: u64,
    ) -> Result<bool, AccessError> {
        let now_ms = now.as_millisecond();
        let oldest = now_ms.saturating_sub(millis(lifetime));
        self.db.write(|db| {
            db.exec(
                "DELETE FROM pending_logins WHERE created_ms <= $1",
                &[Arg::Int(oldest)],
                "removing expired sign-ins",
            )?;
            let under_way = first_int(&db.rows(
                "SELECT COUNT(*) FROM pending_logins",
                &[],
                "counting sign-ins",
            )?)
            .unwrap_or(0);
            if u64::try_from(under_way).unwrap_or(u64::MAX) >= max {
                return Ok(false);
            }
            db.exec(
                "INSERT INTO pending_logins (hash, nonce, verifier, next, created_ms) VALUES ($1, $2, $3, $4, $5)",
                &[
                    Arg::Bytes(hash),
                    Arg::Text(nonce),
                    Arg::Text(verifier),
                    Arg::Text(next),
                    Arg::Int(now_ms),
                ],
                "starting a sign-in",
            )?;
            Ok(true)
        })
    }

    /// Finishes a sign-in: its `(nonce, verifier, next)`, once, if it is younger than
    /// `lifetime`. It is removed either way.
    pub fn take_pending_login(
        &self,
        hash: &[u8; 32],
        now: Timestamp,
        lifetime: std::time::Duration,
    ) -> Result<Option<(String, String, String)>, AccessError> {
        let now_ms = now.as_millisecond();
        self.db.write(|db| {
            let rows = db.rows(
                "SELECT nonce, verifier, next, created_ms FROM pending_logins WHERE hash = $1",
                &[Arg::Bytes(hash)],
                "reading a sign-in",
            )?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            db.exec(
                "DELETE FROM pending_logins WHERE hash = $1",
                &[Arg::Bytes(hash)],
                "finishing a sign-in",
            )?;
            let text = |i: usize| row.get(i).and_then(Val::text);
            let (Some(nonce), Some(verifier), Some(next), Some(created)) =
                (text(0), text(1), text(2), row.get(3).and_then(Val::int))
            else {
                return Err(AccessError::Incompatible(
                    "a stored sign-in lacks a column".into(),
                ));
            };
            Ok((now_ms.saturating_sub(created) < millis(lifetime))
                .then_some((nonce, verifier, next)))
        })
    }

    /// Revokes a token at `now`. Unknown → `UnknownToken`; revoked before → `AlreadyRevoked`.
    pub fn revoke_token(&self, id: &TokenId, now: Timestamp) -> Result<TokenInfo, AccessError> {
        self.db.write(|db| {
            let mut info = token_row(db, id)?
                .ok_or_else(|| AccessError::UnknownToken { id: id.clone() })?
                .info()?;
            if let Some(revoked_at) = info.revoked_at {
                return Err(AccessError::AlreadyRevoked {
                    id: id.clone(),
                    revoked_at,
                });
            }
            db.exec(
                "UPDATE tokens SET revoked_at = $1 WHERE id = $2",
                &[Arg::Text(&now.to_string()), Arg::Text(id.as_str())],
                "revoking a token",
            )?;
            info.revoked_at = Some(now);
            Ok(info)
        })
    }

    /// Authenticates a presented API token at `now` and returns the principal
    /// `token:<id>`.
    ///
    /// Errors, in the order checked: `MalformedToken` (not `tmk_<id>_<secret>`),
    /// `UnknownToken` (no such id, or the secret does not match: the same error, and the
    /// hash comparison is constant-time), then, only once the secret matched, `RevokedToken`
    /// and `ExpiredToken` (so the id alone reveals nothing about a token's state).
    ///
    /// A machine token's grants are its grant. A person token's grants are its grant
    /// intersected with each of the owner's current grants ([`Grant::intersect`]): allowed
    /// exactly when both the token's grant and the owner allow. That may leave no grants at
    /// all (authenticated, but every decision is Deny).
    pub fn authenticate_token(
        &self,
        presented: &str,
        now: Timestamp,
    ) -> Result<Principal, AccessError> {
        let presented = token::parse_presented(presented)?;
        let id = presented.id;
        self.db.read(|db| {
            let row =
                token_row(db, &id)?.ok_or_else(|| AccessError::UnknownToken { id: id.clone() })?;
            if !token::hash_matches(&row.hash, presented.text) {
                return Err(AccessError::UnknownToken { id: id.clone() });
            }
            let info = row.info()?;
            if let Some(revoked_at) = info.revoked_at {
                return Err(AccessError::RevokedToken {
                    id: id.clone(),
                    revoked_at,
                });
            }
            if let Some(expired_at) = info.expires_at
                && now >= expired_at
            {
                return Err(AccessError::ExpiredToken {
                    id: id.clone(),
                    expired_at,
                });
            }
            let grants = match &info.owner {
                None => vec![info.grant.clone()],
                Some(owner) => {
                    let mut grants: Vec<Grant> = user_grants(db, owner)?
                        .iter()
                        .filter_map(|g| info.grant.intersect(g))
                        .collect();
                    grants.sort();
                    grants.dedup();
                    grants
                }
            };
            Ok(Principal {
                id: format!("token:{id}"),
                kind: PrincipalKind::Token,
                grants,
                person: info.owner,
            })
        })
    }
}

/// Creates the database file readable and writable by its owner only, if it does not exist.
/// SQLite gives the WAL and shared-memory files the same permissions.
fn create_private(path: &Path) -> Result<(), AccessError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(AccessError::Storage {
            op: "creating the database file",
            message: format!("{}: {e}", path.display()),
        }),
    }
}

/// Applies missing migrations and checks applied ones by checksum, in one transaction: an
/// applied migration that differs from the shipped one means someone altered the schema
/// history, and the store is refused rather than "repaired".
fn migrate(db: &mut dyn Db, migrations: &[Migration]) -> Result<(), AccessError> {
    // In PostgreSQL the access tables may share a database with the evidence log, whose
    // migrations have their own table.
    let table = if db.creation_order() == "rowid" {
        db.batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL) STRICT;",
            "creating the migration table",
        )?;
        "schema_migrations"
    } else {
        db.batch(
            "CREATE TABLE IF NOT EXISTS access_migrations (
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL);",
            "creating the migration table",
        )?;
        "access_migrations"
    };
    let newest = first_int(&db.rows(
        &format!("SELECT MAX(version) FROM {table}"),
        &[],
        "reading migrations",
    )?);
    let known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = newest
        && newest > known
    {
        return Err(AccessError::Incompatible(format!(
            "the access database has schema version {newest}, newer than this build knows \
             ({known}); upgrade trailmark"
        )));
    }
    for m in migrations {
        let shipped: String = Sha256::digest(m.sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let applied = strings(
            db,
            &format!("SELECT sha256 FROM {table} WHERE version = $1"),
            &[Arg::Int(m.version)],
            "reading migrations",
        )?
        .into_iter()
        .next();
        match applied {
            Some(applied) if applied == shipped => {}
            Some(applied) => {
                return Err(AccessError::Incompatible(format!(
                    "access migration {} ({}) was altered after it was applied \
                     (checksum {applied} != {shipped})",
                    m.version, m.name
                )));
            }
            None => {
                db.batch(m.sql, "applying a migration")?;
                db.exec(
                    &format!("INSERT INTO {table} (version, name, sha256) VALUES ($1, $2, $3)"),
                    &[Arg::Int(m.version), Arg::Text(m.name), Arg::Text(&shipped)],
                    "recording a migration",
                )?;
            }
        }
    }
    Ok(())
}

fn exists(db: &mut dyn Db, sql: &str, args: &[Arg<'_>]) -> Result<bool, AccessError> {
    Ok(!db.rows(sql, args, "looking up a name")?.is_empty())
}

fn strings(
    db: &mut dyn Db,
    sql: &str,
    args: &[Arg<'_>],
    op: &'static str,
) -> Result<Vec<String>, AccessError> {
    Ok(db
        .rows(sql, args, op)?
        .iter()
        .filter_map(|r| r.first().and_then(Val::text))
        .collect())
}

fn corrupt_name(what: &str, name: &str) -> AccessError {
    AccessError::Incompatible(format!("stored {what} name {name:?} is not a valid name"))
}

fn unknown_user(user: &str) -> AccessError {
    AccessError::UnknownUser {
        user: crate::error::quoted(user),
    }
}

fn require_org(db: &mut dyn Db, org: &OrgName) -> Result<(), AccessError> {
    if exists(
        db,
        "SELECT 1 FROM orgs WHERE name = $1",
        &[Arg::Text(org.as_str())],
    )? {
        Ok(())
    } else {
        Err(AccessError::UnknownOrg {
            org: org.to_string(),
        })
    }
}

fn require_scope(db: &mut dyn Db, scope: &Scope) -> Result<(), AccessError> {
    require_org(db, scope.org())?;
    if let Scope::Project(org, project) = scope
        && !exists(
            db,
            "SELECT 1 FROM projects WHERE org = $1 AND name = $2",
            &[Arg::Text(org.as_str()), Arg::Text(project.as_str())],
        )?
    {
        return Err(AccessError::UnknownProject {
            org: org.to_string(),
            project: project.to_string(),
        });
    }
    Ok(())
}

fn require_user(db: &mut dyn Db, user: &str) -> Result<(), AccessError> {
    if exists(
        db,
        "SELECT 1 FROM users WHERE name = $1",
        &[Arg::Text(user)],
    )? {
        Ok(())
    } else {
        Err(unknown_user(user))
    }
}

fn user_grants(db: &mut dyn Db, user: &str) -> Result<Vec<Grant>, AccessError> {
    let rows = db.rows(
        "SELECT role, scope FROM user_grants WHERE \"user\" = $1",
        &[Arg::Text(user)],
        "reading grants",
    )?;
    let mut grants = rows
        .iter()
        .map(|r| {
            let role = r.first().and_then(Val::text).unwrap_or_default();
            let scope = r.get(1).and_then(Val::text).unwrap_or_default();
            let corrupt = || {
                AccessError::Incompatible(format!(
                    "stored grant {role}@{scope} of user {user:?} is not valid"
                ))
            };
            Ok(Grant {
                role: role.parse::<Role>().map_err(|_| corrupt())?,
                scope: scope.parse::<Scope>().map_err(|_| corrupt())?,
            })
        })
        .collect::<Result<Vec<Grant>, AccessError>>()?;
    grants.sort();
    Ok(grants)
}

fn token_row(db: &mut dyn Db, id: &TokenId) -> Result<Option<TokenRow>, AccessError> {
    db.rows(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"),
        &[Arg::Text(id.as_str())],
        "looking up a token",
    )?
    .first()
    .map(TokenRow::read)
    .transpose()
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
