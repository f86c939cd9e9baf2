//! The embedded backend: conformance plus what only a database file on disk can be asked.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;
use trailmark_log::SignerKey;
use trailmark_model::{Blob, Kind, LogIndex};
use trailmark_store::{Failure, Query, SqliteStore, Store, StoreError, verify_log};

use crate::common::{ORIGIN, notes, signer};

fn fresh() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(&dir.path().join("t.db"), ORIGIN, signer()).unwrap();
    (Arc::new(store), dir)
}

crate::backend_tests!(conformance, crate::sqlite::fresh());

/// A log of `batches` appended through the real writer, closed, and its path.
fn built(batches: &[usize]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::create(&path, ORIGIN, signer()).unwrap();
    for &b in batches {
        s.append(notes(b)).unwrap();
    }
    drop(s);
    (dir, path)
}

/// Opens the database the way an attacker with file access would: triggers dropped first.
fn tamper(path: &Path, sql: &str) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "DROP TRIGGER records_no_update; DROP TRIGGER records_no_delete;
         DROP TRIGGER tree_nodes_no_update; DROP TRIGGER checkpoints_no_delete;",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

fn verify_path(path: &Path) -> trailmark_store::VerifyReport {
    let s = SqliteStore::open_read_only(path).unwrap();
    verify_log(&s, &[signer().verifier()], &mut |_, _| {}).unwrap()
}

#[test]
fn database_refuses_update_and_delete() {
    let (_d, path) = built(&[3]);
    let c = Connection::open(&path).unwrap();
    for sql in [
        "UPDATE records SET kind = 'x.y' WHERE idx = 1",
        "DELETE FROM records WHERE idx = 2",
        "UPDATE checkpoints SET note = 'forged'",
        "DELETE FROM checkpoints",
        "INSERT INTO record_subjects VALUES (0, 'ticket', 'X', 0, ''); DELETE FROM record_subjects",
        "INSERT INTO subject_epochs VALUES (99); DELETE FROM subject_epochs",
        "DELETE FROM meta",
        "DELETE FROM schema_migrations",
        "INSERT INTO idempotency VALUES ('k', 0); DELETE FROM idempotency",
    ] {
        let e = c.execute_batch(sql).unwrap_err().to_string();
        assert!(
            e.contains("append-only") || e.contains("write-once"),
            "{sql}: {e}"
        );
    }
    assert!(verify_path(&path).is_ok());
}

/// A process that opens a store reads only what the leaves after the closed epochs mention to
/// answer subject queries (not each whole record). A leaf damaged behind the store's back is
/// still named, when a query reaches it; a query that does not reach it is answered; and a
/// leaf whose mentions cannot be read at all fails every subject query, naming it.
#[test]
fn a_damaged_leaf_after_the_closed_epochs_is_named_when_a_query_reaches_it() {
    use trailmark_model::{Subject, encode_leaf};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::create(&path, ORIGIN, signer()).unwrap();
    s.append(vec![
        crate::common::note("A-1", 0),
        crate::common::note("B-1", 1),
    ])
    .unwrap();
    let leaf = encode_leaf(&s.record(LogIndex(1)).unwrap().unwrap().record);
    drop(s);
    // The same record, spelled with a space: what it mentions reads, the record does not.
    let spaced = String::from_utf8(leaf).unwrap().replacen(':', ": ", 1);
    tamper(
        &path,
        &format!("UPDATE records SET leaf = CAST('{spaced}' AS BLOB) WHERE idx = 1"),
    );
    let about = |id: &str| Query {
        subject: Some(Subject::parse("ticket", id).unwrap()),
        limit: 10,
        ..Query::default()
    };
    let s = SqliteStore::open_read_only(&path).unwrap();
    let a = s.query(&about("A-1")).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].record.index, LogIndex(0));
    assert!(
        matches!(
            s.query(&about("B-1")),
            Err(StoreError::Corrupt { index: 1, .. })
        ),
        "{:?}",
        s.query(&about("B-1"))
    );
    drop(s);
    // Not a leaf at all: nothing can say what it mentions (the triggers are already gone).
    Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE records SET leaf = CAST('not json' AS BLOB) WHERE idx = 1")
        .unwrap();
    let s = SqliteStore::open_read_only(&path).unwrap();
    assert!(matches!(
        s.query(&about("A-1")),
        Err(StoreError::Corrupt { index: 1, .. })
    ));
}

