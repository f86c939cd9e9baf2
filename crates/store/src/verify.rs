//! Full verification of a stored log, written against the [`Store`] trait so every backend is
//! checked the same way. Trusts nothing the store says about itself except the raw rows: every
//! leaf hash and tree node is recomputed from the leaf bytes and every checkpoint's signature is
//! checked with keys the caller supplies (not keys read from the store).

use std::collections::BTreeMap;
use std::fmt;

use trailmark_log::{Frontier, Hash, VerifierKey, leaf_hash, verify_checkpoint};
use trailmark_model::decode_leaf;

use crate::{RawCheckpoint, Store, StoreError};

/// Rows fetched per round trip while scanning.
const SCAN_CHUNK: u32 = 10_000;
/// Computed subtree hashes buffered per level before comparing with stored ones in one read.
const NODE_CHUNK: usize = 4096;
/// Stop collecting after this many failures: the first ones are what an operator needs.
const MAX_FAILURES: usize = 100;

/// One thing found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Records [from, to) are missing: the next stored row has index `to`.
    Missing { from: u64, to: u64 },
    /// The leaf bytes at `index` do not decode as a canonical v1 record.
    Undecodable { index: u64, reason: String },
    /// The record stored at position `index` says it is record `claimed` (reordered or moved).
    Misplaced { index: u64, claimed: u64 },
    /// The stored leaf hash at `index` is not the hash of the stored leaf bytes.
    LeafHash { index: u64 },
    /// A stored subtree hash differs from the one recomputed from the leaves.
    Node { level: u8, node: u64 },
    /// A stored subtree hash the recomputed tree needs is absent.
    NodeMissing { level: u8, node: u64 },
    /// A checkpoint does not verify or does not match the recomputed tree. `after` is the size
    /// of the checkpoint before it: the damage lies in records [after, size).
    Checkpoint {
        size: u64,
        after: u64,
        reason: String,
    },
    /// A stored subtree hash covers records that are not in the log: records were removed.
    Orphan { level: u8, node: u64, present: u64 },
    /// A signed checkpoint covers `size` records but only `present` exist: records were removed.
    Truncated { size: u64, present: u64 },
    /// Records from `from` on are not covered by any signed checkpoint: they were inserted
    /// outside the writer (every real batch ends with a checkpoint).
    Unsigned { from: u64, to: u64 },
}

impl Failure {
    /// The first log index this failure implicates, as precisely as the evidence allows.
    pub fn first_index(&self) -> u64 {
        match *self {
            Failure::Missing { from, .. } => from,
            Failure::Undecodable { index, .. }
            | Failure::Misplaced { index, .. }
            | Failure::LeafHash { index } => index,
            Failure::Node { level, node } | Failure::NodeMissing { level, node } => node << level,
            // A bad checkpoint implicates the batch that ended at it: the earliest index we can
            // name is where that batch began.
            Failure::Checkpoint { after, .. } => after,
            Failure::Orphan {
                level,
                node,
                present,
            } => (node << level).max(present),
            Failure::Truncated { present, .. } => present,
            Failure::Unsigned { from, .. } => from,
        }
    }
}

