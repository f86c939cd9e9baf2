//! The access store: orgs, projects, users, grants and API tokens in their own SQLite file.
//!
//! This is mutable state (grants and tokens are revoked, passwords changed), so it lives apart
//! from the append-only evidence log. What it must never hold is a secret: users have an
//! argon2id hash, tokens the SHA-256 of the token text.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};

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

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_access",
    sql: include_str!("../migrations/0001_access.sql"),
}];

/// How many fresh ids to try when a new token id collides with an existing one (40 random
/// bits: a second collision in a row means something is wrong with the random source).
const ID_ATTEMPTS: usize = 4;

/// Orgs, projects, users, grants and API tokens, in one SQLite database (WAL,
/// `synchronous=FULL`). All methods take `&self`; calls are serialized on one connection,
/// except password hashing, which runs outside the lock.
pub struct AccessStore {
    conn: Mutex<Connection>,
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
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
        Ok(TokenRow {
            id: row.get(0)?,
            hash: row.get(1)?,
            name: row.get(2)?,
            role: row.get(3)?,
            scope: row.get(4)?,
            owner: row.get(5)?,
            created_at: row.get(6)?,
            expires_at: row.get(7)?,
            revoked_at: row.get(8)?,
            created_by: row.get(9)?,
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
    /// Opens (creating if needed) the access database at `path` and brings its schema up to
    /// date. On Unix a new file is created readable by its owner only (it holds password
    /// hashes).
    pub fn open(path: &Path) -> Result<AccessStore, AccessError> {
        create_private(path)?;
        let conn = Connection::open(path).map_err(AccessError::storage("opening the database"))?;
        AccessStore::init(conn, true)
    }

    /// A store that lives in memory only (tests, throwaway servers).
    pub fn open_in_memory() -> Result<AccessStore, AccessError> {
        let conn = Connection::open_in_memory()
            .map_err(AccessError::storage("opening an in-memory database"))?;
        AccessStore::init(conn, false)
    }

    fn init(mut conn: Connection, durable: bool) -> Result<AccessStore, AccessError> {
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(AccessError::storage("setting the busy timeout"))?;
        if durable {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(AccessError::storage("enabling WAL"))?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(AccessError::storage("setting synchronous=FULL"))?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(AccessError::storage("enabling foreign keys"))?;
        migrate(&mut conn)?;
        // Compute the dummy password hash now rather than on the first unknown-user login,
        // which would otherwise be measurably slower than the rest.
        password::warm_up();
        Ok(AccessStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic cannot leave SQLite half-written (transactions roll back on drop), so a
        // poisoned lock still guards a consistent connection.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ---- orgs and projects ---------------------------------------------------------------

    /// Creates an org. An existing name is a `Duplicate` error.
    pub fn create_org(&self, org: &OrgName) -> Result<(), AccessError> {
        let conn = self.lock();
        let added = conn
            .execute(
                "INSERT OR IGNORE INTO orgs (name) VALUES (?1)",
                [org.as_str()],
            )
            .map_err(AccessError::storage("creating an org"))?;
        if added == 0 {
            return Err(AccessError::Duplicate {
                what: "org",
                name: org.to_string(),
            });
        }
        Ok(())
    }

    /// Every org, sorted by name.
    pub fn orgs(&self) -> Result<Vec<OrgName>, AccessError> {
        let conn = self.lock();
        let names = query_strings(
            &conn,
            "SELECT name FROM orgs ORDER BY name",
            [],
            "listing orgs",
        )?;
        names
            .iter()
            .map(|n| OrgName::parse(n).map_err(|_| corrupt_name("org", n)))
            .collect()
    }

    /// Creates a project in an existing org.
    pub fn create_project(&self, org: &OrgName, project: &ProjectName) -> Result<(), AccessError> {
        let mut conn = self.lock();
        let tx = write_tx(&mut conn)?;
        require_org(&tx, org)?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO projects (org, name) VALUES (?1, ?2)",
                [org.as_str(), project.as_str()],
            )
            .map_err(AccessError::storage("creating a project"))?;
        if added == 0 {
            return Err(AccessError::Duplicate {
                what: "project",
                name: format!("{org}/{project}"),
            });
        }
        commit(tx)
    }

    /// The projects of an org, sorted by name.
    pub fn projects(&self, org: &OrgName) -> Result<Vec<ProjectName>, AccessError> {
        let conn = self.lock();
        require_org(&conn, org)?;
        let names = query_strings(
            &conn,
            "SELECT name FROM projects WHERE org = ?1 ORDER BY name",
            [org.as_str()],
            "listing projects",
        )?;
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
        let added = self
            .lock()
            .execute(
                "INSERT OR IGNORE INTO users (name, password_phc) VALUES (?1, ?2)",
                [name.as_str(), phc.as_str()],
            )
            .map_err(AccessError::storage("creating a user"))?;
        if added == 0 {
            return Err(AccessError::Duplicate {
                what: "user",
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Replaces a user's password (same rules as [`AccessStore::create_user`]).
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AccessError> {
        let name = UserName::parse(name)?;
        password::check_policy(password)?;
        if !self.user_exists(&name)? {
            return Err(unknown_user(name.as_str()));
        }
        let phc = password::hash(password)?;
        self.lock()
            .execute(
                "UPDATE users SET password_phc = ?2 WHERE name = ?1",
                [name.as_str(), phc.as_str()],
            )
            .map_err(AccessError::storage("changing a password"))?;
        Ok(())
    }

    /// Checks a user's password and returns the user principal (`user:<name>`) with its
    /// grants. An unknown user and a wrong password give the same `BadCredentials` error,
    /// after the same amount of argon2 work.
    pub fn authenticate_user(&self, name: &str, password: &str) -> Result<Principal, AccessError> {
        let stored: Option<String> = match UserName::parse(name) {
            Ok(user) if password.len() <= password::MAX_PASSWORD_BYTES => self
                .lock()
                .query_row(
                    "SELECT password_phc FROM users WHERE name = ?1",
                    [user.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(AccessError::storage("looking up a user"))?,
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
        let mut conn = self.lock();
        let tx = write_tx(&mut conn)?;
        require_user(&tx, user)?;
        require_scope(&tx, &grant.scope)?;
        tx.execute(
            "INSERT OR IGNORE INTO user_grants (user, role, scope, org, project)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                user,
                grant.role.as_str(),
                grant.scope.to_string(),
                grant.scope.org().as_str(),
                grant.scope.project().map(ProjectName::as_str),
            ],
        )
        .map_err(AccessError::storage("granting a role"))?;
        commit(tx)
    }

    /// Removes exactly this grant; true if the user had it. Person tokens of the user lose
    /// what it gave them at their next authentication.
    pub fn revoke_grant(&self, user: &str, grant: &Grant) -> Result<bool, AccessError> {
        let mut conn = self.lock();
        let tx = write_tx(&mut conn)?;
        require_user(&tx, user)?;
        let removed = tx
            .execute(
                "DELETE FROM user_grants WHERE user = ?1 AND role = ?2 AND scope = ?3",
                params![user, grant.role.as_str(), grant.scope.to_string()],
            )
            .map_err(AccessError::storage("revoking a grant"))?;
        commit(tx)?;
        Ok(removed > 0)
    }

    /// A user's grants, sorted by role then scope.
    pub fn grants(&self, user: &str) -> Result<Vec<Grant>, AccessError> {
        let conn = self.lock();
        require_user(&conn, user)?;
        user_grants(&conn, user)
    }

    /// Every user name, sorted.
    pub fn users(&self) -> Result<Vec<String>, AccessError> {
        let conn = self.lock();
        query_strings(
            &conn,
            "SELECT name FROM users ORDER BY name",
            [],
            "listing users",
        )
    }

    fn user_exists(&self, name: &UserName) -> Result<bool, AccessError> {
        exists(
            &self.lock(),
            "SELECT 1 FROM users WHERE name = ?1",
            [name.as_str()],
        )
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
        let mut conn = self.lock();
        let tx = write_tx(&mut conn)?;
        require_scope(&tx, &grant.scope)?;
        if let Some(owner) = owner {
            require_user(&tx, owner)?;
        }
        for _ in 0..ID_ATTEMPTS {
            let (id, secret, hash) = token::generate()?;
            let added = tx
                .execute(
                    "INSERT OR IGNORE INTO tokens (id, hash, name, role, scope, org, project,
                         owner, created_at, expires_at, revoked_at, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11)",
                    params![
                        id.as_str(),
                        &hash[..],
                        name,
                        grant.role.as_str(),
                        grant.scope.to_string(),
                        grant.scope.org().as_str(),
                        grant.scope.project().map(ProjectName::as_str),
                        owner,
                        now.to_string(),
                        expires_at.map(|t| t.to_string()),
                        created_by,
                    ],
                )
                .map_err(AccessError::storage("creating a token"))?;
            if added == 1 {
                commit(tx)?;
                let info = TokenInfo {
                    id,
                    name: name.to_owned(),
                    grant,
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
    }

    /// Tokens (including revoked and expired ones) in creation order, all or those whose
    /// grant is in `org`.
    pub fn tokens(&self, org: Option<&OrgName>) -> Result<Vec<TokenInfo>, AccessError> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE ?1 IS NULL OR org = ?1 ORDER BY rowid"
        );
        let mut stmt = conn
            .prepare(&sql)
            .map_err(AccessError::storage("listing tokens"))?;
        let rows = stmt
            .query_map([org.map(OrgName::as_str)], TokenRow::read)
            .map_err(AccessError::storage("listing tokens"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(AccessError::storage("listing tokens"))?;
        rows.iter().map(TokenRow::info).collect()
    }

    /// One token's information.
    pub fn token(&self, id: &TokenId) -> Result<TokenInfo, AccessError> {
        let conn = self.lock();
        token_row(&conn, id)?
            .ok_or_else(|| AccessError::UnknownToken { id: id.clone() })?
            .info()
    }

    /// Revokes a token at `now`. Unknown → `UnknownToken`; revoked before → `AlreadyRevoked`.
    pub fn revoke_token(&self, id: &TokenId, now: Timestamp) -> Result<TokenInfo, AccessError> {
        let mut conn = self.lock();
        let tx = write_tx(&mut conn)?;
        let mut info = token_row(&tx, id)?
            .ok_or_else(|| AccessError::UnknownToken { id: id.clone() })?
            .info()?;
        if let Some(revoked_at) = info.revoked_at {
            return Err(AccessError::AlreadyRevoked {
                id: id.clone(),
                revoked_at,
            });
        }
        tx.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1",
            [id.as_str(), &now.to_string()],
        )
        .map_err(AccessError::storage("revoking a token"))?;
        commit(tx)?;
        info.revoked_at = Some(now);
        Ok(info)
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
        let conn = self.lock();
        let row =
            token_row(&conn, &id)?.ok_or_else(|| AccessError::UnknownToken { id: id.clone() })?;
        if !token::hash_matches(&row.hash, presented.text) {
            return Err(AccessError::UnknownToken { id });
        }
        let info = row.info()?;
        if let Some(revoked_at) = info.revoked_at {
            return Err(AccessError::RevokedToken { id, revoked_at });
        }
        if let Some(expired_at) = info.expires_at
            && now >= expired_at
        {
            return Err(AccessError::ExpiredToken { id, expired_at });
        }
        let grants = match &info.owner {
            None => vec![info.grant.clone()],
            Some(owner) => {
                let mut grants: Vec<Grant> = user_grants(&conn, owner)?
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
fn migrate(conn: &mut Connection) -> Result<(), AccessError> {
    let err = AccessError::storage;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err("starting the migration"))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL) STRICT;",
    )
    .map_err(err("creating the migration table"))?;
    let newest: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .map_err(err("reading migrations"))?;
    let known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = newest
        && newest > known
    {
        return Err(AccessError::Incompatible(format!(
            "the access database has schema version {newest}, newer than this build knows \
             ({known}); upgrade trailmark"
        )));
    }
    for m in MIGRATIONS {
        let shipped: String = Sha256::digest(m.sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let applied: Option<String> = tx
            .query_row(
                "SELECT sha256 FROM schema_migrations WHERE version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()
            .map_err(err("reading migrations"))?;
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
                tx.execute_batch(m.sql)
                    .map_err(err("applying a migration"))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, sha256) VALUES (?1, ?2, ?3)",
                    params![m.version, m.name, shipped],
                )
                .map_err(err("recording a migration"))?;
            }
        }
    }
    tx.commit().map_err(err("committing the migration"))
}

/// A write transaction that takes the write lock up front, so a check-then-insert cannot
/// race another process using the same file.
fn write_tx(conn: &mut Connection) -> Result<Transaction<'_>, AccessError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(AccessError::storage("starting a transaction"))
}

fn commit(tx: Transaction<'_>) -> Result<(), AccessError> {
    tx.commit().map_err(AccessError::storage("committing"))
}

fn exists<P: rusqlite::Params>(conn: &Connection, sql: &str, p: P) -> Result<bool, AccessError> {
    conn.query_row(sql, p, |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(AccessError::storage("looking up a name"))
}

fn query_strings<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    p: P,
    op: &'static str,
) -> Result<Vec<String>, AccessError> {
    let mut stmt = conn.prepare(sql).map_err(AccessError::storage(op))?;
    stmt.query_map(p, |r| r.get(0))
        .map_err(AccessError::storage(op))?
        .collect::<Result<Vec<String>, _>>()
        .map_err(AccessError::storage(op))
}

fn corrupt_name(what: &str, name: &str) -> AccessError {
    AccessError::Incompatible(format!("stored {what} name {name:?} is not a valid name"))
}

fn unknown_user(user: &str) -> AccessError {
    AccessError::UnknownUser {
        user: crate::error::quoted(user),
    }
}

fn require_org(conn: &Connection, org: &OrgName) -> Result<(), AccessError> {
    if exists(conn, "SELECT 1 FROM orgs WHERE name = ?1", [org.as_str()])? {
        Ok(())
    } else {
        Err(AccessError::UnknownOrg {
            org: org.to_string(),
        })
    }
}

fn require_scope(conn: &Connection, scope: &Scope) -> Result<(), AccessError> {
    require_org(conn, scope.org())?;
    if let Scope::Project(org, project) = scope
        && !exists(
            conn,
            "SELECT 1 FROM projects WHERE org = ?1 AND name = ?2",
            [org.as_str(), project.as_str()],
        )?
    {
        return Err(AccessError::UnknownProject {
            org: org.to_string(),
            project: project.to_string(),
        });
    }
    Ok(())
}

fn require_user(conn: &Connection, user: &str) -> Result<(), AccessError> {
    if exists(conn, "SELECT 1 FROM users WHERE name = ?1", [user])? {
        Ok(())
    } else {
        Err(unknown_user(user))
    }
}

fn user_grants(conn: &Connection, user: &str) -> Result<Vec<Grant>, AccessError> {
    let op = "reading grants";
    let mut stmt = conn
        .prepare("SELECT role, scope FROM user_grants WHERE user = ?1")
        .map_err(AccessError::storage(op))?;
    let rows = stmt
        .query_map([user], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(AccessError::storage(op))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(AccessError::storage(op))?;
    let mut grants = rows
        .iter()
        .map(|(role, scope)| {
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

fn token_row(conn: &Connection, id: &TokenId) -> Result<Option<TokenRow>, AccessError> {
    conn.query_row(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1"),
        [id.as_str()],
        TokenRow::read,
    )
    .optional()
    .map_err(AccessError::storage("looking up a token"))
}