#[test]
fn reopen_continues_the_same_tree() {
    let (_d, path) = built(&[5, 12]);
    let s = SqliteStore::open(&path, signer()).unwrap();
    assert_eq!(s.size().unwrap(), 17);
    let out = s.append(notes(20)).unwrap();
    assert_eq!(out[0].index, LogIndex(17));
    let report = verify_log(&s, &[signer().verifier()], &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.failures);
    assert_eq!(report.checkpoints, 3);
}

#[test]
fn wrong_key_and_missing_store_are_refused() {
    let (_d, path) = built(&[1]);
    let other = SignerKey::from_seed(ORIGIN, [1u8; 32]).unwrap();
    assert!(matches!(
        SqliteStore::open(&path, other),
        Err(StoreError::Incompatible(_))
    ));
    assert!(matches!(
        SqliteStore::open(&path.with_file_name("absent.db"), signer()),
        Err(StoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        SqliteStore::create(&path, ORIGIN, signer()),
        Err(StoreError::InvalidRequest(_))
    ));
    let ro = SqliteStore::open_read_only(&path).unwrap();
    crate::common::assert_read_only(&ro);
}

#[test]
fn altered_migration_history_is_refused() {
    let (_d, path) = built(&[1]);
    let c = Connection::open(&path).unwrap();
    c.execute_batch(
        "DROP TRIGGER schema_migrations_no_update; UPDATE schema_migrations SET sha256 = 'x' WHERE version = 1;",
    )
    .unwrap();
    drop(c);
    assert!(matches!(
        SqliteStore::open(&path, signer()),
        Err(StoreError::MigrationAltered { version: 1, .. })
    ));
}

#[test]
fn altered_record_is_named() {
    let (_d, path) = built(&[1, 1, 1, 1, 1]);
    tamper(
        &path,
        "UPDATE records SET leaf = CAST(replace(CAST(leaf AS TEXT), 'custom.note', 'custom.nute') AS BLOB) WHERE idx = 2",
    );
    let r = verify_path(&path);
    assert_eq!(r.first_bad_index(), Some(2), "{:?}", r.failures);
    assert!(
        r.failures.contains(&Failure::LeafHash { index: 2 }),
        "{:?}",
        r.failures
    );
}

#[test]
fn altered_record_with_recomputed_leaf_hash_is_caught_by_the_signed_checkpoint() {
    let (_d, path) = built(&[1, 1, 1, 1, 1]);
    // Rewrite record 3 and fix up its leaf hash: only the signed checkpoints can tell.
    let s = SqliteStore::open_read_only(&path).unwrap();
    let mut leaf = String::from_utf8(s.record(LogIndex(3)).unwrap().unwrap().leaf).unwrap();
    drop(s);
    leaf = leaf.replace("custom.note", "custom.nute");
    let hash = trailmark_log::leaf_hash(leaf.as_bytes());
    tamper(
        &path,
        &format!(
            "UPDATE records SET leaf = CAST('{leaf}' AS BLOB), leaf_hash = X'{}' WHERE idx = 3",
            hash.to_hex()
        ),
    );
    let r = verify_path(&path);
    assert!(!r.is_ok());
    assert_eq!(r.first_bad_index(), Some(3), "{:?}", r.failures);
    assert!(
        matches!(
            r.failures[0],
            Failure::Checkpoint {
                size: 4,
                after: 3,
                ..
            }
        ),
        "{:?}",
        r.failures
    );
}

#[test]
fn writer_refuses_to_append_to_a_tree_that_disagrees_with_its_checkpoint() {
    // Opening for append rebuilds the tree's right edge from stored hashes (O(log n), no full
    // scan); if those no longer produce the latest signed root, appending would bury the damage.
    let (_d, path) = built(&[4, 1]);
    tamper(
        &path,
        "UPDATE records SET leaf_hash = zeroblob(32) WHERE idx = 4",
    );
    assert!(matches!(
        SqliteStore::open(&path, signer()),
        Err(StoreError::Damaged(_))
    ));
    // Reading (and so verifying) still works.
    assert!(!verify_path(&path).is_ok());
}

#[test]
fn deep_verification_refuses_leaves_trailmark_could_not_have_written() {
    // Same bytes hashed in and a matching leaf hash: the fast check sees a consistent leaf with
    // the right index; only --deep decodes it and finds it is not a valid canonical record.
    let (_d, path) = built(&[1, 1, 1]);
    let s = SqliteStore::open_read_only(&path).unwrap();
    let leaf = String::from_utf8(s.record(LogIndex(1)).unwrap().unwrap().leaf).unwrap();
    drop(s);
    let odd = leaf.replacen("{", "{ ", 1);
    tamper(
        &path,
        &format!(
            "UPDATE records SET leaf = CAST('{odd}' AS BLOB), leaf_hash = X'{}' WHERE idx = 1",
            trailmark_log::leaf_hash(odd.as_bytes()).to_hex()
        ),
    );
    let ro = SqliteStore::open_read_only(&path).unwrap();
    let deep = trailmark_store::verify_log_with(
        &ro,
        &[signer().verifier()],
        trailmark_store::VerifyOptions { deep: true },
        &mut |_, _| {},
    )
    .unwrap();
    assert!(
        deep.failures
            .iter()
            .any(|f| matches!(f, Failure::Undecodable { index: 1, .. })),
        "{:?}",
        deep.failures
    );
    assert_eq!(deep.first_bad_index(), Some(1));
}

#[test]
fn removed_record_is_named() {
    let (_d, path) = built(&[2, 2, 2]);
    tamper(&path, "DELETE FROM records WHERE idx = 3");
    let r = verify_path(&path);
    assert_eq!(r.first_bad_index(), Some(3), "{:?}", r.failures);
    assert!(
        r.failures.contains(&Failure::Missing { from: 3, to: 4 }),
        "{:?}",
        r.failures
    );
    crate::common::assert_missing_record_is_corrupt(
        &SqliteStore::open_read_only(&path).unwrap(),
        3,
        6,
    );
}

#[test]
fn removed_tail_is_named() {
    let (_d, path) = built(&[2, 2, 2]);
    tamper(&path, "DELETE FROM records WHERE idx >= 4");
    let r = verify_path(&path);
    assert_eq!(r.first_bad_index(), Some(4), "{:?}", r.failures);
    assert!(
        r.failures.contains(&Failure::Truncated {
            size: 6,
            present: 4
        }),
        "{:?}",
        r.failures
    );
}

#[test]
fn tail_removed_with_its_checkpoints_is_caught_by_tree_hashes() {
    // 16 records in one batch store level-2 and level-4 subtree hashes; deleting records 12..15
    // and the last checkpoint leaves a shorter log whose stored subtree hashes still remember.
    let (_d, path) = built(&[8, 8]);
    tamper(
        &path,
        "DELETE FROM records WHERE idx >= 12; DELETE FROM checkpoints WHERE size = 16;",
    );
    let r = verify_path(&path);
    assert!(
        !r.is_ok(),
        "truncation plus checkpoint removal must not pass"
    );
    assert_eq!(r.first_bad_index(), Some(12), "{:?}", r.failures);
    assert!(
        r.failures.contains(&Failure::Orphan {
            level: 2,
            node: 3,
            present: 12
        }),
        "{:?}",
        r.failures
    );
}

#[test]
fn reordered_records_are_named() {
    let (_d, path) = built(&[1, 1, 1, 1]);
    // Swap the contents of rows 1 and 2 (hashes move with them, as an attacker would do).
    tamper(&path, "
        CREATE TEMP TABLE t AS SELECT * FROM records WHERE idx IN (1, 2);
        UPDATE records SET leaf = (SELECT leaf FROM t WHERE idx = 2), leaf_hash = (SELECT leaf_hash FROM t WHERE idx = 2) WHERE idx = 1;
        UPDATE records SET leaf = (SELECT leaf FROM t WHERE idx = 1), leaf_hash = (SELECT leaf_hash FROM t WHERE idx = 1) WHERE idx = 2;");
    let r = verify_path(&path);
    assert_eq!(r.first_bad_index(), Some(1), "{:?}", r.failures);
    assert!(
        r.failures.contains(&Failure::Misplaced {
            index: 1,
            claimed: 2
        }),
        "{:?}",
        r.failures
    );
}

#[test]
fn inserted_record_is_named() {
    let (_d, path) = built(&[3]);
    tamper(
        &path,
        "INSERT INTO records (idx, leaf, leaf_hash, kind, recorded_us) SELECT 3, leaf, leaf_hash, kind, recorded_us FROM records WHERE idx = 0",
    );
    let r = verify_path(&path);
    assert_eq!(r.first_bad_index(), Some(3), "{:?}", r.failures);
    assert!(
        r.failures.iter().any(|f| matches!(
            f,
            Failure::Misplaced {
                index: 3,
                claimed: 0
            }
        )),
        "{:?}",
        r.failures
    );
    assert!(
        r.failures.contains(&Failure::Unsigned { from: 3, to: 4 }),
        "{:?}",
        r.failures
    );
}

#[test]
fn altered_tree_hash_is_named() {
    let (_d, path) = built(&[16]);
    tamper(
        &path,
        "UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 1",
    );
    let r = verify_path(&path);
    assert!(
        r.failures.contains(&Failure::Node { level: 2, node: 1 }),
        "{:?}",
        r.failures
    );
    assert_eq!(r.first_bad_index(), Some(4));
    // Proofs that need that node no longer verify; the verifier sees it.
    let s = SqliteStore::open_read_only(&path).unwrap();
    let cp = s.latest_checkpoint().unwrap().unwrap();
    let leaf = s.record(LogIndex(0)).unwrap().unwrap().leaf_hash;
    let proof = s.inclusion_proof(LogIndex(0), 16).unwrap();
    assert!(trailmark_log::verify_inclusion(0, 16, &leaf, &proof, &cp.root).is_err());
}

#[test]
fn forged_checkpoint_is_named() {
    let (_d, path) = built(&[2, 2]);
    let forger = SignerKey::from_seed(ORIGIN, [3u8; 32]).unwrap();
    let s = SqliteStore::open_read_only(&path).unwrap();
    let cp = s.checkpoint(2).unwrap().unwrap();
    drop(s);
    let body = cp.note.split("\n\n").next().unwrap().to_owned() + "\n";
    let forged = forger.sign(&body).unwrap();
    tamper(
        &path,
        &format!(
            "DROP TRIGGER checkpoints_no_update; UPDATE checkpoints SET note = '{forged}' WHERE size = 2"
        ),
    );
    let r = verify_path(&path);
    assert!(
        matches!(&r.failures[..], [Failure::Checkpoint { size: 2, .. }]),
        "{:?}",
        r.failures
    );
}

/// Two writers on one database file, as when a `trailmark` command runs beside `trailmark
/// serve`: each continues from the stored head rather than from the frontier it remembers, so
/// both keep appending, into one gapless log whose every checkpoint verifies, and a shared
/// idempotency key is appended once whichever writer gets there first.
#[test]
fn two_writers_on_one_file_append_into_one_gapless_log() {
    const THREADS: usize = 2;
    const ROUNDS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::create(&path, ORIGIN, signer()).unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, signer()).unwrap());
    let acks = crate::common::append_from_two_writers(&a, &b, THREADS, ROUNDS);
    for i in (0..ROUNDS).step_by(5) {
        let label = format!("key:shared-{i}");
        let indices: std::collections::BTreeSet<u64> =
            acks.iter().filter(|x| x.3 == label).map(|x| x.0).collect();
        assert_eq!(
            indices.len(),
            1,
            "{label}: every caller told the same index"
        );
    }
    // Every index acknowledged once, and together they are the whole log.
    let mut appended: Vec<u64> = acks.iter().filter(|x| !x.2).map(|x| x.0).collect();
    appended.sort_unstable();
    let size = a.size().unwrap();
    assert_eq!(appended, (0..size).collect::<Vec<_>>());
    assert_eq!(b.size().unwrap(), size);
    for (index, hash, duplicate, label) in &acks {
        let stored = a.record(LogIndex(*index)).unwrap().unwrap();
        assert_eq!(stored.leaf_hash, *hash, "record {index}");
        if !duplicate && !label.starts_with("key:") {
            assert_eq!(stored.record.subjects[0].id.as_str(), label.as_str());
        }
    }
    drop((a, b));
    let report = verify_path(&path);
    assert!(report.is_ok(), "{:?}", report.failures);
}

