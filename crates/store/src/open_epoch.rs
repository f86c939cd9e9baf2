//! The subject index's open epochs (SQLite backend).
//!
//! `record_subjects` is keyed by epoch (`idx >> 12`) first, then by subject. Filled a record at
//! a time, every batch of records mentioning scattered subjects (commit SHAs, build ids) dirtied
//! a page per few records across the epoch's subtree: half of the pages a 100-record commit
//! wrote. So an epoch's rows are written only once the epoch is complete, sorted, so that each
//! goes after the one before, a slice per commit: `CLOSE_ROWS_MIN`, or a quarter more rows than
//! the commit's own records bring, so closing outpaces filling while no commit writes a whole
//! epoch's rows while its callers wait. The commit that writes the last slice records the epoch
//! in `subject_epochs`: the epoch is then closed. Until then the mentions of
//! every record from the first epoch not closed on come from the records themselves: this
//! in-memory index of them, shared by a store's writer and readers, brought up to date from the
//! leaves when another process appended.
//!
//! Invariants:
//! - An epoch is in `subject_epochs` only when `record_subjects` holds all its rows, and the
//!   closed epochs are always a prefix (0, 1, …): the writer closes them in order.
//! - `record_subjects` rows of epochs not closed (slices written so far, or rows a schema-1
//!   build wrote) are never read; slices are inserted with `OR IGNORE`.
//! - An [`OpenEpoch`] holds only committed records, contiguously from its start.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use trailmark_model::{Link, Record, Subject, decode_leaf_mentions};

use crate::error::StoreError;
use crate::sqlite::to_i64;

/// Records per subject-index epoch: 2^12 keeps an epoch's rows a few dozen pages, written
/// once, while a lookup in a 10M-record log costs ~2,400 index seeks.
pub(crate) const EPOCH_BITS: u32 = 12;

/// The index rows of one record: each subject (rel `""`) and each link's target (the link's
/// rel), sorted and without repeats — a record may name the same fact twice, the index holds
/// it once.
fn mentions<'r>(subjects: &'r [Subject], links: &'r [Link]) -> Vec<(&'r str, &'r str, &'r str)> {
    let mut out: Vec<(&str, &str, &str)> = subjects
        .iter()
        .map(|s| (s.ty.as_str(), s.id.as_str(), ""))
        .chain(
            links
                .iter()
                .map(|l| (l.to.ty.as_str(), l.to.id.as_str(), l.rel.as_str())),
        )
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// One `record_subjects` row: type, id, index, rel.
pub(crate) type Row = (String, String, u64, String);

/// Fewest index rows a commit writes while an epoch waits to be closed. Small: a commit of a
/// few records then writes a few hundred rows (~0.5 ms here), not a burst of thousands its
/// callers wait through, and an epoch of ~16k rows still closes within 64 commits.
pub(crate) const CLOSE_ROWS_MIN: usize = 256;

/// Where the open part of the log starts in `conn`'s snapshot: the first index past every
/// closed epoch.
pub(crate) fn closed_end(conn: &Connection) -> Result<u64, StoreError> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT max(epoch) FROM subject_epochs")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(StoreError::backend(
            "reading the closed subject-index epochs",
        ))?;
    Ok(last.map_or(0, |e| ((e as u64) + 1) << EPOCH_BITS))
}

/// The rows of `record` at `index`.
pub(crate) fn rows_of(index: u64, record: &Record) -> impl Iterator<Item = Row> + '_ {
    mentions(&record.subjects, &record.links)
        .into_iter()
        .map(move |(ty, id, rel)| (ty.to_owned(), id.to_owned(), index, rel.to_owned()))
}

