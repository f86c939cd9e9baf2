//! The embedded backend: one SQLite database in WAL mode.
//!
//! One writer thread owns the only read-write connection and group-commits: it drains every
//! append request waiting in its queue into one transaction (records, tree nodes, a slice of a
//! complete epoch's subject index — see `open_epoch` — and a signed checkpoint), commits it
//! with `synchronous=FULL` (one fsync of the WAL), and only then answers the callers. Readers
//! use their own read-only connections, so reads never wait for a commit and can never write.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use trailmark_log::{
    Checkpoint, Frontier, Hash, NodeId, NodeSource, SignerKey, VerifierKey, leaf_hash, node_hash,
};
use trailmark_model::{Blob, Digest, LogIndex, NewRecord, Rel, Subject, Timestamp, decode_leaf};

use crate::cache::NodeCache;
use crate::error::StoreError;
use crate::migrate::{SQLITE, migrate};
use crate::open_epoch::{
    CLOSE_CHUNK, CLOSE_ROWS_MIN, EPOCH_BITS, OpenEpoch, Row, closed_end, insert_rows, mark_closed,
    rows_of,
};
use crate::writer::{Job, WriterHandle, check_signer};
use crate::{Appended, Query, RawCheckpoint, SignedCheckpoint, Store, StoredRecord};

/// Most records the writer puts in one transaction. Bigger batches amortize the fsync further
/// but hold callers longer; 10k keeps a batch's commit well under a second.
pub const DEFAULT_MAX_BATCH: usize = 10_000;

/// A Trailmark log in one SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    origin: String,
    verifier: VerifierKey,
    writer: Option<WriterHandle>,
    readers: Mutex<Vec<Connection>>,
    nodes: NodeCache,
    /// The subject index of the records after the closed epochs (see `open_epoch`), shared
    /// with the writer, which adds what it commits.
    open: Arc<Mutex<OpenEpoch>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("origin", &self.origin)
            .field("read_only", &self.writer.is_none())
            .finish()
    }
}

fn err(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    StoreError::backend(op)
}

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidRequest(format!("{v} is out of range")))
}

fn hash_from(bytes: &[u8], what: &str, index: u64) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).map_err(|_| StoreError::Corrupt {
        index,
        reason: format!("{what} is {} bytes, not 32", bytes.len()),
    })
}

fn open_rw(path: &Path, create: bool) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(err("opening the database"))?;
    // WAL lets readers run beside the writer; synchronous=FULL makes every commit fsync the WAL,
    // which is what "acknowledged means durable" needs.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err("enabling WAL"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err("setting synchronous=FULL"))?;
    // A WAL started over (see `WriterState::restart_wal`) is cut back to this on its next
    // commit, so one burst does not leave a huge file behind; above the restart length, so a
    // steady WAL is reused, not cut and grown again.
    conn.pragma_update(None, "journal_size_limit", 160i64 << 20)
        .map_err(err("setting the WAL size limit"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err("enabling foreign keys"))?;
    // 64 MiB of page cache: the subject and kind indexes are inserted at scattered keys, and
    // re-reading their pages from the OS was the largest cost of an append. The writer sizes
    // its own cache to the database afterwards (see `writer_cache_kib`).
    conn.pragma_update(None, "cache_size", -CACHE_KIB_LARGE)
        .map_err(err("setting the cache size"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(err("setting the busy timeout"))?;
    Ok(conn)
}

fn open_ro(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err("opening a read connection"))?;
    // Proofs read a handful of scattered pages; memory-mapping the file turns those reads from
    // syscalls into page-cache hits, and a larger cache keeps the upper tree levels resident.
    conn.pragma_update(None, "mmap_size", 1i64 << 34)
        .map_err(err("setting mmap_size"))?;
    conn.pragma_update(None, "cache_size", -32_768)
        .map_err(err("setting the cache size"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(err("setting the busy timeout"))?;
    Ok(conn)
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(err("reading store metadata"))
}

/// Brings a writer's `frontier` and `last_recorded` to the stored head: the latest signed
/// checkpoint. Cheap when they are there already (this writer made the last commit: one
/// primary-key lookup); otherwise another writer appended, and the frontier is rebuilt from the
/// O(log n) stored nodes of the head's size, which must reproduce the signed root (appending to
/// a tree that disagrees with its checkpoint would bury the damage). Runs inside the append's
/// write transaction, so the head cannot move before the commit.
fn refresh(
    conn: &Connection,
    frontier: &mut Frontier,
    last_recorded: &mut Timestamp,
) -> Result<(), StoreError> {
    let latest = latest_checkpoint(conn)?;
    let size = latest.as_ref().map_or(0, |c| c.size);
    // Checkpoint sizes strictly increase, so an equal size means no other writer committed.
    if latest.is_some() && frontier.size() == size {
        return Ok(());
    }
    // The records must end where the checkpoint does (index size - 1): rowid lookups, so the
    // check stays O(log n) on a log of any size.
    let last: Option<(i64, i64)> = conn
        .query_row(
            "SELECT idx, recorded_us FROM records ORDER BY idx DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(err("reading the last record"))?;
    let records_end = last.map_or(0, |(idx, _)| idx as u64 + 1);
    if records_end != size {
        return Err(StoreError::Damaged(format!(
            "the log's records end at {records_end} but its latest checkpoint covers {size}; refusing to append (run `trailmark verify`)"
        )));
    }
    let ids = Frontier::ids(size);
    let hashes = ConnNodes { conn, cache: None }.nodes(&ids)?;
    let rebuilt = Frontier::from_parts(size, hashes)
        .map_err(|e| StoreError::Damaged(format!("cannot rebuild the tree frontier: {e}")))?;
    if let Some(cp) = &latest
        && rebuilt.root() != cp.root
    {
        return Err(StoreError::Damaged(format!(
            "the stored tree does not match the latest checkpoint (size {size}); refusing to append (run `trailmark verify`)"
        )));
    }
    *frontier = rebuilt;
    // recorded_at never decreases along the log, so the last record holds the latest time.
    if let Some(t) = last
        .and_then(|(_, us)| jiff::Timestamp::from_microsecond(us).ok())
        .map(Timestamp)
    {
        *last_recorded = std::cmp::max(*last_recorded, t);
    }
    Ok(())
}

/// Reads subtree hashes from a connection. Level 0 is `records.leaf_hash`, even levels are
/// `tree_nodes`, an odd level is the hash of its two (stored) children.
struct ConnNodes<'a> {
    conn: &'a Connection,
    cache: Option<&'a NodeCache>,
}

impl ConnNodes<'_> {
    /// One stored hash by primary-key equality. (Range predicates with bound parameters made
    /// SQLite re-prepare the statement on every execution — STAT4 treats such bindings as
    /// plan-relevant — which was most of a proof's cost.)
    fn even(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        if let Some(h) = self.cache.and_then(|c| c.get(level, index)) {
            return Ok(h);
        }
        let h = self.even_uncached(level, index)?;
        if let Some(c) = self.cache {
            c.put(level, index, h);
        }
        Ok(h)
    }

    fn even_uncached(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        let i = to_i64(index)?;
        let row: Option<Vec<u8>> = if level == 0 {
            self.conn
                .prepare_cached("SELECT leaf_hash FROM records WHERE idx = ?1")
                .and_then(|mut st| st.query_row([i], |r| r.get(0)).optional())
                .map_err(err("reading a leaf hash"))?
        } else {
            self.conn
                .prepare_cached("SELECT hash FROM tree_nodes WHERE level = ?1 AND idx = ?2")
                .and_then(|mut st| st.query_row(params![level, i], |r| r.get(0)).optional())
                .map_err(err("reading a tree node"))?
        };
        let bytes = row.ok_or_else(|| StoreError::Corrupt {
            index: index << level,
            reason: format!("tree hash at level {level} #{index} is missing"),
        })?;
        hash_from(&bytes, "a stored tree hash", index << level)
    }
}

impl NodeSource for ConnNodes<'_> {
    type Error = StoreError;

    fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        ids.iter()
            .map(|id| {
                if id.level % 2 == 0 {
                    self.even(id.level, id.index)
                } else {
                    let left = self.even(id.level - 1, id.index * 2)?;
                    let right = self.even(id.level - 1, id.index * 2 + 1)?;
                    Ok(node_hash(&left, &right))
                }
            })
            .collect()
    }
}