/// Under sustained appends the WAL is started over, not grown for as long as appends go on
/// (it grew by ~100 MB/s under webhook load before), and the log stays whole.
#[test]
fn the_wal_stays_bounded_under_sustained_appends() {
    let (_d, path) = built(&[1]);
    let s = SqliteStore::open(&path, signer()).unwrap();
    // 400 MB of distinct raw inputs: six times the length at which the WAL is started over
    // (64 MiB, or 128 MiB at the latest).
    for i in 0..2_000u32 {
        let mut bytes = vec![7u8; 200_000];
        bytes[..4].copy_from_slice(&i.to_be_bytes());
        s.append_with_blobs(notes(1), vec![Blob::new(bytes)])
            .unwrap();
    }
    let wal = std::fs::metadata(path.with_extension("db-wal"))
        .unwrap()
        .len();
    assert!(wal < 160 << 20, "the WAL is {} MB", wal >> 20);
    assert_eq!(s.size().unwrap(), 2_001);
    drop(s);
    let r = verify_path(&path);
    assert!(r.is_ok(), "{:?}", r.failures);
}

/// The subject index of an epoch (4,096 records) is written once the epoch is complete, a
/// slice per commit, whichever writer appends: two writers on one file, alternating batches
/// across epoch boundaries, each knowing only part of the records, leave an index that answers
/// as the records say, through either writer and through a store opened afterwards, with every
/// epoch closed in turn.
#[test]
fn two_writers_close_subject_index_epochs_between_them() {
    use crate::conformance::{assert_spread_answers, spread_record};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let a = SqliteStore::create(&path, ORIGIN, signer()).unwrap();
    let b = SqliteStore::open(&path, signer()).unwrap();
    let append = |s: &SqliteStore, start: usize, end: usize| {
        let out = s.append((start..end).map(spread_record).collect()).unwrap();
        assert_eq!(out[0].index, LogIndex(start as u64));
    };
    let size = 9_000;
    for (n, start) in (0..size).step_by(700).enumerate() {
        append(
            if n % 2 == 0 { &a } else { &b },
            start,
            (start + 700).min(size),
        );
    }
    assert_spread_answers(&a, size);
    assert_spread_answers(&b, size);
    // Rows of an epoch (a subject row and a link row per record), and whether it is closed.
    let epoch = |e: i64| -> (i64, bool) {
        let c = Connection::open(&path).unwrap();
        let rows = c
            .query_row(
                "SELECT count(*) FROM record_subjects WHERE epoch = ?1",
                [e],
                |r| r.get(0),
            )
            .unwrap();
        let closed = c
            .query_row(
                "SELECT count(*) FROM subject_epochs WHERE epoch = ?1",
                [e],
                |r| r.get::<_, i64>(0),
            )
            .unwrap();
        (rows, closed == 1)
    };
    // Epoch 0 is closed; epoch 1, complete since the 8,400th record, has some of its slices.
    assert_eq!(epoch(0), (2 * 4096, true));
    let (rows, closed) = epoch(1);
    assert!(rows > 0 && rows < 2 * 4096 && !closed, "{rows} {closed}");
    // A few more commits close it, and nothing of the open epoch is written.
    for start in (size..size + 2_100).step_by(700) {
        append(&a, start, start + 700);
    }
    assert_eq!(epoch(1), (2 * 4096, true));
    assert!(!epoch(2).1);
    assert_spread_answers(&b, size + 2_100);
    drop((a, b));
    assert_spread_answers(&SqliteStore::open_read_only(&path).unwrap(), size + 2_100);
    assert!(verify_path(&path).is_ok());
}

