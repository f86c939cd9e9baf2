//! Checksummed schema migrations: applied ones are recorded with their SHA-256, and a store whose
//! recorded history differs from what this build ships is refused rather than "repaired".
//!
//! The decision — which shipped migrations are missing, and whether the recorded history is one
//! this build can accept — is [`plan`], shared by every backend; each backend only reads its
//! `schema_migrations` rows and applies what `plan` returns, in one transaction.

#[cfg(feature = "sqlite")]
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::error::StoreError;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

#[cfg(feature = "sqlite")]
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_log",
        sql: include_str!("../migrations/sqlite/0001_log.sql"),
    },
    Migration {
        version: 2,
        name: "0002_open_epoch",
        sql: include_str!("../migrations/sqlite/0002_open_epoch.sql"),
    },
    Migration {
        version: 3,
        name: "0003_record_kinds",
        sql: include_str!("../migrations/sqlite/0003_record_kinds.sql"),
    },
];

#[cfg(feature = "postgres")]
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_log",
        sql: include_str!("../migrations/postgres/0001_log.sql"),
    },
    Migration {
        version: 2,
        name: "0002_record_kinds",
        sql: include_str!("../migrations/postgres/0002_record_kinds.sql"),
    },
];

/// The SHA-256 of a migration's text, as recorded in `schema_migrations`.
pub fn checksum(sql: &str) -> String {
    hex_lower(&Sha256::digest(sql.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One recorded row of `schema_migrations`.
pub struct Applied {
    pub version: i64,
    pub sha256: String,
}

/// Checks the recorded history against what this build ships and returns the migrations still
/// to apply, in order, each with its checksum. Refuses a database newer than this build and an
/// applied migration whose text changed since.
pub fn plan<'m>(
    migrations: &'m [Migration],
    applied: &[Applied],
) -> Result<Vec<(&'m Migration, String)>, StoreError> {
    let max_known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = applied.iter().map(|a| a.version).max()
        && newest > max_known
    {
        return Err(StoreError::Incompatible(format!(
            "the database has schema version {newest}, newer than this build knows ({max_known}); upgrade trailmark"
        )));
    }
    let mut todo = Vec::new();
    for m in migrations {
        let shipped = checksum(m.sql);
        match applied.iter().find(|a| a.version == m.version) {
            Some(a) if a.sha256 == shipped => {}
            Some(a) => {
                return Err(StoreError::MigrationAltered {
                    version: m.version,
                    name: m.name.to_owned(),
                    applied: a.sha256.clone(),
                    shipped,
                });
            }
            None => todo.push((m, shipped)),
        }
    }
    Ok(todo)
}

/// Applies missing migrations and checks applied ones, in one transaction (SQLite).
#[cfg(feature = "sqlite")]
pub fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    let err = StoreError::backend;
    let tx = conn.transaction().map_err(err("starting migration"))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL) STRICT;
         CREATE TRIGGER IF NOT EXISTS schema_migrations_no_update BEFORE UPDATE ON schema_migrations
             BEGIN SELECT RAISE(ABORT, 'trailmark: migration history is append-only'); END;
         CREATE TRIGGER IF NOT EXISTS schema_migrations_no_delete BEFORE DELETE ON schema_migrations
             BEGIN SELECT RAISE(ABORT, 'trailmark: migration history is append-only'); END;",
    )
    .map_err(err("creating the migration table"))?;
    let applied = tx
        .prepare("SELECT version, sha256 FROM schema_migrations")
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok(Applied {
                    version: r.get(0)?,
                    sha256: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(err("reading migrations"))?;
    for (m, shipped) in plan(migrations, &applied)? {
        tx.execute_batch(m.sql)
            .map_err(err("applying a migration"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, shipped],
        )
        .map_err(err("recording a migration"))?;
    }
    tx.commit().map_err(err("committing migrations"))
}
