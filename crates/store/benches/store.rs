//! Store benchmarks. Run: `cargo bench -p trailmark-store --bench store` (see BENCHMARKS.md).
//!
//! - `append/*`: durable appends through the real writer path (group commit, tree nodes, signed
//!   checkpoint, fsync) at batch sizes 1, 100 and 1000, beside raw rusqlite inserting the same
//!   leaf bytes in the same batches with the same durability settings, and `floor_packed`, a
//!   yardstick for a layout that stores records packed (see [`Floor`]).
//! - `proof/*`: inclusion and consistency proof generation in logs of 1M and 10M entries.
//! - `verify/*`: full-log verification beside plain SHA-256 over the same leaf bytes.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};
use trailmark_log::SignerKey;
use trailmark_model::{LogIndex, NewRecord, Timestamp, encode_leaf, parse_record};
use trailmark_store::{SqliteStore, Store, verify_log};

const ORIGIN: &str = "bench.trailmark.local/log";

/// The `trailmark` binary's allocator, so the figures are what the CLI and server do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn signer() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [5u8; 32]).unwrap()
}

/// A typical evidence record: a CI test report linked to a commit (~330 bytes of leaf).
fn record(i: usize) -> NewRecord {
    parse_record(&format!(
        r#"{{"kind":"ci.test_report","subjects":[{{"type":"build","id":"ci-{i}"}}],"actor":"ci@example.com","source":"bench","occurred_at":"2026-11-20T10:15:00Z","payload":{{"tests":412,"failures":0,"errors":0,"skipped":3,"suite":"payments"}},"links":[{{"rel":"tests","to":{{"type":"commit","id":"9fceb02d0ae598e95dc970b74767f19372d61af8"}}}}]}}"#
    ))
    .unwrap()
}

fn leaves(records: &[NewRecord], start: u64) -> Vec<Vec<u8>> {
    records
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, r)| encode_leaf(&r.sequence(LogIndex(start + i as u64), Timestamp::now()).0))
        .collect()
}

fn raw_db(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch("CREATE TABLE records (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL)")
        .unwrap();
    c
}

/// A yardstick, not Trailmark's writer: the least a log writer storing its records *packed*
/// (one row per run of up to [`Floor::RUN`] records instead of one per record) would do for a
/// batch. It seals every record (canonical leaf, leaf hash) as the real writer does, extends the
/// tree, keeps the leaves, their hashes and the even-level nodes in the run's row, signs a
/// checkpoint and stores it, in one `BEGIN IMMEDIATE` transaction with the same durability.
/// No subject or kind index, no idempotency keys, no thread between caller and writer: what it
/// measures is how close to raw SQLite any layout of that kind could come, the figure to read
/// `append/trailmark` against (BENCHMARKS.md). `TRAILMARK_BENCH_FLOOR_PAR=1` seals batches of
/// 64 records or more on two threads.
struct Floor {
    conn: Connection,
    key: SignerKey,
    frontier: trailmark_log::Frontier,
    parallel: bool,
}

impl Floor {
    const RUN: usize = 64;

    fn new(path: &Path) -> Floor {
        let conn = raw_db(path);
        conn.execute_batch(
            "CREATE TABLE runs (first INTEGER PRIMARY KEY, leaves BLOB NOT NULL, ends BLOB NOT NULL,
                                hashes BLOB NOT NULL, nodes BLOB NOT NULL) STRICT;
             CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, root BLOB NOT NULL,
                                       note TEXT NOT NULL, signed_ms INTEGER NOT NULL) STRICT;",
        )
        .unwrap();
        Floor {
            conn,
            key: signer(),
            frontier: trailmark_log::Frontier::new(),
            parallel: std::env::var_os("TRAILMARK_BENCH_FLOOR_PAR").is_some(),
        }
    }

    fn append(&mut self, mut records: Vec<NewRecord>) {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        // The real writer reads the head first too (another process may have appended).
        let _head: Option<i64> = tx
            .query_row("SELECT max(size) FROM checkpoints", [], |r| r.get(0))
            .unwrap();
        let first = self.frontier.size();
        let now = Timestamp::now();
        let seal = |from: u64, rs: Vec<NewRecord>| -> Vec<(Vec<u8>, trailmark_log::Hash)> {
            rs.into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let leaf = r.seal(LogIndex(from + i as u64), now).leaf;
                    let hash = trailmark_log::leaf_hash(&leaf);
                    (leaf, hash)
                })
                .collect()
        };
        let sealed = if self.parallel && records.len() >= 64 {
            let back = records.split_off(records.len() / 2);
            let half = records.len() as u64;
            let (mut front, back) = std::thread::scope(|s| {
                let back = s.spawn(|| seal(first + half, back));
                (seal(first, records), back.join().unwrap())
            });
            front.extend(back);
            front
        } else {
            seal(first, records)
        };
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO runs (first, leaves, ends, hashes, nodes) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        for run in sealed.chunks(Self::RUN) {
            let run_first = self.frontier.size();
            let (mut leaves, mut ends, mut hashes, mut nodes) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (leaf, hash) in run {
                leaves.extend_from_slice(leaf);
                ends.extend_from_slice(&(leaves.len() as u32).to_le_bytes());
                hashes.extend_from_slice(hash.as_bytes());
                self.frontier.append(*hash, |id, h| {
                    if id.level % 2 == 0 {
                        nodes.extend_from_slice(h.as_bytes());
                    }
                });
            }
            insert
                .execute(params![run_first as i64, leaves, ends, hashes, nodes])
                .unwrap();
        }
        drop(insert);
        let checkpoint = trailmark_log::Checkpoint {
            origin: ORIGIN.into(),
            size: self.frontier.size(),
            root: self.frontier.root(),
            extensions: Vec::new(),
        };
        let note = checkpoint.sign(&self.key).unwrap();
        tx.execute(
            "INSERT INTO checkpoints (size, root, note, signed_ms) VALUES (?1, ?2, ?3, ?4)",
            params![
                checkpoint.size as i64,
                checkpoint.root.as_bytes().as_slice(),
                note,
                Timestamp::now().as_millis()
            ],
        )
        .unwrap();
        tx.commit().unwrap();
    }
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));
    for batch in [1usize, 100, 1000] {
        let records: Vec<NewRecord> = (0..batch).map(record).collect();
        g.throughput(Throughput::Elements(batch as u64));

        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(&dir.path().join("t.db"), ORIGIN, signer()).unwrap();
        g.bench_function(format!("trailmark/batch={batch}"), |b| {
            b.iter_batched(
                || records.clone(),
                |r| store.append(r).unwrap(),
                BatchSize::SmallInput,
            )
        });
        drop(store);

        let mut floor = Floor::new(&dir.path().join("floor.db"));
        g.bench_function(format!("floor_packed/batch={batch}"), |b| {
            b.iter_batched(
                || records.clone(),
                |r| floor.append(r),
                BatchSize::SmallInput,
            )
        });
        drop(floor);

        let mut raw = raw_db(&dir.path().join("raw.db"));
        let bytes = leaves(&records, 0);
        let mut next = 0i64;
        g.bench_function(format!("raw_sqlite/batch={batch}"), |b| {
            b.iter(|| {
                let tx = raw.transaction().unwrap();
                {
                    let mut st = tx
                        .prepare_cached("INSERT INTO records (idx, leaf) VALUES (?1, ?2)")
                        .unwrap();
                    for leaf in &bytes {
                        st.execute(params![next, leaf]).unwrap();
                        next += 1;
                    }
                }
                tx.commit().unwrap();
            })
        });
    }
    g.finish();
}