impl Failure {
    /// How directly this failure witnesses the damage: 0 names records themselves, 1 is a
    /// signed checkpoint disagreeing with them, 2 is derived data (subtree hashes, coverage)
    /// that disagrees as a consequence of damage named better elsewhere.
    fn tier(&self) -> u8 {
        match self {
            Failure::Missing { .. }
            | Failure::Undecodable { .. }
            | Failure::Misplaced { .. }
            | Failure::LeafHash { .. }
            | Failure::Truncated { .. }
            | Failure::Orphan { .. } => 0,
            Failure::Checkpoint { .. } => 1,
            Failure::Node { .. } | Failure::NodeMissing { .. } | Failure::Unsigned { .. } => 2,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Missing { from, to } if to - from == 1 => {
                write!(f, "record {from} is missing")
            }
            Failure::Missing { from, to } => write!(f, "records {from}..{} are missing", to - 1),
            Failure::Undecodable { index, reason } => {
                write!(f, "record {index} is not a valid record: {reason}")
            }
            Failure::Misplaced { index, claimed } => {
                write!(
                    f,
                    "position {index} holds record {claimed} (records reordered or moved)"
                )
            }
            Failure::LeafHash { index } => {
                write!(
                    f,
                    "record {index} was altered: its bytes no longer hash to the stored leaf hash"
                )
            }
            Failure::Node { level, node } => write!(
                f,
                "tree hash at level {level} #{node} (records {}..{}) does not match the records",
                node << level,
                ((node + 1) << level) - 1
            ),
            Failure::NodeMissing { level, node } => {
                write!(f, "tree hash at level {level} #{node} is missing")
            }
            Failure::Checkpoint {
                size,
                after,
                reason,
            } => {
                write!(
                    f,
                    "checkpoint at size {size}: {reason} (in records {after}..{})",
                    size.saturating_sub(1)
                )
            }
            Failure::Orphan { level, node, .. } => write!(
                f,
                "a stored tree hash (level {level} #{node}) covers records {}..{} that are not in the log: records were removed",
                node << level,
                ((node + 1) << level) - 1
            ),
            Failure::Truncated { size, present } => write!(
                f,
                "a signed checkpoint covers {size} records but only {present} are stored: records {present}..{} were removed",
                size - 1
            ),
            Failure::Unsigned { from, to } => write!(
                f,
                "records {from}..{} are not covered by any signed checkpoint (inserted outside the log writer)",
                to - 1
            ),
        }
    }
}

/// What `verify_log` found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Records scanned.
    pub records: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Stored subtree hashes compared.
    pub nodes: u64,
    /// The latest checkpoint, if it verified.
    pub latest: Option<trailmark_log::Checkpoint>,
    pub failures: Vec<Failure>,
    /// True when more failures existed than were collected.
    pub truncated: bool,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The first index at which the stored log departs from what was signed.
    pub fn first_bad_index(&self) -> Option<u64> {
        let tier = self.failures.iter().map(Failure::tier).min()?;
        self.failures
            .iter()
            .filter(|f| f.tier() == tier)
            .map(Failure::first_index)
            .min()
    }

    fn fail(&mut self, f: Failure) {
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(f);
        } else {
            self.truncated = true;
        }
    }
}

struct Checkpoints<'a> {
    store: &'a dyn Store,
    buf: std::collections::VecDeque<RawCheckpoint>,
    after: Option<u64>,
    done: bool,
}

impl Checkpoints<'_> {
    fn peek(&mut self) -> Result<Option<&RawCheckpoint>, StoreError> {
        if self.buf.is_empty() && !self.done {
            let rows = self.store.raw_checkpoints(self.after, 1000)?;
            if rows.is_empty() {
                self.done = true;
            }
            self.after = rows.last().map(|r| r.size).or(self.after);
            self.buf.extend(rows);
        }
        Ok(self.buf.front())
    }

    fn next(&mut self) -> Option<RawCheckpoint> {
        self.buf.pop_front()
    }
}

/// How thorough `verify_log` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Also decode every leaf and require it to be the canonical encoding of a valid v1 record.
    /// The default check already hashes every byte and reads every leaf's `index`; this adds a
    /// full JSON parse per record (several times slower) and catches a leaf that Trailmark itself
    /// could not have written.
    pub deep: bool,
}

