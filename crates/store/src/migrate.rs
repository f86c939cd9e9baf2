//! Checksummed schema migrations: applied ones are recorded with their SHA-256, and a store whose
//! recorded history differs from what this build ships is refused rather than "repaired".

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::error::StoreError;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[Migration {
    version: 1,
    name: "0001_log",
    sql: include_str!("../migrations/sqlite/0001_log.sql"),
}];

fn checksum(sql: &str) -> String {
    hex_lower(&Sha256::digest(sql.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies missing migrations and checks applied ones, in one transaction.
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
    let max_known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    let newest: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .map_err(err("reading migrations"))?;
    if let Some(newest) = newest
        && newest > max_known
    {
        return Err(StoreError::Incompatible(format!(
            "the database has schema version {newest}, newer than this build knows ({max_known}); upgrade trailmark"
        )));
    }
    for m in migrations {
        let shipped = checksum(m.sql);
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
                return Err(StoreError::MigrationAltered {
                    version: m.version,
                    name: m.name.to_owned(),
                    applied,
                    shipped,
                });
            }
            None => {
                tx.execute_batch(m.sql)
                    .map_err(err("applying a migration"))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, sha256) VALUES (?1, ?2, ?3)",
                    rusqlite::params![m.version, m.name, shipped],
                )
                .map_err(err("recording a migration"))?;
            }
        }
    }
    tx.commit().map_err(err("committing migrations"))
}