/// A log of `size` entries kept under target/ between runs (building 10M entries takes minutes).
fn big_log(size: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("log-{size}.db"));
    if path.exists() {
        if let Ok(s) = SqliteStore::open_read_only(&path)
            && s.size().unwrap_or(0) == size
        {
            return path;
        }
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
    }
    eprintln!(
        "building a {size}-entry log at {} (kept for later runs)",
        path.display()
    );
    let store = SqliteStore::create(&path, ORIGIN, signer()).unwrap();
    let chunk: Vec<NewRecord> = (0..10_000).map(record).collect();
    let mut done = 0;
    while done < size {
        let n = (size - done).min(10_000) as usize;
        store.append(chunk[..n].to_vec()).unwrap();
        done += n as u64;
        if done % 1_000_000 == 0 {
            eprintln!("  {done}");
        }
    }
    path
}

fn proofs(c: &mut Criterion) {
    let sizes: Vec<u64> = std::env::var("TRAILMARK_BENCH_PROOF_SIZES")
        .map(|v| v.split(',').map(|s| s.trim().parse().unwrap()).collect())
        .unwrap_or_else(|_| vec![1_000_000, 10_000_000]);
    let largest = *sizes.iter().max().unwrap();
    // Built (or opened) when the first proof benchmark runs, not when the group is set up, so
    // a run filtered to other benchmarks (`-- append`) does not build a 10M-entry log first.
    let log = std::cell::OnceCell::new();
    let log = || {
        log.get_or_init(|| {
            let path = big_log(largest);
            // Measure proof generation, not the disk: read the database through once so it is
            // in the OS page cache, as a serving log's file is (a log just built or last read
            // long ago may be half out of it, and then each proof waits on a few random disk
            // reads; BENCHMARKS.md).
            std::io::copy(
                &mut std::fs::File::open(&path).unwrap(),
                &mut std::io::sink(),
            )
            .unwrap();
            SqliteStore::open_read_only(&path).unwrap()
        })
    };
    let mut g = c.benchmark_group("proof");
    g.sample_size(50);
    for &size in &sizes {
        // Pseudo-random indices spread over the tree, so caches do not flatter the figure.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        g.bench_function(format!("inclusion/size={size}"), |b| {
            let store = log();
            b.iter(|| black_box(store.inclusion_proof(LogIndex(next(size)), size).unwrap()))
        });
        g.bench_function(format!("consistency/size={size}"), |b| {
            let store = log();
            b.iter(|| black_box(store.consistency_proof(1 + next(size - 1), size).unwrap()))
        });
    }
    g.finish();
}

fn verify(c: &mut Criterion) {
    const N: u64 = 100_000;
    let path = big_log(N);
    let store = SqliteStore::open_read_only(&path).unwrap();
    let all: Vec<Vec<u8>> = store
        .raw_leaves(None, N as u32)
        .unwrap()
        .into_iter()
        .map(|r| r.leaf)
        .collect();
    let bytes: u64 = all.iter().map(|l| l.len() as u64).sum();
    let verifier = [signer().verifier()];
    let mut g = c.benchmark_group("verify");
    g.sample_size(10).throughput(Throughput::Bytes(bytes));
    g.bench_function("trailmark_verify/100k", |b| {
        b.iter(|| {
            let r = verify_log(&store, &verifier, &mut |_, _| {}).unwrap();
            assert!(r.is_ok());
        })
    });
    g.bench_function("sha256_same_bytes/100k", |b| {
        b.iter(|| {
            for l in &all {
                black_box(Sha256::digest(l));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, append, proofs, verify);
criterion_main!(benches);
