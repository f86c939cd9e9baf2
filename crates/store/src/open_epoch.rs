//! The subject index's open epoch (SQLite backend).
//!
//! `record_subjects` is keyed by epoch (`idx >> 12`) first, then by subject. Filled a record at
//! a time, every batch of records mentioning scattered subjects (commit SHAs, build ids) dirtied
//! a page per few records across the epoch's subtree: half of the pages a 100-record commit
//! wrote. So an epoch's rows are written once, sorted, in the transaction that appends the
//! epoch's last record ("closes" it), and until then the mentions of the open epoch — at most
//! 4,096 records — come from the records themselves: this in-memory index of them, shared by a
//! store's writer and readers, brought up to date from the leaves when another process
//! appended.
//!
//! Invariants:
//! - For every closed epoch, `record_subjects` holds all its rows (the closing transaction
//!   writes them, atomically with the records that close it).
//! - `record_subjects` rows of the open epoch (written by a build before this scheme) are never
//!   read: the open epoch is answered from its records alone, and closing it inserts with
//!   `OR IGNORE`.
//! - An [`OpenEpoch`] holds only committed records, contiguously from its epoch's start.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use trailmark_model::{Record, decode_leaf};

use crate::error::StoreError;

/// Records per subject-index epoch: 2^12 keeps an epoch's rows a few dozen pages, written
/// once, while a lookup in a 10M-record log costs ~2,400 index seeks.
pub(crate) const EPOCH_BITS: u32 = 12;

/// The first index of the epoch that `index` is in.
pub(crate) fn epoch_start(index: u64) -> u64 {
    (index >> EPOCH_BITS) << EPOCH_BITS
}