/// The mentions of the records `[start, upto)`, by subject.
#[derive(Debug)]
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
    pub(crate) fn add(&mut self, index: u64, subjects: &[Subject], links: &[Link]) {
        debug_assert_eq!(index, self.upto);
        for (ty, id, rel) in mentions(subjects, links) {
            // Keys are copied only when new: most mentions are of a type, and many of a subject
            // (a commit, a ticket), already in the index.
            let ids = match self.by_subject.get_mut(ty) {
                Some(ids) => ids,
                None => self.by_subject.entry(ty.to_owned()).or_default(),
            };
            let list = match ids.get_mut(id) {
                Some(list) => list,
                None => ids.entry(id.to_owned()).or_default(),
            };
            list.push((index, rel.to_owned()));
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
            // Only what the leaf mentions is read, not the whole record (a new process's first
            // subject query took half as long): a record is decoded strictly when it is served,
            // and refused then if it is damaged.
            let m = decode_leaf_mentions(leaf).map_err(|e| StoreError::Corrupt {
                index: idx,
                reason: e.to_string(),
            })?;
            if m.index.0 != idx {
                return Err(StoreError::Corrupt {
                    index: idx,
                    reason: format!("row {idx} holds the record of index {}", m.index),
                });
            }
            self.add(idx, &m.subjects, &m.links);
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

    /// Forgets the records below `start` (their epochs are closed now).
    pub(crate) fn advance(&mut self, start: u64) {
        if start <= self.start {
            return;
        }
        for ids in self.by_subject.values_mut() {
            for list in ids.values_mut() {
                list.retain(|(i, _)| *i >= start);
            }
            ids.retain(|_, list| !list.is_empty());
        }
        self.by_subject.retain(|_, ids| !ids.is_empty());
        self.missing.retain(|i| *i >= start);
        self.start = start;
        self.upto = self.upto.max(start);
    }

    /// The rows of the records `[from, to)`, which this index must hold; a missing record among
    /// them is damage (its rows are unknown).
    pub(crate) fn rows_in(&self, from: u64, to: u64) -> Result<Vec<Row>, StoreError> {
        debug_assert!(self.start <= from && to <= self.upto);
        if let Some(gone) = self.missing.iter().find(|i| (from..to).contains(*i)) {
            return Err(StoreError::Damaged(format!(
                "record {gone} is missing from the log (run `trailmark verify`); its subjects cannot be indexed, so nothing can be appended until the store is restored"
            )));
        }
        let mut rows = Vec::new();
        for (ty, ids) in &self.by_subject {
            for (id, list) in ids {
                rows.extend(
                    list.iter()
                        .filter(|(i, _)| (from..to).contains(i))
                        .map(|(i, rel)| (ty.clone(), id.clone(), *i, rel.clone())),
                );
            }
        }
        Ok(rows)
    }
}

/// Inserts rows of `record_subjects` (sorted, so each goes after the one before); returns how
/// many were not there already.
pub(crate) fn insert_rows(conn: &Connection, rows: &[Row]) -> Result<usize, StoreError> {
    let err = |e| StoreError::backend("writing the subject index")(e);
    // Many rows per statement: one cursor then inserts them all, and as each row goes after the
    // one before, at the end of the b-tree, SQLite finds its place without a descent from the
    // root (one statement per row made closing an epoch ~3x as long).
    use rusqlite::types::{ToSqlOutput, ValueRef};
    let mut inserted = 0;
    let mut chunks = rows.chunks_exact(CLOSE_CHUNK);
    let mut many = conn.prepare_cached(&insert_sql(CLOSE_CHUNK)).map_err(err)?;
    let mut values: Vec<ToSqlOutput<'_>> = Vec::with_capacity(CLOSE_CHUNK * 5);
    for chunk in chunks.by_ref() {
        // Bound by reference: the rows' strings are not copied again.
        values.clear();
        for (ty, id, idx, rel) in chunk {
            values.extend([
                ToSqlOutput::Borrowed(ValueRef::Integer(to_i64(*idx >> EPOCH_BITS)?)),
                ToSqlOutput::Borrowed(ValueRef::Text(ty.as_bytes())),
                ToSqlOutput::Borrowed(ValueRef::Text(id.as_bytes())),
                ToSqlOutput::Borrowed(ValueRef::Integer(to_i64(*idx)?)),
                ToSqlOutput::Borrowed(ValueRef::Text(rel.as_bytes())),
            ]);
        }
        inserted += many
            .execute(rusqlite::params_from_iter(values.iter()))
            .map_err(err)?;
    }
    let mut one = conn.prepare_cached(&insert_sql(1)).map_err(err)?;
    for (ty, id, idx, rel) in chunks.remainder() {
        inserted += one
            .execute(params![
                to_i64(*idx >> EPOCH_BITS)?,
                ty,
                id,
                to_i64(*idx)?,
                rel
            ])
            .map_err(err)?;
    }
    Ok(inserted)
}

/// Records that the epoch starting at `start` has all its rows.
pub(crate) fn mark_closed(conn: &Connection, start: u64) -> Result<(), StoreError> {
    let epoch = to_i64(start >> EPOCH_BITS)?;
    conn.prepare_cached("INSERT INTO subject_epochs (epoch) VALUES (?1)")
        .and_then(|mut st| st.execute([epoch]))
        .map(|_| ())
        .map_err(StoreError::backend("closing a subject-index epoch"))
}

/// Rows per statement when the subject index is written.
pub(crate) const CLOSE_CHUNK: usize = 128;

fn insert_sql(n: usize) -> String {
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