/// A store of schema 1, whose subject index has every record's rows: upgrading records its
/// complete epochs as closed, and it answers as before.
#[test]
fn a_schema_1_store_upgrades_with_its_complete_epochs_closed() {
    use crate::conformance::{assert_spread_answers, spread_record};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::create(&path, ORIGIN, signer()).unwrap();
    s.append((0..4_100).map(spread_record).collect()).unwrap();
    drop(s);
    // Back to schema 1: its index of the open epoch too, no record of closed epochs, the kind
    // index on `records`.
    let c = Connection::open(&path).unwrap();
    c.execute_batch(
        "DROP TABLE subject_epochs;
         DROP TABLE record_kinds;
         CREATE INDEX records_kind ON records (kind, idx);
         DROP TRIGGER schema_migrations_no_delete;
         DELETE FROM schema_migrations WHERE version IN (2, 3);",
    )
    .unwrap();
    for i in 4_096..4_100u64 {
        let r = spread_record(i as usize);
        c.execute(
            "INSERT INTO record_subjects (epoch, type, id, idx, rel) VALUES (1, 'ticket', ?1, ?2, '')",
            rusqlite::params![r.subjects[0].id, i as i64],
        )
        .unwrap();
    }
    drop(c);
    let s = SqliteStore::open(&path, signer()).unwrap();
    let closed: Vec<i64> = Connection::open(&path)
        .unwrap()
        .prepare("SELECT epoch FROM subject_epochs")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(closed, vec![0]);
    assert_spread_answers(&s, 4_100);
}