/// The index rows of one record: each subject (rel `""`) and each link's target (the link's
/// rel), sorted and without repeats — a record may name the same fact twice, the index holds
/// it once.
fn mentions(record: &Record) -> Vec<(&str, &str, &str)> {
    let mut out: Vec<(&str, &str, &str)> = record
        .subjects
        .iter()
        .map(|s| (s.ty.as_str(), s.id.as_str(), ""))
        .chain(
            record
                .links
                .iter()
                .map(|l| (l.to.ty.as_str(), l.to.id.as_str(), l.rel.as_str())),
        )
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The mentions of the records `[start, upto)` of one epoch, by subject.
#[derive(Clone, Debug)]
pub(crate) struct OpenEpoch {
    start: u64,
    upto: u64,
    /// type → id → (index, rel), ascending by index, then rel.
    by_subject: HashMap<String, HashMap<String, Vec<(u64, String)>>>,
    /// Indices in `[start, upto)` whose record is not stored (deleted behind the store's back):
    /// whatever they mentioned is unknown, so an answer that reaches one is an error.
    missing: Vec<u64>,
}

impl OpenEpoch {
    pub(crate) fn new(start: u64) -> OpenEpoch {
        OpenEpoch {
            start,
            upto: start,
            by_subject: HashMap::new(),
            missing: Vec::new(),
        }
    }

    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    pub(crate) fn upto(&self) -> u64 {
        self.upto
    }

    /// Adds the committed record at `index`, which must be the next one.
    pub(crate) fn add(&mut self, index: u64, record: &Record) {
        debug_assert_eq!(index, self.upto);
        for (ty, id, rel) in mentions(record) {
            self.by_subject
                .entry(ty.to_owned())
                .or_default()
                .entry(id.to_owned())
                .or_default()
                .push((index, rel.to_owned()));
        }
        self.upto = index + 1;
    }

    /// Adds the stored records from `upto` to `end` (exclusive), read from `conn` in its current
    /// transaction. A record missing from that run is noted as such (see `missing`).
    pub(crate) fn catch_up(&mut self, conn: &Connection, end: u64) -> Result<(), StoreError> {
        if self.upto >= end {
            return Ok(());
        }
        let err = |e| StoreError::backend("reading the open epoch's records")(e);
        let mut st = conn
            .prepare_cached(
                "SELECT idx, leaf FROM records WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
            )
            .map_err(err)?;
        let mut rows = st
            .query(params![to_i64(self.upto)?, to_i64(end)?])
            .map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let idx = row.get::<_, i64>(0).map_err(err)? as u64;
            self.missing.extend(self.upto..idx);
            self.upto = idx;
            let leaf = row
                .get_ref(1)
                .map_err(err)?
                .as_blob()
                .map_err(|e| StoreError::Corrupt {
                    index: idx,
                    reason: format!("the leaf is not a blob: {e}"),
                })?;
            let record = decode_leaf(leaf).map_err(|e| StoreError::Corrupt {
                index: idx,
                reason: e.to_string(),
            })?;
            if record.index.0 != idx {
                return Err(StoreError::Corrupt {
                    index: idx,
                    reason: format!("row {idx} holds the record of index {}", record.index),
                });
            }
            self.add(idx, &record);
        }
        self.missing.extend(self.upto..end);
        self.upto = end;
        Ok(())
    }

    /// The mentions of one subject below `end`, ascending by index: `Some(rel)` for a mention,
    /// `None` for an index whose record is missing (it may have mentioned the subject).
    pub(crate) fn lookup(&self, ty: &str, id: &str, end: u64) -> Vec<(u64, Option<String>)> {
        let mut out: Vec<(u64, Option<String>)> = self
            .by_subject
            .get(ty)
            .and_then(|ids| ids.get(id))
            .into_iter()
            .flatten()
            .filter(|(i, _)| *i < end)
            .map(|(i, rel)| (*i, Some(rel.clone())))
            .collect();
        if self.missing.iter().any(|i| *i < end) {
            out.extend(
                self.missing
                    .iter()
                    .filter(|i| **i < end)
                    .map(|i| (*i, None)),
            );
            out.sort();
        }
        out
    }

    /// Writes this epoch's rows into `record_subjects`, in key order (the closing transaction;
    /// the epoch must be complete).
    pub(crate) fn close(&self, conn: &Connection) -> Result<(), StoreError> {
        debug_assert_eq!(self.upto, self.start + (1 << EPOCH_BITS));
        if let Some(first) = self.missing.first() {
            // Closing the epoch without the record would leave its subjects out of the index for
            // good, and appending past it would bury the damage.
            return Err(StoreError::Damaged(format!(
                "record {first} is missing from the log (run `trailmark verify`); nothing can be appended until the store is restored"
            )));
        }
        let epoch = to_i64(self.start >> EPOCH_BITS)?;
        let mut rows: Vec<(&str, &str, u64, &str)> = Vec::new();
        for (ty, ids) in &self.by_subject {
            for (id, list) in ids {
                rows.extend(
                    list.iter()
                        .map(|(i, rel)| (ty.as_str(), id.as_str(), *i, rel.as_str())),
                );
            }
        }
        rows.sort_unstable();
        let err = |e| StoreError::backend("closing a subject-index epoch")(e);
        // Many rows per statement: one cursor then inserts them all, and as each row goes after
        // the one before, at the end of the b-tree, SQLite finds its place without a descent
        // from the root (one statement per row made the closing transaction ~3x as long).
        let mut chunks = rows.chunks_exact(CLOSE_CHUNK);
        let mut many = conn
            .prepare_cached(&insert_rows(CLOSE_CHUNK))
            .map_err(err)?;
        for chunk in chunks.by_ref() {
            let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(chunk.len() * 5);
            for (ty, id, idx, rel) in chunk {
                values.extend([
                    epoch.into(),
                    (*ty).to_owned().into(),
                    (*id).to_owned().into(),
                    to_i64(*idx)?.into(),
                    (*rel).to_owned().into(),
                ]);
            }
            many.execute(rusqlite::params_from_iter(values))
                .map_err(err)?;
        }
        let mut one = conn.prepare_cached(&insert_rows(1)).map_err(err)?;
        for (ty, id, idx, rel) in chunks.remainder() {
            one.execute(params![epoch, ty, id, to_i64(*idx)?, rel])
                .map_err(err)?;
        }
        Ok(())
    }
}

/// Rows per statement when an epoch is closed.
const CLOSE_CHUNK: usize = 128;

fn insert_rows(n: usize) -> String {
    let mut sql =
        String::from("INSERT OR IGNORE INTO record_subjects (epoch, type, id, idx, rel) VALUES ");
    for k in 0..n {
        if k > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?)");
    }
    sql
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidRequest(format!("{v} is out of range")))
}