fn proof_err(e: trailmark_log::ProofError<StoreError>) -> StoreError {
    match e {
        trailmark_log::ProofError::Source(e) => e,
        other => StoreError::InvalidRequest(other.to_string()),
    }
}

fn latest_checkpoint(conn: &Connection) -> Result<Option<SignedCheckpoint>, StoreError> {
    let row: Option<(i64, Vec<u8>, String)> = conn
        .prepare_cached("SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1")
        .and_then(|mut st| {
            st.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(err("reading the latest checkpoint"))?;
    row.map(|(size, root, note)| {
        Ok(SignedCheckpoint {
            size: size as u64,
            root: hash_from(&root, "a checkpoint root", size as u64)?,
            note,
        })
    })
    .transpose()
}

/// The first index in [0, size) whose recorded_us >= us (size if none), by binary search over
/// the rowid order: valid because the writer never lets recorded_at decrease.
fn first_recorded_at_or_after(conn: &Connection, us: i64, size: u64) -> Result<u64, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT recorded_us FROM records WHERE idx = ?1")
        .map_err(err("searching by time"))?;
    let (mut lo, mut hi) = (0u64, size);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at: i64 = st
            .query_row([to_i64(mid)?], |r| r.get(0))
            .map_err(err("searching by time"))?;
        if at >= us {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}

impl SqliteStore {
    /// Creates a new, empty log in a new database file at `path`.
    pub fn create(path: &Path, origin: &str, signer: SignerKey) -> Result<SqliteStore, StoreError> {
        if path.exists() {
            return Err(StoreError::InvalidRequest(format!(
                "{} already exists; refusing to create a log over it",
                path.display()
            )));
        }
        if origin.is_empty() || origin.contains('\n') || origin.trim() != origin {
            return Err(StoreError::InvalidRequest(format!(
                "origin {origin:?} must be one non-empty line"
            )));
        }
        let mut conn = open_rw(path, true)?;
        migrate(&mut conn, SQLITE)?;
        let verifier = signer.verifier();
        let tx = conn.transaction().map_err(err("initialising the store"))?;
        for (k, v) in [
            ("origin", origin.to_owned()),
            ("verifier_key", verifier.to_string()),
            ("created_at", Timestamp::now().to_string()),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )
            .map_err(err("initialising the store"))?;
        }
        tx.commit().map_err(err("initialising the store"))?;
        drop(conn);
        SqliteStore::open(path, signer)
    }

    /// Opens an existing log for appending. `signer` must be the key the log was created with.
    pub fn open(path: &Path, signer: SignerKey) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, Some(signer), DEFAULT_MAX_BATCH)
    }

    /// Writes a consistent copy of the log to `dest`, a file that must not exist yet: the
    /// database as of one read transaction (SQLite's `VACUUM INTO`), so appends may go on
    /// meanwhile, from this process or another. The copy is fsync'd, with its directory, before
    /// this returns. It holds the log, its checkpoints and its indexes, never the signing key.
    pub fn snapshot_to(&self, dest: &Path) -> Result<(), StoreError> {
        if dest.exists() {
            return Err(StoreError::InvalidRequest(format!(
                "{} already exists; a snapshot is written to a new file",
                dest.display()
            )));
        }
        let dest_text = dest.to_str().ok_or_else(|| {
            StoreError::InvalidRequest(format!("{} is not a UTF-8 path", dest.display()))
        })?;
        // A connection of its own: VACUUM INTO cannot run inside the read transaction every
        // pooled read is.
        let conn = open_ro(&self.path)?;
        conn.execute("VACUUM INTO ?1", [dest_text])
            .map_err(err("writing a snapshot"))?;
        sync_file_and_dir(dest)
    }

    /// Opens an existing log for reading only (no signing key needed).
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, None, DEFAULT_MAX_BATCH)
    }

    /// Opens with an explicit maximum batch size (benchmarks and tests).
    pub fn open_with(
        path: &Path,
        signer: Option<SignerKey>,
        max_batch: usize,
    ) -> Result<SqliteStore, StoreError> {
        if !path.is_file() {
            return Err(StoreError::InvalidRequest(format!(
                "no Trailmark store at {} (run `trailmark init` first)",
                path.display()
            )));
        }
        let mut conn = open_rw(path, false)?;
        migrate(&mut conn, SQLITE)?;
        let origin = meta(&conn, "origin")?.ok_or_else(|| {
            StoreError::Incompatible("the database has no origin; it is not a Trailmark log".into())
        })?;
        let stored_key = meta(&conn, "verifier_key")?
            .ok_or_else(|| StoreError::Incompatible("the database has no verifier key".into()))?;
        let verifier = VerifierKey::parse(&stored_key).map_err(|e| {
            StoreError::Incompatible(format!("stored verifier key is invalid: {e}"))
        })?;

        let open = Arc::new(Mutex::new(OpenEpoch::new(0)));
        let writer = match signer {
            None => None,
            Some(signer) => {
                check_signer(&signer, &verifier)?;
                let state = WriterState::restore(conn, signer, origin.clone(), open.clone())?;
                // A second connection copies the WAL into the database file on the other core,
                // so commits only append to the WAL (see `WriterState::run`).
                let checkpointer = open_rw(path, false).ok();
                Some(WriterHandle::spawn("trailmark-log-writer", move |jobs| {
                    state.run(jobs, max_batch.max(1), checkpointer)
                })?)
            }
        };
        Ok(SqliteStore {
            path: path.to_owned(),
            origin,
            verifier,
            writer,
            readers: Mutex::new(Vec::new()),
            nodes: NodeCache::default(),
            open,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled read-only connection.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .readers
            .lock()
            .map_err(|_| StoreError::Backend {
                op: "taking a read connection",
                message: "pool lock poisoned".into(),
            })?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_ro(&self.path)?,
        };
        // One read transaction per call: every statement sees the same snapshot (a proof's
        // size check and its node reads agree), and the WAL read lock is taken once.
        let out = conn
            .prepare_cached("BEGIN")
            .and_then(|mut st| st.execute([]))
            .map_err(err("starting a read"))
            .and_then(|_| f(&conn));
        let _ = conn
            .prepare_cached("COMMIT")
            .and_then(|mut st| st.execute([]));
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < 8
        {
            pool.push(conn);
        }
        out
    }

    /// Runs a tree computation over the stored (and cached) subtree hashes, in one read
    /// snapshot, after checking that the tree of `size` exists.
    fn with_tree<T>(
        &self,
        size: u64,
        f: impl FnOnce(&mut ConnNodes<'_>) -> Result<T, trailmark_log::ProofError<StoreError>>,
    ) -> Result<T, StoreError> {
        self.read(|c| {
            let current = latest_checkpoint(c)?.map_or(0, |c| c.size);
            if size > current {
                return Err(StoreError::InvalidRequest(format!(
                    "tree size {size} is larger than the log ({current} records)"
                )));
            }
            f(&mut ConnNodes {
                conn: c,
                cache: Some(&self.nodes),
            })
            .map_err(proof_err)
        })
    }

    /// The mentions of `subject` from index `from` (where the closed epochs end in the snapshot
    /// of `c`) to `size`, as [`OpenEpoch::lookup`] gives them.
    fn open_mentions(
        &self,
        c: &Connection,
        from: u64,
        size: u64,
        subject: &Subject,
    ) -> Result<Vec<(u64, Option<String>)>, StoreError> {
        let (ty, id) = (subject.ty.as_str(), subject.id.as_str());
        if let Ok(mut g) = self.open.lock() {
            g.advance(from);
            if g.start() == from {
                g.catch_up(c, size)?;
                return Ok(g.lookup(ty, id, size));
            }
        }
        // This snapshot is older than the epochs the shared index has moved on to.
        let mut own = OpenEpoch::new(from);
        own.catch_up(c, size)?;
        Ok(own.lookup(ty, id, size))
    }

    fn stored(idx: i64, leaf: Vec<u8>, hash: Vec<u8>) -> Result<StoredRecord, StoreError> {
        let index = idx as u64;
        let record = decode_leaf(&leaf).map_err(|e| StoreError::Corrupt {
            index,
            reason: e.to_string(),
        })?;
        if record.index.0 != index {
            return Err(StoreError::Corrupt {
                index,
                reason: format!("row {index} holds the record of index {}", record.index),
            });
        }
        Ok(StoredRecord {
            record,
            leaf_hash: hash_from(&hash, "the leaf hash", index)?,
            leaf,
        })
    }
}

impl Store for SqliteStore {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    fn append_with_blobs(
        &self,
        records: Vec<NewRecord>,
        blobs: Vec<Blob>,
    ) -> Result<Vec<Appended>, StoreError> {
        self.writer
            .as_ref()
            .ok_or(StoreError::ReadOnly)?
            .submit(records, blobs)
    }

    fn append_queued(&self, records: Vec<NewRecord>, blobs: Vec<Blob>) -> crate::Pending {
        match &self.writer {
            Some(w) => w.submit_async(records, blobs),
            None => crate::Pending::ready(Err(StoreError::ReadOnly)),
        }
    }

    fn size(&self) -> Result<u64, StoreError> {
        self.read(|c| Ok(latest_checkpoint(c)?.map_or(0, |c| c.size)))
    }

    fn record(&self, index: LogIndex) -> Result<Option<StoredRecord>, StoreError> {
        let idx = to_i64(index.0)?;
        self.read(|c| {
            let row: Option<(i64, Vec<u8>, Vec<u8>)> = c
                .prepare_cached("SELECT idx, leaf, leaf_hash FROM records WHERE idx = ?1")
                .and_then(|mut st| {
                    st.query_row([idx], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()
                })
                .map_err(err("reading a record"))?;
            match row {
                Some((i, l, h)) => Self::stored(i, l, h).map(Some),
                // Same read transaction: the checkpoint and the row are of one snapshot.
                None => crate::missing_record(index, latest_checkpoint(c)?.map_or(0, |c| c.size)),
            }
        })
    }

    fn query(&self, q: &Query) -> Result<Vec<StoredRecord>, StoreError> {
        let mut sql = String::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        // By subject, the index drives and its rows are kept when their record's row is gone
        // (LEFT JOIN): such a row is reported, not skipped.
        let idx = if let Some(s) = &q.subject {
            // One index seek per epoch: the IN (subquery) drives seeks on the epoch prefix.
            sql.push_str(
                "WITH RECURSIVE epochs(e) AS (SELECT 0 UNION ALL SELECT e + 1 FROM epochs WHERE e < ?) \
                 SELECT s.idx, r.leaf, r.leaf_hash FROM record_subjects s LEFT JOIN records r ON r.idx = s.idx \
                 WHERE s.epoch IN (SELECT e FROM epochs) AND s.type = ? AND s.id = ? AND s.rel = ''",
            );
            args.push(rusqlite::types::Value::Null); // replaced below with the last epoch
            args.push(s.ty.to_string().into());
            args.push(s.id.clone().into());
            "s.idx"
        } else if let Some(k) = &q.kind {
            // By kind alone, the kind table drives in the same way.
            sql.push_str(
                "SELECT k.idx, r.leaf, r.leaf_hash FROM record_kinds k LEFT JOIN records r ON r.idx = k.idx \
                 WHERE k.kind = ?",
            );
            args.push(k.to_string().into());
            "k.idx"
        } else {
            sql.push_str("SELECT r.idx, r.leaf, r.leaf_hash FROM records r WHERE 1");
            "r.idx"
        };
        sql.push_str(&format!(" AND {idx} > ?"));
        args.push(q.after.map_or(-1, |a| a.0 as i64).into());
        if let (Some(k), Some(_)) = (&q.kind, &q.subject) {
            sql.push_str(" AND (r.kind = ? OR r.idx IS NULL)");
            args.push(k.to_string().into());
        }
        sql.push_str(&format!(
            " AND {idx} >= ? AND {idx} < ? ORDER BY {idx} LIMIT ?"
        ));
        self.read(|c| {
            // recorded_us never decreases along idx, so a time window is an index range.
            let size = latest_checkpoint(c)?.map_or(0, |c| c.size);
            let lo = match q.since {
                Some(t) => first_recorded_at_or_after(c, t.as_micros(), size)?,
                None => 0,
            };
            let hi = match q.until {
                Some(t) => first_recorded_at_or_after(c, t.as_micros(), size)?,
                None => size,
            };
            let mut args = args;
            // By subject, the closed epochs are in the index; the rest is answered below.
            let open = if q.subject.is_some() {
                closed_end(c)?
            } else {
                size
            };
            let closed_hi = if q.subject.is_some() {
                args[0] = to_i64(open >> EPOCH_BITS)?.into();
                hi.min(open)
            } else {
                hi
            };
            args.push(to_i64(lo)?.into());
            args.push(to_i64(closed_hi)?.into());
            args.push(i64::from(q.limit).into());
            let mut st = c.prepare_cached(&sql).map_err(err("querying records"))?;
            type Row = (i64, Option<Vec<u8>>, Option<Vec<u8>>);
            let rows: Vec<Row> = st
                .query_map(rusqlite::params_from_iter(args), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .and_then(|rows| rows.collect())
                .map_err(err("querying records"))?;
            let mut records = rows
                .into_iter()
                .map(|row| match row {
                    (i, Some(l), Some(h)) => Self::stored(i, l, h),
                    (i, _, _) => Err(crate::gone(i as u64, size)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(subject) = &q.subject
                && records.len() < q.limit as usize
                && hi > open
            {
                let first = lo.max(open).max(q.after.map_or(0, |a| a.0 + 1));
                let kind = q.kind.as_ref().map(|k| k.to_string());
                let mut st = c
                    .prepare_cached("SELECT leaf, leaf_hash, kind FROM records WHERE idx = ?1")
                    .map_err(err("querying records"))?;
                for (i, rel) in self.open_mentions(c, open, size, subject)? {
                    if records.len() >= q.limit as usize {
                        break;
                    }
                    if i < first || i >= hi {
                        continue;
                    }
                    match rel {
                        None => return Err(crate::gone(i, size)),
                        Some(rel) if !rel.is_empty() => continue,
                        Some(_) => {}
                    }
                    let row: Option<(Vec<u8>, Vec<u8>, String)> = st
                        .query_row([to_i64(i)?], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()
                        .map_err(err("querying records"))?;
                    let Some((l, h, k)) = row else {
                        return Err(crate::gone(i, size));
                    };
                    if kind.as_ref().is_none_or(|want| *want == k) {
                        records.push(Self::stored(to_i64(i)?, l, h)?);
                    }
                }
            }
            if q.subject.is_none() && q.kind.is_none() {
                // Same read transaction: the window and the rows are of one snapshot.
                let first = lo.max(q.after.map_or(0, |a| a.0 + 1));
                crate::check_run(&records, Some(first), Some(hi), q.limit, size)?;
            }
            Ok(records)
        })
    }

    fn mentions(&self, subject: &Subject) -> Result<Vec<(LogIndex, Option<Rel>)>, StoreError> {
        self.read(|c| {
            let size = latest_checkpoint(c)?.map_or(0, |c| c.size);
            let open = closed_end(c)?;
            let mut st = c
                .prepare_cached(
                    "WITH RECURSIVE epochs(e) AS (SELECT 0 UNION ALL SELECT e + 1 FROM epochs WHERE e < ?1) \
                     SELECT idx, rel FROM record_subjects WHERE epoch IN (SELECT e FROM epochs) AND type = ?2 AND id = ?3 \
                     AND idx < ?4 ORDER BY idx, rel",
                )
                .map_err(err("looking up a subject"))?;
            // The closed epochs from the index, the records after them from memory.
            let mut rows: Vec<(i64, String)> = st
                .query_map(
                    params![to_i64(open >> EPOCH_BITS)?, subject.ty.as_str(), subject.id, to_i64(open)?],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .and_then(|rows| rows.collect())
                .map_err(err("looking up a subject"))?;
            for (i, rel) in self.open_mentions(c, open, size, subject)? {
                rows.push((to_i64(i)?, rel.ok_or_else(|| crate::gone(i, size))?));
            }
            rows.into_iter()
                .map(|(idx, rel)| {
                    let rel = if rel.is_empty() {
                        None
                    } else {
                        Some(Rel::parse(&rel).map_err(|e| StoreError::Corrupt {
                            index: idx as u64,
                            reason: format!("indexed rel {rel:?} {e}"),
                        })?)
                    };
                    Ok((LogIndex(idx as u64), rel))
                })
                .collect()
        })
    }

    fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let bytes: Option<Vec<u8>> = self.read(|c| {
            c.prepare_cached("SELECT bytes FROM blobs WHERE digest = ?1")
                .and_then(|mut st| st.query_row([digest.0.as_slice()], |r| r.get(0)).optional())
                .map_err(err("reading a blob"))
        })?;
        // Content addressing is only worth something if it is checked on the way out.
        match bytes {
            Some(b) if Digest::of(&b) != *digest => Err(StoreError::Corrupt {
                index: 0,
                reason: format!("blob {digest} does not hash to its address"),
            }),
            other => Ok(other),
        }
    }

    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.read(latest_checkpoint)
    }

    fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        let s = to_i64(size)?;
        self.read(|c| {
            let row: Option<(Vec<u8>, String)> = c
                .prepare_cached("SELECT root, note FROM checkpoints WHERE size = ?1")
                .and_then(|mut st| st.query_row([s], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(err("reading a checkpoint"))?;
            row.map(|(root, note)| {
                Ok(SignedCheckpoint {
                    size,
                    root: hash_from(&root, "a checkpoint root", size)?,
                    note,
                })
            })
            .transpose()
        })
    }

    fn root(&self, size: u64) -> Result<Hash, StoreError> {
        self.with_tree(size, |nodes| trailmark_log::root(size, nodes))
    }

    fn inclusion_proof(&self, index: LogIndex, size: u64) -> Result<Vec<Hash>, StoreError> {
        crate::check_inclusion_args(index, size)?;
        self.with_tree(size, |nodes| {
            trailmark_log::inclusion_proof(index.0, size, nodes)
        })
    }

    /// One read transaction for all of them, each node read once.
    fn inclusion_proofs(
        &self,
        indices: &[LogIndex],
        size: u64,
    ) -> Result<Vec<Vec<Hash>>, StoreError> {
        let indices = crate::check_inclusion_batch(indices, size)?;
        self.with_tree(size, |nodes| {
            trailmark_log::inclusion_proofs(&indices, size, nodes)
        })
    }

    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        crate::check_consistency_args(old, new)?;
        self.with_tree(new, |nodes| {
            trailmark_log::consistency_proof(old, new, nodes)
        })
    }

    fn scan_leaves(
        &self,
        after: Option<u64>,
        limit: u32,
        visit: &mut crate::LeafVisitor<'_>,
    ) -> Result<u32, StoreError> {
        let after = after.map_or(Ok(-1), to_i64)?;
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT idx, leaf, leaf_hash FROM records WHERE idx > ?1 ORDER BY idx LIMIT ?2",
                )
                .map_err(err("scanning records"))?;
            let mut rows = st
                .query(params![after, limit])
                .map_err(err("scanning records"))?;
            let mut n = 0;
            while let Some(row) = rows.next().map_err(err("scanning records"))? {
                let idx: i64 = row.get(0).map_err(err("scanning records"))?;
                // A tampered row may hold any type; read bytes where there are bytes.
                let bytes = |i: usize| -> Result<&[u8], StoreError> {
                    match row.get_ref(i).map_err(err("scanning records"))? {
                        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => {
                            Ok(b)
                        }
                        _ => Ok(&[]),
                    }
                };
                visit(idx as u64, bytes(1)?, bytes(2)?);
                n += 1;
            }
            Ok(n)
        })
    }

    fn raw_checkpoints(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<RawCheckpoint>, StoreError> {
        let after = after.map_or(Ok(-1), to_i64)?;
        self.read(|c| {
            let mut st = c
                .prepare_cached("SELECT size, root, note FROM checkpoints WHERE size > ?1 ORDER BY size LIMIT ?2")
                .map_err(err("scanning checkpoints"))?;
            st.query_map(params![after, limit], |r| {
                Ok(RawCheckpoint {
                    size: r.get::<_, i64>(0)? as u64,
                    root: r.get(1)?,
                    note: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(err("scanning checkpoints"))
        })
    }

    fn raw_nodes(&self, level: u8, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let (from, to) = (to_i64(from)?, to_i64(to)?);
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT idx, hash FROM tree_nodes WHERE level = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx",
                )
                .map_err(err("scanning tree nodes"))?;
            st.query_map(params![level, from, to], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(err("scanning tree nodes"))
        })
    }

    fn stored_node_level(&self, level: u8) -> bool {
        level > 0 && level.is_multiple_of(2)
    }
}

/// The writer thread's state: the only read-write connection and the tree's right frontier.
struct WriterState {
    conn: Connection,
    signer: SignerKey,
    origin: String,
    frontier: Frontier,
    last_recorded: Timestamp,
    /// The writer's page cache as last set, in KiB (see [`writer_cache_kib`]).
    cache_kib: i64,
    /// The open epochs' subject index, shared with the store's readers.
    open: Arc<Mutex<OpenEpoch>>,
    /// The rows of the epoch being closed, sorted, and how many are written.
    closing: Option<Closing>,
}

/// A complete epoch's subject-index rows, written a slice per commit.
struct Closing {
    start: u64,
    rows: Vec<Row>,
    next: usize,
}

/// The sorted rows of the complete epoch starting at `start`, in a transaction that appends
/// `added` from index `committed` on: from the shared index where it has them, else from the
/// stored leaves, and from `added`.
fn epoch_rows(
    tx: &Connection,
    open: &Mutex<OpenEpoch>,
    start: u64,
    committed: u64,
    added: &[trailmark_model::Record],
) -> Result<Vec<Row>, StoreError> {
    let end = start + (1 << EPOCH_BITS);
    let stored_end = committed.min(end);
    let mut rows = Vec::new();
    let mut covered = start;
    if let Ok(g) = open.lock()
        && g.start() <= start
        && g.upto() > start
    {
        covered = g.upto().min(stored_end);
        rows = g.rows_in(start, covered)?;
    }
    if covered < stored_end {
        let mut gap = OpenEpoch::new(covered);
        gap.catch_up(tx, stored_end)?;
        rows.extend(gap.rows_in(covered, stored_end)?);
    }
    for (k, record) in added.iter().enumerate() {
        let idx = committed + k as u64;
        if (stored_end..end).contains(&idx) {
            rows.extend(rows_of(idx, record));
        }
    }
    rows.sort_unstable();
    rows.dedup();
    Ok(rows)
}

impl WriterState {
    /// Rebuilds the frontier from stored nodes and refuses to append to a log whose stored tree
    /// does not match its latest signed checkpoint (appending would bury the damage).
    fn restore(
        conn: Connection,
        signer: SignerKey,
        origin: String,
        open: Arc<Mutex<OpenEpoch>>,
    ) -> Result<WriterState, StoreError> {
        let mut frontier = Frontier::new();
        let mut last_recorded = Timestamp(jiff::Timestamp::UNIX_EPOCH);
        refresh(&conn, &mut frontier, &mut last_recorded)?;
        let mut state = WriterState {
            conn,
            signer,
            origin,
            frontier,
            last_recorded,
            cache_kib: CACHE_KIB_LARGE,
            open,
            closing: None,
        };
        state.size_cache();
        Ok(state)
    }

    /// Sets the page cache for the database's current size (see [`writer_cache_kib`]). Best
    /// effort: the cache's size changes what an append costs, never what it stores.
    fn size_cache(&mut self) {
        let Ok((pages, page_size)) = self.conn.query_row(
            "SELECT page_count, page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        ) else {
            return;
        };
        let kib = writer_cache_kib(pages, page_size);
        if kib != self.cache_kib && self.conn.pragma_update(None, "cache_size", -kib).is_ok() {
            self.cache_kib = kib;
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Job>, max_batch: usize, checkpointer: Option<Connection>) {
        // Without a checkpointer connection, SQLite's automatic checkpoints (inside commits)
        // stay on; with one, they move to its thread and commits only append to the WAL.
        let (kick, kicked) = mpsc::sync_channel::<()>(1);
        let background = checkpointer.is_some()
            && self
                .conn
                .pragma_update(None, "wal_autocheckpoint", 0)
                .is_ok();
        // The WAL's length in frames after each commit, from SQLite's WAL hook (installed
        // after the pragma above, which replaces any hook).
        let wal_frames = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
        let background = background && {
            let frames = wal_frames.clone();
            self.conn
                .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
                    frames.store(i64::from(pages), std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                }))
                .is_ok()
        };
        let wal = Wal {
            frames: wal_frames.clone(),
            copied: std::sync::atomic::AtomicI64::new(0),
            restart: std::sync::atomic::AtomicBool::new(false),
        };
        std::thread::scope(|scope| {
            if background && let Some(conn) = checkpointer {
                let wal = &wal;
                scope.spawn(move || {
                    use std::sync::atomic::Ordering::Relaxed;
                    // PASSIVE never blocks the writer or readers; kicks coalesce while one runs.
                    while kicked.recv().is_ok() {
                        let mut before = wal.copied.load(Relaxed);
                        while let Ok(Some(done)) = passive_checkpoint(&conn) {
                            wal.copied.store(done, Relaxed);
                            // While the writer waits to start the WAL over, one checkpoint
                            // follows another: each copies what was appended during the one
                            // before, so what is left for the writer to copy while its callers
                            // wait shrinks. Not when one made no progress (a reader holds the
                            // rest): the next kick tries again.
                            let left = wal.frames.load(Relaxed) - done;
                            if !wal.restart.load(Relaxed)
                                || left <= WAL_RESTART_GAP
                                || done <= before
                            {
                                break;
                            }
                            before = done;
                        }
                    }
                    let _ = passive_checkpoint(&conn);
                });
            }
            let wal = background.then_some(&wal);
            self.serve(&rx, max_batch, &kick, wal);
            drop(kick);
        });
    }

    /// Under sustained appends the background checkpoint never catches up with the writer, and
    /// SQLite starts a WAL over only when it finds every frame copied back: without this the
    /// WAL grew for as long as appends went on (half a gigabyte in a few seconds of webhook
    /// load), and every commit paid for growing the file. Once the WAL is past
    /// [`WAL_RESTART_FRAMES`] and the background checkpoint has caught up to within
    /// [`WAL_RESTART_GAP`] frames (or at twice the length), the writer itself copies back the
    /// rest — nothing is appended meanwhile, so it finishes — and its next transaction writes
    /// the WAL from the start again (unless a reader is still in it then; this runs again after
    /// the next commit). Callers wait through this copy and its fsync: with the rest left at
    /// up to 1,024 frames it took 20–35 ms under webhook load; with 256, 2–8 ms.
    fn restart_wal(&self) {
        let _ = passive_checkpoint(&self.conn);
    }

    fn serve(
        &mut self,
        rx: &mpsc::Receiver<Job>,
        max_batch: usize,
        kick: &mpsc::SyncSender<()>,
        wal: Option<&Wal>,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        // The WAL's length when the background checkpoint was last asked to run.
        let mut kicked_at = 0i64;
        let mut commits = 0u32;
        while let Ok(first) = rx.recv() {
            let mut count = first.records.len();
            let mut jobs = vec![first];
            while count < max_batch {
                match rx.try_recv() {
                    Ok(job) => {
                        count += job.records.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let saved = (self.frontier.clone(), self.last_recorded);
            let mut batches: Vec<Vec<NewRecord>> = jobs
                .iter_mut()
                .map(|j| std::mem::take(&mut j.records))
                .collect();
            let blobs: Vec<Blob> = jobs
                .iter_mut()
                .flat_map(|j| std::mem::take(&mut j.blobs))
                .collect();
            match self.commit(&mut batches, &blobs) {
                Ok(results) => {
                    for (job, result) in jobs.into_iter().zip(results) {
                        job.reply.send(Ok(result));
                    }
                    commits = commits.wrapping_add(1);
                    if commits.is_multiple_of(CACHE_RESIZE_COMMITS) {
                        self.size_cache();
                    }
                    // After the answers: the callers do not wait for this housekeeping.
                    if let Some(wal) = wal {
                        let (frames, copied) = (wal.frames.load(Relaxed), wal.copied.load(Relaxed));
                        if frames < kicked_at {
                            kicked_at = 0; // the WAL was started over
                            wal.restart.store(false, Relaxed);
                        }
                        // Checkpoint after enough new WAL content, not after every small
                        // commit: each checkpoint fsyncs the database file.
                        if frames >= kicked_at + WAL_KICK_FRAMES {
                            kicked_at = frames;
                            let _ = kick.try_send(());
                        }
                        // Past the length, the background checkpoint catches up (see `run`),
                        // and the WAL is started over once little is left to copy while
                        // callers wait; not later than at twice the length.
                        if frames >= WAL_RESTART_FRAMES {
                            if !wal.restart.swap(true, Relaxed) {
                                kicked_at = frames;
                                let _ = kick.try_send(());
                            }
                            if frames - copied <= WAL_RESTART_GAP
                                || frames >= 2 * WAL_RESTART_FRAMES
                            {
                                self.restart_wal();
                            }
                        }
                    }
                }
                Err(e) => {
                    // Nothing of the batch is in the database (the transaction rolled back), so
                    // the in-memory frontier goes back too.
                    (self.frontier, self.last_recorded) = saved;
                    for job in jobs {
                        job.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    fn commit(
        &mut self,
        batches: &mut [Vec<NewRecord>],
        blobs: &[Blob],
    ) -> Result<Vec<Vec<Appended>>, StoreError> {
        let WriterState {
            conn,
            signer,
            origin,
            frontier,
            last_recorded,
            cache_kib: _,
            open,
            closing,
        } = self;
        // IMMEDIATE takes the database's write lock before anything is read, so no other
        // writer can commit between the head read below and this transaction's commit.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("starting an append"))?;
        // Another process may have appended since this writer's last commit (a `trailmark`
        // command run beside `trailmark serve`): continue from the stored head, not from the
        // frontier this writer remembers.
        refresh(&tx, frontier, last_recorded)?;
        // recorded_at never goes backwards, even if the wall clock does.
        let now = std::cmp::max(Timestamp::now(), *last_recorded);
        let start_size = frontier.size();
        let mut results = Vec::with_capacity(batches.len());
        // The records this transaction appends, from index `start_size` on, in order.
        let mut added: Vec<trailmark_model::Record> = Vec::new();
        // The rows of `records`, `record_kinds` and `tree_nodes` this transaction adds, written
        // together after the loop below, many per statement (see `insert_many`).
        let mut leaves: Vec<(u64, Vec<u8>, Hash)> = Vec::new();
        let mut nodes: Vec<(u8, u64, Hash)> = Vec::new();
        {
            let mut ins_blob = tx
                .prepare_cached("INSERT OR IGNORE INTO blobs (digest, bytes) VALUES (?1, ?2)")
                .map_err(err("storing a payload blob"))?;
            let mut find_key = tx
                .prepare_cached(
                    "SELECT r.idx, r.leaf_hash FROM idempotency i JOIN records r ON r.idx = i.idx WHERE i.key = ?1",
                )
                .map_err(err("checking idempotency keys"))?;
            let mut ins_key = tx
                .prepare_cached("INSERT INTO idempotency (key, idx) VALUES (?1, ?2)")
                .map_err(err("recording an idempotency key"))?;
            for blob in blobs {
                ins_blob
                    .execute(params![blob.digest().0.as_slice(), blob.bytes()])
                    .map_err(err("storing a raw input"))?;
            }
            let mut seen: HashMap<String, Appended> = HashMap::new();
            for batch in batches.iter_mut() {
                let mut out = Vec::with_capacity(batch.len());
                for rec in std::mem::take(batch) {
                    if let Some(key) = &rec.idempotency_key {
                        if let Some(first) = seen.get(key) {
                            out.push(Appended {
                                duplicate: true,
                                ..*first
                            });
                            continue;
                        }
                        let existing: Option<(i64, Vec<u8>)> = find_key
                            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()
                            .map_err(err("checking idempotency keys"))?;
                        if let Some((idx, hash)) = existing {
                            out.push(Appended {
                                index: LogIndex(idx as u64),
                                leaf_hash: hash_from(&hash, "the leaf hash", idx as u64)?,
                                duplicate: true,
                            });
                            continue;
                        }
                    }
                    let index = LogIndex(frontier.size());
                    let idx = to_i64(index.0)?;
                    let trailmark_model::Sealed { record, leaf, blob } = rec.seal(index, now);
                    let hash = leaf_hash(&leaf);
                    if let Some(blob) = blob {
                        ins_blob
                            .execute(params![blob.digest().0.as_slice(), blob.bytes()])
                            .map_err(err("storing a payload blob"))?;
                    }
                    leaves.push((index.0, leaf, hash));
                    if let Some(key) = &record.idempotency_key {
                        ins_key
                            .execute(params![key, idx])
                            .map_err(err("recording an idempotency key"))?;
                    }
                    frontier.append(hash, |id, h| {
                        if id.level % 2 == 0 {
                            nodes.push((id.level, id.index, *h));
                        }
                    });
                    let appended = Appended {
                        index,
                        leaf_hash: hash,
                        duplicate: false,
                    };
                    if let Some(key) = &record.idempotency_key {
                        seen.insert(key.clone(), appended);
                    }
                    out.push(appended);
                    added.push(record);
                }
                results.push(out);
            }
        }
        {
            let recorded_us = now.as_micros();
            let mut values = Vec::with_capacity(leaves.len() * 5);
            for ((i, leaf, hash), r) in leaves.iter().zip(&added) {
                values.extend([
                    ValueRef::Integer(to_i64(*i)?),
                    ValueRef::Blob(leaf),
                    ValueRef::Blob(hash.as_bytes()),
                    ValueRef::Text(r.kind.as_str().as_bytes()),
                    ValueRef::Integer(recorded_us),
                ]);
            }
            insert_many(
                &tx,
                "records (idx, leaf, leaf_hash, kind, recorded_us)",
                5,
                &values,
            )
            .map_err(err("appending a record"))?;
            values.clear();
            for ((i, _, _), r) in leaves.iter().zip(&added) {
                values.extend([
                    ValueRef::Text(r.kind.as_str().as_bytes()),
                    ValueRef::Integer(to_i64(*i)?),
                ]);
            }
            insert_many(&tx, "record_kinds (kind, idx)", 2, &values)
                .map_err(err("indexing a record's kind"))?;
            values.clear();
            for (level, i, hash) in &nodes {
                values.extend([
                    ValueRef::Integer(i64::from(*level)),
                    ValueRef::Integer(to_i64(*i)?),
                    ValueRef::Blob(hash.as_bytes()),
                ]);
            }
            insert_many(&tx, "tree_nodes (level, idx, hash)", 3, &values)
                .map_err(err("storing tree nodes"))?;
        }
        let size = frontier.size();
        // The first complete epoch not closed yet gets the next slice of its rows, sorted; as
        // many epochs as the budget reaches (see `open_epoch`).
        let mut closed = closed_end(&tx)?;
        let brought: usize = added.iter().map(|r| r.subjects.len() + r.links.len()).sum();
        // The budget counts rows inserted, not rows already there: a writer resuming an epoch
        // another process has written slices of passes over those (a seek each, no page
        // written) up to `passes` rows, and still moves the epoch on by its budget.
        let mut budget = CLOSE_ROWS_MIN.max(brought + brought / 4);
        let mut passes = 8 * budget;
        let mut pending = closing.take();
        while budget > 0 && passes > 0 && closed + (1 << EPOCH_BITS) <= size {
            let mut c = match pending.take() {
                Some(c) if c.start == closed => c,
                _ => Closing {
                    start: closed,
                    rows: epoch_rows(&tx, open, closed, start_size, &added)?,
                    next: 0,
                },
            };
            let take = (c.rows.len() - c.next).min(CLOSE_CHUNK);
            let inserted = insert_rows(&tx, &c.rows[c.next..c.next + take])?;
            c.next += take;
            budget = budget.saturating_sub(inserted);
            passes = passes.saturating_sub(take);
            if c.next == c.rows.len() {
                mark_closed(&tx, closed)?;
                closed += 1 << EPOCH_BITS;
            } else {
                pending = Some(c);
            }
        }
        if size > start_size {
            let checkpoint = Checkpoint {
                origin: origin.clone(),
                size,
                root: frontier.root(),
                extensions: Vec::new(),
            };
            let note = signer
                .sign(&checkpoint.body())
                .map_err(|e| StoreError::Backend {
                    op: "signing a checkpoint",
                    message: e.to_string(),
                })?;
            tx.execute(
                "INSERT INTO checkpoints (size, root, note, signed_ms) VALUES (?1, ?2, ?3, ?4)",
                params![
                    to_i64(size)?,
                    checkpoint.root.as_bytes().as_slice(),
                    note,
                    Timestamp::now().as_millis()
                ],
            )
            .map_err(err("storing a checkpoint"))?;
        }
        // With synchronous=FULL this commit fsyncs the WAL: after it returns, the batch survives
        // a power cut. Only then are callers answered.
        tx.commit().map_err(err("committing an append"))?;
        *last_recorded = now;
        // Committed: what is left of the epoch being closed is kept for the next commits, and
        // the open epochs' index learns these records, unless it is behind (then the readers
        // catch it up from the leaves). (On an error the slices are dropped, as they may hold
        // records that were not committed, and rebuilt from the stored leaves.)
        *closing = pending;
        if let Ok(mut g) = open.lock() {
            g.advance(closed);
            if g.upto() == start_size.max(g.start()) {
                for (k, record) in added.iter().enumerate() {
                    let idx = start_size + k as u64;
                    if idx >= g.start() {
                        g.add(idx, &record.subjects, &record.links);
                    }
                }
            }
        }
        Ok(results)
    }
}

/// Rows per statement in [`insert_many`].
const MANY_ROWS: usize = 64;

/// Inserts rows of `columns` values each (`values` row after row) into `table` — `name
/// (columns…)` — up to [`MANY_ROWS`] per statement: a statement per row cost its setup
/// (reset, bind, a new cursor) per row, a fifth of a 1000-record append.
fn insert_many(
    tx: &Connection,
    table: &str,
    columns: usize,
    values: &[ValueRef<'_>],
) -> Result<(), rusqlite::Error> {
    let sql = |rows: usize| {
        let row = format!("({})", vec!["?"; columns].join(","));
        format!("INSERT INTO {table} VALUES {}", vec![row; rows].join(","))
    };
    let mut chunks = values.chunks_exact(columns * MANY_ROWS);
    if chunks.len() > 0 {
        let mut many = tx.prepare_cached(&sql(MANY_ROWS))?;
        for chunk in chunks.by_ref() {
            many.execute(rusqlite::params_from_iter(
                chunk.iter().map(|v| ToSqlOutput::Borrowed(*v)),
            ))?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut one = tx.prepare_cached(&sql(1))?;
        for row in rest.chunks_exact(columns) {
            one.execute(rusqlite::params_from_iter(
                row.iter().map(|v| ToSqlOutput::Borrowed(*v)),
            ))?;
        }
    }
    Ok(())
}

/// The background checkpoint runs each time the WAL has grown this much (frames, about 4 KiB
/// each).
const WAL_KICK_FRAMES: i64 = 2048;

/// A WAL this long is started over by the writer: see `WriterState::restart_wal`.
/// The writer's page cache below [`writer_cache_kib`]'s threshold, in KiB.
const CACHE_KIB_SMALL: i64 = 4 * 1024;
/// The writer's page cache from that threshold on, in KiB (what `open_rw` sets).
const CACHE_KIB_LARGE: i64 = 64 * 1024;
/// How often the writer checks its database's size, in commits. Between two checks the
/// database grows by at most this many batches, far less than the threshold.
const CACHE_RESIZE_COMMITS: u32 = 256;

/// The writer's page cache, in KiB, for a database of `pages` pages of `page_size` bytes.
///
/// While a database is smaller than SQLite's pending-byte page (1 GiB + one page), a commit
/// walks the writer's whole page cache whenever a b-tree rebalance in its transaction swapped
/// two pages' numbers: `balance_nonroot` parks one page at the pending-byte page's number,
/// past the end of such a database, and the commit then drops every cached page past the end
/// — with a large cache, by scanning all of it. The subject index rebalances that way often:
/// at 64 MiB the scan (`pcache1TruncateUnsafe`) was 11 % of the writer's samples under
/// webhook load, and a 4 MiB cache made 100-record appends 15 % faster. From that size on the
/// parked number is inside the database, the scan never happens, and the large cache, which
/// keeps a big log's scattered index pages resident, comes back.
fn writer_cache_kib(pages: i64, page_size: i64) -> i64 {
    const PENDING_BYTE: i64 = 0x4000_0000;
    let parked = PENDING_BYTE / page_size.max(512) + 1;
    if pages < parked {
        CACHE_KIB_SMALL
    } else {
        CACHE_KIB_LARGE
    }
}

const WAL_RESTART_FRAMES: i64 = 16_384;

/// At most this many frames (1 MiB) left for the writer to copy back when it starts the WAL
/// over: the copy and the fsync after it are a pause its callers wait through.
const WAL_RESTART_GAP: i64 = 256;

/// The writer's view of its WAL, shared with the background checkpoint.
struct Wal {
    /// The WAL's length in frames after the last commit (from SQLite's WAL hook).
    frames: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// How far into the WAL the background checkpoint has copied (frames).
    copied: std::sync::atomic::AtomicI64,
    /// Set while the WAL is past [`WAL_RESTART_FRAMES`] and waits to be started over.
    restart: std::sync::atomic::AtomicBool,
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: copies what it can of the WAL into the database without
/// waiting for anyone. Returns how many of the WAL's frames are copied now (`None` when a
/// checkpoint already running elsewhere made it a no-op).
fn passive_checkpoint(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let (busy, done): (i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(2)?))
        })
        .map_err(err("checkpointing the WAL"))?;
    Ok((busy == 0).then_some(done))
}

/// fsyncs a new file and the directory that names it, so both survive a power cut.
fn sync_file_and_dir(path: &Path) -> Result<(), StoreError> {
    let io = |op: &'static str| {
        move |e: std::io::Error| StoreError::Backend {
            op,
            message: format!("{}: {e}", path.display()),
        }
    };
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing the snapshot"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io("syncing the snapshot's directory"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_cache_is_small_until_the_pending_byte_page_is_inside_the_database() {
        // 4 KiB pages: the pending-byte page is page 262,145 (the one holding byte 2^30).
        assert_eq!(writer_cache_kib(1, 4096), CACHE_KIB_SMALL);
        assert_eq!(writer_cache_kib(262_144, 4096), CACHE_KIB_SMALL);
        assert_eq!(writer_cache_kib(262_145, 4096), CACHE_KIB_LARGE);
        assert_eq!(writer_cache_kib(10_000_000, 4096), CACHE_KIB_LARGE);
        // Other page sizes move the threshold with the page, not with the byte count.
        assert_eq!(writer_cache_kib(16_384, 65_536), CACHE_KIB_SMALL);
        assert_eq!(writer_cache_kib(16_385, 65_536), CACHE_KIB_LARGE);
        assert_eq!(writer_cache_kib(2_097_152, 512), CACHE_KIB_SMALL);
        assert_eq!(writer_cache_kib(2_097_153, 512), CACHE_KIB_LARGE);
    }
}
