//! Storage for the evidence log: the [`Store`] trait every backend implements, the embedded
//! SQLite backend, the PostgreSQL backend (one log shared by several server instances), and
//! full-log verification written against the trait (so it checks any backend the same way).
//!
//! Each backend is a cargo feature (`sqlite`, `postgres`; both by default). Without them the
//! crate is the trait, its types and [`verify_log`]: enough for code written against a store,
//! such as the dossier's offline verifier, to build without a database library.
//!
//! Invariants every backend keeps (and `tests/store.rs` checks per backend):
//! - Indices are contiguous from 0; an append returns only after its batch is durable.
//! - Nothing is ever updated or deleted; the backend itself refuses it (triggers, and in
//!   PostgreSQL also privileges).
//! - Every committed batch ends with a signed checkpoint of the tree at that size.
//! - Proofs are served from stored subtree hashes in O(log n) reads.
#![forbid(unsafe_code)]
// Without a backend, the helpers the backends share (answers of queued appends, the errors
// they build) have no caller; the trait and its types are what such a build is for.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod cache;
mod error;
pub mod graph;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrate;
#[cfg(feature = "sqlite")]
mod open_epoch;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod verify;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod writer;

use trailmark_log::{Hash, VerifierKey};
use trailmark_model::{Blob, Digest, Kind, LogIndex, NewRecord, Record, Rel, Subject, Timestamp};

pub use error::StoreError;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use verify::{Failure, VerifyOptions, VerifyReport, verify_log, verify_log_with};

/// The outcome of appending one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub index: LogIndex,
    pub leaf_hash: Hash,
    /// True when the idempotency key was seen before: nothing was appended and `index` is the
    /// first record's.
    pub duplicate: bool,
}

/// A record as stored: its decoded form, the exact leaf bytes and their leaf hash.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    pub record: Record,
    pub leaf: Vec<u8>,
    pub leaf_hash: Hash,
}

/// A signed checkpoint as stored (`note` is the full C2SP signed note text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: Hash,
    pub note: String,
}

/// A raw row for verification: whatever the backend holds, not yet trusted or decoded.
#[derive(Clone, Debug)]
pub struct RawLeaf {
    pub idx: u64,
    pub leaf: Vec<u8>,
    pub leaf_hash: Vec<u8>,
}

/// A raw checkpoint row for verification.
#[derive(Clone, Debug)]
pub struct RawCheckpoint {
    pub size: u64,
    pub root: Vec<u8>,
    pub note: String,
}

/// An append queued by [`Store::append_queued`]: resolves to its records' indices once the
/// batch is durable, as [`Store::append_with_blobs`] returns them.
#[must_use = "an append is acknowledged only when its answer is awaited"]
#[derive(Debug)]
pub struct Pending(PendingState);

#[derive(Debug)]
enum PendingState {
    Queued(tokio::sync::oneshot::Receiver<Result<Vec<Appended>, StoreError>>),
    Ready(Option<Result<Vec<Appended>, StoreError>>),
}

impl Pending {
    pub(crate) fn queued(
        answer: tokio::sync::oneshot::Receiver<Result<Vec<Appended>, StoreError>>,
    ) -> Pending {
        Pending(PendingState::Queued(answer))
    }

    pub(crate) fn ready(answer: Result<Vec<Appended>, StoreError>) -> Pending {
        Pending(PendingState::Ready(Some(answer)))
    }
}

impl std::future::Future for Pending {
    type Output = Result<Vec<Appended>, StoreError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        match &mut self.0 {
            PendingState::Queued(answer) => match std::pin::Pin::new(answer).poll(cx) {
                Poll::Ready(Ok(answer)) => Poll::Ready(answer),
                Poll::Ready(Err(_)) => Poll::Ready(Err(StoreError::writer_gone())),
                Poll::Pending => Poll::Pending,
            },
            PendingState::Ready(answer) => Poll::Ready(answer.take().unwrap_or_else(|| {
                Err(StoreError::InvalidRequest("polled after its answer".into()))
            })),
        }
    }
}

