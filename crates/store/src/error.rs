use thiserror::Error;

/// Everything a store operation can fail with.
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database (or file system) failed; `op` says what Trailmark was doing.
    #[error("storage error while {op}: {message}")]
    Backend { op: &'static str, message: String },
    /// The store exists but is not one this build can use (schema, origin, key).
    #[error("store refused: {0}")]
    Incompatible(String),
    /// A migration that was already applied differs from the one this build ships: someone
    /// altered the schema history.
    #[error(
        "migration {version} ({name}) was altered after it was applied (checksum {applied} != {shipped})"
    )]
    MigrationAltered {
        version: i64,
        name: String,
        applied: String,
        shipped: String,
    },
    /// A stored row does not decode: the database holds bytes Trailmark did not write.
    #[error("stored record {index} is corrupt: {reason} (run `trailmark verify`)")]
    Corrupt { index: u64, reason: String },
    /// The stored log disagrees with its latest signed checkpoint (records past or short of
    /// it, a tree that does not reproduce its root): changed behind Trailmark's back. Appending
    /// is refused, since it would bury the damage; reading and `trailmark verify` still work.
    #[error("the stored log is damaged: {0}")]
    Damaged(String),
    /// The caller asked for something that does not exist or cannot be (bad index, size...).
    #[error("{0}")]
    InvalidRequest(String),
    /// This handle cannot append (opened read-only).
    #[error("the store is open read-only")]
    ReadOnly,
    /// The writer thread is gone (the store is shutting down or crashed).
    #[error("the log writer has stopped: {0}")]
    WriterStopped(String),
}

impl StoreError {
    /// The writer went away with a job it had taken: the job's batch may or may not be durable.
    pub(crate) fn writer_gone() -> StoreError {
        StoreError::WriterStopped("the writer thread exited before answering".into())
    }

    #[cfg(feature = "sqlite")]
    pub(crate) fn backend(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |e| StoreError::Backend {
            op,
            message: e.to_string(),
        }
    }

    /// A PostgreSQL error, with the server's message, SQLSTATE and detail when it sent one (the
    /// client's own display of a server error is only "db error").
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
        move |e| StoreError::Backend {
            op,
            message: describe_pg(&e),
        }
    }
}

#[cfg(feature = "postgres")]
pub(crate) fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                m.push_str(": ");
                m.push_str(detail);
            }
            m
        }
        // The client's own errors name their kind only ("error connecting to server"); the
        // cause (refused, timed out, closed) is in the source chain.
        None => {
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                m.push_str(": ");
                m.push_str(&s.to_string());
                source = s.source();
            }
            m
        }
    }
}