/// The `index` of a v1 leaf without parsing it. In RFC 8785 form the top-level keys are sorted
/// and only `actor` and `idempotency_key` (string values, whose quotes are escaped) can precede
/// `index`, so the first `"index":` in the bytes is the top-level one.
fn leaf_index(leaf: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"index\":";
    let at = memchr::memmem::find(leaf, KEY)? + KEY.len();
    let digits = leaf[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&leaf[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Recomputes the whole log from its stored records and checks it against every stored node and
/// signed checkpoint. `progress(done, total)` is called as records are scanned.
pub fn verify_log(
    store: &dyn Store,
    verifiers: &[VerifierKey],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, StoreError> {
    verify_log_with(store, verifiers, VerifyOptions::default(), progress)
}

/// [`verify_log`] with options. Two scoped threads read and hash alternate chunks of rows
/// while this one builds the tree from them in order.
pub fn verify_log_with(
    store: &dyn Store,
    verifiers: &[VerifierKey],
    options: VerifyOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, StoreError> {
    // Reading rows out of the backend and hashing each leaf is per row, so it is split over
    // two scanning threads, each with its own read connection, taking alternate chunks of
    // the index range; this thread takes the chunks back in order and builds the tree (a
    // third of the work). Chunks are index ranges, so a gap (missing records) cannot make two
    // chunks overlap: rows at or past a chunk's end are left to the next one.
    std::thread::scope(|scope| {
        let receivers: Vec<_> = (0..SCANNERS)
            .map(|first| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Scanned>(2);
                scope.spawn(move || {
                    let mut k = first;
                    loop {
                        let start = k * u64::from(SCAN_CHUNK);
                        let end = start + u64::from(SCAN_CHUNK);
                        let mut rows = Vec::with_capacity(SCAN_CHUNK as usize);
                        let scanned = store.scan_leaves(
                            start.checked_sub(1),
                            SCAN_CHUNK,
                            &mut |idx, leaf, stored| {
                                if idx < end {
                                    rows.push(LeafCheck::of(
                                        idx,
                                        leaf,
                                        stored.try_into().ok(),
                                        options.deep,
                                    ));
                                }
                            },
                        );
                        // Nothing at or after `start`: the log ends before this chunk.
                        let done = !matches!(scanned, Ok(n) if n > 0);
                        if tx.send(scanned.map(|_| (!done).then_some(rows))).is_err() || done {
                            break;
                        }
                        k += SCANNERS;
                    }
                });
                rx
            })
            .collect();
        let in_order = (0u64..).map_while(|k| {
            let rx = receivers.get(usize::try_from(k % SCANNERS).ok()?)?;
            rx.recv().ok()
        });
        verify_rows(store, verifiers, progress, in_order)
    })
}

/// Threads reading and hashing rows while one builds the tree (see [`verify_log_with`]).
const SCANNERS: u64 = 2;

/// One chunk from a scanning thread: its rows, hashed, or `None` past the end of the log.
type Scanned = Result<Option<Vec<LeafCheck>>, StoreError>;

/// What one row says once hashed.
struct LeafCheck {
    idx: u64,
    hash: Hash,
    hash_matches: bool,
    claimed: Result<u64, String>,
}

impl LeafCheck {
    fn of(idx: u64, leaf: &[u8], stored: Option<&[u8; 32]>, deep: bool) -> LeafCheck {
        let hash = leaf_hash(leaf);
        let claimed = if deep {
            decode_leaf(leaf)
                .map(|r| r.index.0)
                .map_err(|e| e.to_string())
        } else {
            leaf_index(leaf).ok_or_else(|| "no `index` field".to_owned())
        };
        LeafCheck {
            idx,
            hash,
            hash_matches: stored == Some(hash.as_bytes()),
            claimed,
        }
    }
}

fn verify_rows(
    store: &dyn Store,
    verifiers: &[VerifierKey],
    progress: &mut dyn FnMut(u64, u64),
    chunks: impl Iterator<Item = Scanned>,
) -> Result<VerifyReport, StoreError> {
    let total = store.size()?;
    let origin = store.origin().to_owned();
    let mut report = VerifyReport::default();
    let mut frontier = Frontier::new();
    let mut nodes: BTreeMap<u8, (u64, Vec<Hash>)> = BTreeMap::new();
    let mut cps = Checkpoints {
        store,
        buf: Default::default(),
        after: None,
        done: false,
    };
    let mut last_signed = 0u64;
    let mut pos = 0u64;

    let check_checkpoint =
        |cp: RawCheckpoint, after: u64, computed: Hash, report: &mut VerifyReport| {
            report.checkpoints += 1;
            let size = cp.size;
            let fail = |reason: String| Failure::Checkpoint {
                size,
                after,
                reason,
            };
            match verify_checkpoint(&cp.note, verifiers, Some(&origin)) {
            Err(e) => report.fail(fail(format!("signature or format check failed: {e}"))),
            Ok(c) if c.size != size => {
                report.fail(fail(format!("the signed note is for size {}", c.size)))
            }
            Ok(c) if c.root.as_bytes().as_slice() != cp.root.as_slice() => {
                report.fail(fail("the stored root differs from the signed root".into()))
            }
            Ok(c) if c.root != computed => report.fail(fail(
                "the records do not produce the signed root (records altered, inserted or removed)"
                    .into(),
            )),
            Ok(c) => report.latest = Some(c),
        }
        };

    for packed in chunks {
        let Some(packed) = packed? else {
            break;
        };
        for row in packed {
            if row.idx != pos {
                report.fail(Failure::Missing {
                    from: pos,
                    to: row.idx,
                });
                pos = row.idx;
            }
            match row.claimed {
                Err(reason) => report.fail(Failure::Undecodable { index: pos, reason }),
                Ok(claimed) if claimed != pos => report.fail(Failure::Misplaced {
                    index: pos,
                    claimed,
                }),
                Ok(_) => {}
            }
            if !row.hash_matches {
                report.fail(Failure::LeafHash { index: pos });
            }
            let computed = row.hash;
            frontier.append(computed, |id, h| {
                if store.stored_node_level(id.level) {
                    let entry = nodes.entry(id.level).or_insert((id.index, Vec::new()));
                    entry.1.push(*h);
                }
            });
            pos += 1;
            report.records += 1;
            while let Some(cp) = cps.peek()? {
                if cp.size > pos {
                    break;
                }
                let Some(cp) = cps.next() else { break };
                if cp.size == pos {
                    check_checkpoint(cp, last_signed, frontier.root(), &mut report);
                } else {
                    // A checkpoint for a size we skipped over (records missing before it).
                    report.fail(Failure::Checkpoint {
                        size: cp.size,
                        after: last_signed,
                        reason: "its tree size was never reached in order (records missing)".into(),
                    });
                }
                last_signed = pos;
            }
            if pos.is_multiple_of(65_536) {
                progress(pos, total);
            }
        }
        for (level, (start, hashes)) in nodes.iter_mut() {
            if hashes.len() >= NODE_CHUNK {
                compare_nodes(store, *level, *start, hashes, &mut report)?;
                *start += hashes.len() as u64;
                hashes.clear();
            }
        }
    }
    for (level, (start, hashes)) in nodes.iter() {
        compare_nodes(store, *level, *start, hashes, &mut report)?;
    }
    // Stored subtree hashes beyond the recomputed tree remember records that are gone.
    for level in (1..64u8).filter(|l| store.stored_node_level(*l)) {
        let expected = pos >> level;
        for (node, _) in store
            .raw_nodes(level, expected, i64::MAX as u64)?
            .into_iter()
            .take(1)
        {
            report.fail(Failure::Orphan {
                level,
                node,
                present: pos,
            });
        }
    }
    // Checkpoints past the end: records were removed from the tail.
    while let Some(cp) = cps.peek()? {
        let size = cp.size;
        cps.next();
        report.fail(Failure::Truncated { size, present: pos });
    }
    if pos > last_signed {
        report.fail(Failure::Unsigned {
            from: last_signed,
            to: pos,
        });
    }
    progress(pos, total);
    Ok(report)
}

fn compare_nodes(
    store: &dyn Store,
    level: u8,
    start: u64,
    computed: &[Hash],
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    if computed.is_empty() {
        return Ok(());
    }
    let stored = store.raw_nodes(level, start, start + computed.len() as u64)?;
    let mut stored = stored.into_iter().peekable();
    for (i, h) in computed.iter().enumerate() {
        let node = start + i as u64;
        report.nodes += 1;
        while stored.peek().is_some_and(|(idx, _)| *idx < node) {
            stored.next();
        }
        match stored.peek() {
            Some((idx, bytes)) if *idx == node => {
                if bytes.as_slice() != h.as_bytes().as_slice() {
                    report.fail(Failure::Node { level, node });
                }
                stored.next();
            }
            _ => report.fail(Failure::NodeMissing { level, node }),
        }
    }
    Ok(())
}