/// A store of schema 2 kept its kind index on `records`: upgrading fills the table of kinds
/// from every record, drops the index, and queries by kind answer as before, a deleted row
/// then named rather than skipped.
#[test]
fn a_schema_2_store_upgrades_with_every_kind_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::create(&path, ORIGIN, signer()).unwrap();
    s.append(notes(30)).unwrap();
    drop(s);
    let c = Connection::open(&path).unwrap();
    c.execute_batch(
        "DROP TABLE record_kinds;
         CREATE INDEX records_kind ON records (kind, idx);
         DROP TRIGGER schema_migrations_no_delete;
         DELETE FROM schema_migrations WHERE version = 3;",
    )
    .unwrap();
    drop(c);
    let s = SqliteStore::open(&path, signer()).unwrap();
    s.append(notes(2)).unwrap();
    let by_kind = |s: &SqliteStore| {
        s.query(&Query {
            kind: Some(Kind::parse("custom.note").unwrap()),
            limit: 100,
            ..Query::default()
        })
        .map(|rs| rs.iter().map(|r| r.record.index.0).collect::<Vec<_>>())
    };
    assert_eq!(by_kind(&s).unwrap(), (0..32).collect::<Vec<_>>());
    drop(s);
    let c = Connection::open(&path).unwrap();
    let (rows, index): (i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM record_kinds),
                    (SELECT count(*) FROM sqlite_master WHERE name = 'records_kind')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, index), (32, 0));
    tamper(&path, "DELETE FROM records WHERE idx = 7");
    let s = SqliteStore::open_read_only(&path).unwrap();
    assert!(matches!(
        by_kind(&s),
        Err(StoreError::Corrupt { index: 7, .. })
    ));
}

