//! The two databases the access store runs on, behind one small interface, so every rule of the
//! store is written once: SQLite (a file in the data directory, the default) and PostgreSQL
//! (shared by every instance of a scaled-out deployment).
//!
//! SQL is written once for both, with `$1`, `$2`… placeholders that must first appear in
//! ascending order (SQLite numbers named parameters by first appearance), double-quoted
//! identifiers where PostgreSQL reserves the word (`"user"`), and `ON CONFLICT DO NOTHING`.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::AccessError;

/// A parameter value.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Bytes(&'a [u8]),
    Int(i64),
}

/// A column value read back.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Null,
    Text(String),
    Bytes(Vec<u8>),
    Int(i64),
}

impl Val {
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Val::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
    pub(crate) fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Val::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
    pub(crate) fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
}

pub(crate) type Row = Vec<Val>;

/// The first column of the first row as an integer: what a `COUNT(*)`, `MAX(...)` or
/// single-value lookup returns (`None` when there is no row, or it is not an integer).
pub(crate) fn first_int(rows: &[Row]) -> Option<i64> {
    rows.first()?.first()?.int()
}

/// What the store needs from a transaction.
pub(crate) trait Db {
    /// Runs a statement; returns the number of rows it changed.
    fn exec(&mut self, sql: &str, args: &[Arg<'_>], op: &'static str) -> Result<u64, AccessError>;
    /// Runs a query; every row, every column.
    fn rows(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        op: &'static str,
    ) -> Result<Vec<Row>, AccessError>;
    /// Runs several statements (a migration).
    fn batch(&mut self, sql: &str, op: &'static str) -> Result<(), AccessError>;
    /// The column that orders tokens by creation (SQLite's rowid, PostgreSQL's `seq`).
    fn creation_order(&self) -> &'static str;
}

fn storage(op: &'static str, e: impl std::fmt::Display) -> AccessError {
    AccessError::Storage {
        op,
        message: e.to_string(),
    }
}

struct Sqlite<'c>(&'c rusqlite::Transaction<'c>);

fn sqlite_args<'a>(args: &'a [Arg<'a>]) -> Vec<rusqlite::types::ToSqlOutput<'a>> {
    use rusqlite::types::{ToSqlOutput, ValueRef};
    args.iter()
        .map(|a| match a {
            Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::OptText(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::OptText(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            Arg::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Arg::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
        })
        .collect()
}

impl Db for Sqlite<'_> {
    fn exec(&mut self, sql: &str, args: &[Arg<'_>], op: &'static str) -> Result<u64, AccessError> {
        self.0
            .execute(sql, rusqlite::params_from_iter(sqlite_args(args)))
            .map(|n| n as u64)
            .map_err(|e| storage(op, e))
    }

    fn rows(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        op: &'static str,
    ) -> Result<Vec<Row>, AccessError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(|e| storage(op, e))?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(sqlite_args(args)), |r| {
                (0..n)
                    .map(|i| {
                        use rusqlite::types::ValueRef;
                        Ok(match r.get_ref(i)? {
                            ValueRef::Null => Val::Null,
                            ValueRef::Integer(v) => Val::Int(v),
                            ValueRef::Real(_) => Val::Null,
                            ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                            ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
                        })
                    })
                    .collect::<rusqlite::Result<Row>>()
            })
            .map_err(|e| storage(op, e))?;
        rows.collect::<rusqlite::Result<Vec<Row>>>()
            .map_err(|e| storage(op, e))
    }

    fn batch(&mut self, sql: &str, op: &'static str) -> Result<(), AccessError> {
        self.0.execute_batch(sql).map_err(|e| storage(op, e))
    }

    fn creation_order(&self) -> &'static str {
        "rowid"
    }
}

struct Postgres<'c, 't>(&'c mut postgres::Transaction<'t>);

fn pg_args<'a>(args: &'a [Arg<'a>]) -> Vec<Box<dyn postgres::types::ToSql + Sync + 'a>> {
    args.iter()
        .map(|a| -> Box<dyn postgres::types::ToSql + Sync + 'a> {
            match a {
                Arg::Text(s) => Box::new(*s),
                Arg::OptText(s) => Box::new(*s),
                Arg::Bytes(b) => Box::new(*b),
                Arg::Int(i) => Box::new(*i),
            }
        })
        .collect()
}

impl Db for Postgres<'_, '_> {
    fn exec(&mut self, sql: &str, args: &[Arg<'_>], op: &'static str) -> Result<u64, AccessError> {
        let boxed = pg_args(args);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            boxed.iter().map(|b| b.as_ref()).collect();
        self.0.execute(sql, &refs).map_err(|e| storage(op, e))
    }

    fn rows(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        op: &'static str,
    ) -> Result<Vec<Row>, AccessError> {
        use postgres::types::Type;
        let boxed = pg_args(args);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            boxed.iter().map(|b| b.as_ref()).collect();
        let rows = self.0.query(sql, &refs).map_err(|e| storage(op, e))?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        let ty = r.columns()[i].type_().clone();
                        let v = if ty == Type::BYTEA {
                            r.try_get::<_, Option<Vec<u8>>>(i)
                                .map(|v| v.map_or(Val::Null, Val::Bytes))
                        } else if ty == Type::INT8 {
                            r.try_get::<_, Option<i64>>(i)
                                .map(|v| v.map_or(Val::Null, Val::Int))
                        } else if ty == Type::INT4 {
                            r.try_get::<_, Option<i32>>(i)
                                .map(|v| v.map_or(Val::Null, |v| Val::Int(i64::from(v))))
                        } else {
                            r.try_get::<_, Option<String>>(i)
                                .map(|v| v.map_or(Val::Null, Val::Text))
                        };
                        v.map_err(|e| storage(op, e))
                    })
                    .collect::<Result<Row, AccessError>>()
            })
            .collect()
    }

    fn batch(&mut self, sql: &str, op: &'static str) -> Result<(), AccessError> {
        self.0.batch_execute(sql).map_err(|e| storage(op, e))
    }

    fn creation_order(&self) -> &'static str {
        "seq"
    }
}