/// A filter over the log. All conditions must hold; results are in index order.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub kind: Option<Kind>,
    pub subject: Option<Subject>,
    /// recorded_at >= since
    pub since: Option<Timestamp>,
    /// recorded_at < until
    pub until: Option<Timestamp>,
    /// Only records with index > after (keyset pagination).
    pub after: Option<LogIndex>,
    pub limit: u32,
}

/// `visit(idx, leaf, leaf_hash)` over raw stored rows.
pub type LeafVisitor<'a> = dyn FnMut(u64, &[u8], &[u8]) + 'a;

/// A backend for the evidence log. Synchronous on purpose: the embedded backend is a thread
/// that owns its connection; async surfaces call it through `spawn_blocking`, except to append,
/// which they queue with [`Store::append_queued`] and await (a webhook delivery then holds no
/// blocking thread while the writer commits). (`PgStore` runs its async client on a runtime of
/// its own and can be called from any thread.)
pub trait Store: Send + Sync {
    /// The log's origin line (the first line of its checkpoints).
    fn origin(&self) -> &str;
    /// The key that signs this log's checkpoints.
    fn verifier(&self) -> &VerifierKey;

    /// Appends records as one atomic, durable batch (all or none) and returns, in order, each
    /// record's index. Returns only once the batch and its signed checkpoint are fsync'd.
    fn append(&self, records: Vec<NewRecord>) -> Result<Vec<Appended>, StoreError> {
        self.append_with_blobs(records, Vec::new())
    }

    /// Like [`Store::append`], and stores `blobs` (raw inputs the records were derived from,
    /// content-addressed) in the same durable batch: a record is never present without the raw
    /// input it cites.
    fn append_with_blobs(
        &self,
        records: Vec<NewRecord>,
        blobs: Vec<Blob>,
    ) -> Result<Vec<Appended>, StoreError>;

    /// [`Store::append_with_blobs`] for async callers: queues the batch and returns at once;
    /// the [`Pending`] resolves to the same answer once the batch is durable. An async caller
    /// awaits it instead of holding a blocking thread while the writer commits.
    fn append_queued(&self, records: Vec<NewRecord>, blobs: Vec<Blob>) -> Pending;

    /// Number of records covered by the latest signed checkpoint.
    fn size(&self) -> Result<u64, StoreError>;
    fn record(&self, index: LogIndex) -> Result<Option<StoredRecord>, StoreError>;
    fn query(&self, query: &Query) -> Result<Vec<StoredRecord>, StoreError>;
    fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every record that names `subject`, in index order: as one of its subjects (`None`) or as
    /// the target of one of its links (`Some(rel)`).
    fn mentions(&self, subject: &Subject) -> Result<Vec<(LogIndex, Option<Rel>)>, StoreError>;

    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError>;
    fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError>;

    /// Root hash of the tree of the first `size` records (size <= size()).
    fn root(&self, size: u64) -> Result<Hash, StoreError>;
    /// Audit path for `index` in the tree of `size` (which must have a checkpoint or be <= size()).
    fn inclusion_proof(&self, index: LogIndex, size: u64) -> Result<Vec<Hash>, StoreError>;
    /// [`Store::inclusion_proof`] for each of `indices`, in order, all in the tree of `size`:
    /// for exporting many records' proofs at once (a dossier), which a backend may read in one
    /// snapshot and with shared nodes read once. Refused whole if any one would be.
    fn inclusion_proofs(
        &self,
        indices: &[LogIndex],
        size: u64,
    ) -> Result<Vec<Vec<Hash>>, StoreError> {
        indices
            .iter()
            .map(|i| self.inclusion_proof(*i, size))
            .collect()
    }
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError>;