/// A store written before the index was kept an epoch at a time holds rows of its open epoch
/// too: they are not counted twice, and closing that epoch keeps one row per fact.
#[test]
fn open_epoch_rows_of_an_earlier_schema_count_once() {
    let (_d, path) = built(&[10]);
    let c = Connection::open(&path).unwrap();
    for i in 0..10 {
        c.execute(
            "INSERT INTO record_subjects (epoch, type, id, idx, rel) VALUES (0, 'ticket', 'PROJ-1', ?1, '')",
            [i],
        )
        .unwrap();
    }
    drop(c);
    let s = SqliteStore::open(&path, signer()).unwrap();
    let about = |s: &SqliteStore| {
        s.mentions(&"ticket:PROJ-1".parse().unwrap())
            .unwrap()
            .into_iter()
            .map(|(i, _)| i.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(about(&s), (0..10).collect::<Vec<_>>());
    s.append(notes(4_100)).unwrap();
    assert_eq!(about(&s), (0..4_110).collect::<Vec<_>>());
    drop(s);
    let rows: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM record_subjects", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 4096);
}

/// A record deleted from the open epoch leaves its subjects unknown: the append that would
/// close the epoch without them is refused as damage, and nothing of it is stored.
#[test]
fn an_epoch_missing_a_record_is_not_closed() {
    let (_d, path) = built(&[10]);
    tamper(&path, "DELETE FROM records WHERE idx = 3");
    let s = SqliteStore::open(&path, signer()).unwrap();
    match s.append(notes(4_100)) {
        Err(StoreError::Damaged(m)) => assert!(m.contains("record 3 is missing"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.size().unwrap(), 10);
}