/// A connection to one of the two databases.
// One per access store, created once and never moved or copied: boxing the larger variant
// would only add an indirection to every query.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    Sqlite(Mutex<Connection>),
    /// The client, and the URL to reconnect with when the server dropped the session
    /// (restart, failover, a terminated backend).
    Postgres(Mutex<postgres::Client>, String),
}

/// Writers on PostgreSQL serialise on this advisory lock, like SQLite's `BEGIN IMMEDIATE`, so a
/// check-then-insert cannot race another instance.
const PG_LOCK: i64 = 0x7472_6d6b_6163_6301; // "trmkacc" + 1

impl Backend {
    pub(crate) fn postgres(url: &str) -> Result<Backend, AccessError> {
        let client = postgres::Client::connect(url, postgres::NoTls)
            .map_err(|e| storage("connecting to PostgreSQL", e))?;
        Ok(Backend::Postgres(Mutex::new(client), url.to_owned()))
    }

    pub(crate) fn sqlite(conn: Connection) -> Result<Backend, AccessError> {
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| storage("setting the busy timeout", e))?;
        Ok(Backend::Sqlite(Mutex::new(conn)))
    }

    /// Runs `f` in one transaction that holds the write lock from the start; commits if `f`
    /// succeeds, rolls back otherwise.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<T, AccessError>,
    ) -> Result<T, AccessError> {
        self.tx(true, f)
    }

    /// Runs `f` in one read transaction (one snapshot), without the write lock.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<T, AccessError>,
    ) -> Result<T, AccessError> {
        self.tx(false, f)
    }

    fn tx<T>(
        &self,
        write: bool,
        f: impl FnOnce(&mut dyn Db) -> Result<T, AccessError>,
    ) -> Result<T, AccessError> {
        match self {
            Backend::Sqlite(m) => {
                // A panic cannot leave SQLite half-written (the transaction rolls back on
                // drop), so a poisoned lock still guards a consistent connection.
                let mut conn = m.lock().unwrap_or_else(PoisonError::into_inner);
                let behavior = if write {
                    TransactionBehavior::Immediate
                } else {
                    TransactionBehavior::Deferred
                };
                let tx = conn
                    .transaction_with_behavior(behavior)
                    .map_err(|e| storage("starting a transaction", e))?;
                let out = f(&mut Sqlite(&tx))?;
                tx.commit().map_err(|e| storage("committing", e))?;
                Ok(out)
            }
            Backend::Postgres(m, url) => {
                let mut client = m.lock().unwrap_or_else(PoisonError::into_inner);
                if client.is_closed() {
                    *client = postgres::Client::connect(url, postgres::NoTls)
                        .map_err(|e| storage("reconnecting to PostgreSQL", e))?;
                }
                let mut tx = client
                    .transaction()
                    .map_err(|e| storage("starting a transaction", e))?;
                if write {
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_LOCK])
                        .map_err(|e| storage("taking the access lock", e))?;
                }
                let out = f(&mut Postgres(&mut tx))?;
                tx.commit().map_err(|e| storage("committing", e))?;
                Ok(out)
            }
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres(..))
    }
}