    /// Raw rows with idx > after, in idx order, at most `limit`: for verification only.
    fn raw_leaves(&self, after: Option<u64>, limit: u32) -> Result<Vec<RawLeaf>, StoreError> {
        let mut out = Vec::new();
        self.scan_leaves(after, limit, &mut |idx, leaf, hash| {
            out.push(RawLeaf {
                idx,
                leaf: leaf.to_vec(),
                leaf_hash: hash.to_vec(),
            })
        })?;
        Ok(out)
    }
    /// Visits raw rows with idx > after, in idx order, at most `limit`, without copying them
    /// (`visit(idx, leaf, leaf_hash)`); returns how many were visited. Verification hashes
    /// straight out of the backend's buffers.
    fn scan_leaves(
        &self,
        after: Option<u64>,
        limit: u32,
        visit: &mut LeafVisitor<'_>,
    ) -> Result<u32, StoreError>;
    /// Raw checkpoint rows with size > after, in size order, at most `limit`.
    fn raw_checkpoints(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<RawCheckpoint>, StoreError>;
    /// Stored subtree hashes at `level` for indices [from, to), raw, for verification.
    fn raw_nodes(&self, level: u8, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Levels (>= 1) at which this backend stores subtree hashes (`raw_nodes` returns them;
    /// `verify_log` compares them with the recomputed tree).
    ///
    /// | backend | level 0 | stored levels >= 1 | other levels |
    /// |---|---|---|---|
    /// | [`SqliteStore`] | `records.leaf_hash` | even (`tree_nodes`) | odd: hash of two stored children |
    /// | [`PgStore`] | `records.leaf_hash` | even (`tree_nodes`) | odd: hash of two stored children |
    fn stored_node_level(&self, level: u8) -> bool;
}

/// A record the log's latest checkpoint covers but whose row is gone: the log was altered
/// behind the store's back (a missing record is "no such record" only past the log's end).
pub(crate) fn missing_record(
    index: LogIndex,
    size: u64,
) -> Result<Option<StoredRecord>, StoreError> {
    if index.0 < size {
        return Err(gone(index.0, size));
    }
    Ok(None)
}

/// Record `index`, inside the signed log of `size` records, has no row.
pub(crate) fn gone(index: u64, size: u64) -> StoreError {
    StoreError::Corrupt {
        index,
        reason: format!(
            "record {index} is missing, but the signed log has {size} records (run `trailmark verify`)"
        ),
    }
}

/// The rows a query that names no subject and no kind read: one run of consecutive indices
/// from `first` on, up to `end` (exclusive) unless `limit` rows stop it first. A record
/// missing from that run (deleted behind the store's back) is an error naming it, not a
/// shorter answer. `first` or `end` is `None` where the backend cannot tell it from the same
/// snapshot; the run is then checked between the rows it has.
pub(crate) fn check_run(
    rows: &[StoredRecord],
    first: Option<u64>,
    end: Option<u64>,
    limit: u32,
    size: u64,
) -> Result<(), StoreError> {
    let mut want = first.or_else(|| rows.first().map(|r| r.record.index.0));
    for r in rows {
        let at = r.record.index.0;
        if let Some(w) = want
            && at != w
        {
            return Err(gone(w, size));
        }
        want = Some(at + 1);
    }
    if rows.len() < limit as usize
        && let (Some(w), Some(end)) = (want, end)
        && w < end
    {
        return Err(gone(w, size));
    }
    Ok(())
}

/// The argument rules every backend's `inclusion_proof` applies before reading the tree.
pub(crate) fn check_inclusion_args(index: LogIndex, size: u64) -> Result<(), StoreError> {
    if index.0 >= size {
        return Err(StoreError::InvalidRequest(format!(
            "index {index} is not in a tree of size {size}"
        )));
    }
    Ok(())
}

/// [`check_inclusion_args`] for every index of a batch, which is refused whole; the indices as
/// the log crate takes them.
pub(crate) fn check_inclusion_batch(
    indices: &[LogIndex],
    size: u64,
) -> Result<Vec<u64>, StoreError> {
    indices
        .iter()
        .map(|i| check_inclusion_args(*i, size).map(|()| i.0))
        .collect()
}

/// The argument rules every backend's `consistency_proof` applies before reading the tree.
pub(crate) fn check_consistency_args(old: u64, new: u64) -> Result<(), StoreError> {
    if old == 0 || old > new {
        return Err(StoreError::InvalidRequest(format!(
            "a consistency proof needs 0 < from <= to (got from {old}, to {new})"
        )));
    }
    Ok(())
}
