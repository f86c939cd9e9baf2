//! The PostgreSQL backend: the conformance suite on a fresh database per test, plus what only a
//! shared database can be asked: triggers and grants, migration history, several instances on
//! one log, an instance lost mid-stream, and calls from inside another tokio runtime.
//!
//! Needs a PostgreSQL server at `postgres://postgres@127.0.0.1:5432/test` with trust auth (CI
//! starts one; `TRAILMARK_TEST_POSTGRES` names another). Without one these tests fail, loudly:
//! a skipped backend would look like a passing one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_postgres::NoTls;
use trailmark_log::{Frontier, SignerKey, leaf_hash, verify_checkpoint};
use trailmark_model::LogIndex;
use trailmark_store::{PgStore, Store, StoreError, verify_log};

use crate::common::{Ack, ORIGIN, notes, signer, tagged};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn admin_url() -> String {
    std::env::var("TRAILMARK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// `url` with its database name replaced (the admin URL has no query string).
fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database name");
    format!("{base}/{db}")
}

/// `url` with its user replaced.
fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

/// A small synchronous SQL client for the tests, on its own current-thread runtime.
struct Sql {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl Sql {
    fn connect(url: &str) -> Result<Sql, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, NoTls)
                .await
                .map_err(|e| message(&e))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, String>(client)
        })?;
        Ok(Sql { rt, client })
    }

    fn exec(&self, sql: &str) -> Result<(), String> {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .map_err(|e| message(&e))
    }

    /// The first column of every row, as text.
    fn column(&self, sql: &str) -> Vec<Option<String>> {
        let msgs = self.rt.block_on(self.client.simple_query(sql)).unwrap();
        msgs.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
                _ => None,
            })
            .collect()
    }
}

fn admin() -> Sql {
    let url = admin_url();
    Sql::connect(&url).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url} ({e}). The PostgreSQL backend's tests need a \
             server there with trust auth (.ci/run starts one); set TRAILMARK_TEST_POSTGRES to \
             use another."
        )
    })
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh, empty database, dropped (with any sessions still on it) at the end of the test.
pub struct TestDb {
    pub name: String,
    /// Connects as the admin (the owner of what `PgStore::create` makes).
    pub url: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let name = unique("trailmark_t");
        admin()
            .exec(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        TestDb {
            url: with_database(&admin_url(), &name),
            name,
        }
    }

    fn sql(&self) -> Sql {
        Sql::connect(&self.url).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(a) = Sql::connect(&admin_url()) {
            let _ = a.exec(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A login role, dropped at the end of the test (after the databases that mention it).
struct TestRole(String);

impl TestRole {
    fn new() -> TestRole {
        let name = unique("trailmark_svc");
        admin().exec(&format!("CREATE ROLE {name} LOGIN")).unwrap();
        TestRole(name)
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        if let Ok(a) = Sql::connect(&admin_url()) {
            let _ = a.exec(&format!("DROP ROLE IF EXISTS {}", self.0));
        }
    }
}

fn fresh() -> (Arc<dyn Store>, TestDb) {
    let db = TestDb::new();
    let store = PgStore::create(&db.url, ORIGIN, signer()).unwrap();
    (Arc::new(store), db)
}

crate::backend_tests!(conformance, crate::postgres::fresh());

/// A log of `batches` appended through the real writer, closed, and its database.
fn built(batches: &[usize]) -> TestDb {
    let db = TestDb::new();
    let s = PgStore::create(&db.url, ORIGIN, signer()).unwrap();
    for &b in batches {
        s.append(notes(b)).unwrap();
    }
    db
}

fn verify_url(url: &str) -> trailmark_store::VerifyReport {
    let s = PgStore::open_read_only(url).unwrap();
    verify_log(&s, &[signer().verifier()], &mut |_, _| {}).unwrap()
}

const LOG_TABLES: [&str; 9] = [
    "records",
    "record_kinds",
    "record_subjects",
    "tree_nodes",
    "checkpoints",
    "blobs",
    "idempotency",
    "meta",
    "schema_migrations",
];

#[test]
fn database_refuses_update_delete_and_truncate_even_to_the_owner() {
    let db = built(&[3]);
    let owner = db.sql();
    for table in LOG_TABLES {
        for sql in [
            format!(
                "UPDATE {table} SET {0} = {0} WHERE false",
                first_column(table)
            ),
            format!("DELETE FROM {table}"),
            format!("TRUNCATE {table}"),
        ] {
            let e = owner.exec(&sql).unwrap_err();
            assert!(
                e.contains("append-only") || e.contains("write-once"),
                "{sql}: {e}"
            );
        }
    }
    // Replication mode does not silence the triggers (ENABLE ALWAYS).
    let e = owner
        .exec("SET session_replication_role = replica; DELETE FROM records")
        .unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    assert!(verify_url(&db.url).is_ok());
}

fn first_column(table: &str) -> &'static str {
    match table {
        "records" | "record_kinds" | "record_subjects" | "tree_nodes" | "idempotency" => "idx",
        "checkpoints" => "size",
        "blobs" => "digest",
        "meta" => "key",
        _ => "version",
    }
}

#[test]
fn a_select_insert_only_role_appends_but_is_refused_rewrites_by_permission() {
    // Declared first so it is dropped after the database that grants it privileges.
    let role = TestRole::new();
    let db = built(&[2]);
    let owner = db.sql();
    owner
        .exec(&format!(
            "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {}",
            role.0
        ))
        .unwrap();
    let service_url = with_user(&db.url, &role.0);

    // The service role runs the store: open (migrations already applied), append, verify.
    let s = PgStore::open(&service_url, signer()).unwrap();
    let out = s.append(notes(5)).unwrap();
    assert_eq!(out[0].index, LogIndex(2));
    let report = verify_log(&s, &[signer().verifier()], &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.failures);
    drop(s);

    // As the service role, rewriting is refused by permission, before any trigger runs...
    let service = Sql::connect(&service_url).unwrap();
    for table in LOG_TABLES {
        for sql in [
            format!(
                "UPDATE {table} SET {0} = {0} WHERE false",
                first_column(table)
            ),
            format!("DELETE FROM {table}"),
            format!("TRUNCATE {table}"),
        ] {
            let e = service.exec(&sql).unwrap_err();
            assert!(e.contains("permission denied"), "{sql}: {e}");
        }
    }
    // ...and it cannot take the triggers away.
    let e = service
        .exec("ALTER TABLE records DISABLE TRIGGER records_append_only")
        .unwrap_err();
    assert!(e.contains("must be owner"), "{e}");
    // As the owner, the same statements are refused by the triggers.
    let e = owner.exec("DELETE FROM records").unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    let e = owner
        .exec("UPDATE checkpoints SET note = 'forged'")
        .unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    // PUBLIC holds none of those privileges.
    let public = owner.column(
        "SELECT count(*) FROM information_schema.role_table_grants \
         WHERE grantee = 'PUBLIC' AND table_schema = 'public' \
         AND privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')",
    );
    assert_eq!(public, vec![Some("0".to_owned())]);
    assert!(verify_url(&db.url).is_ok());
    drop(db);
    drop(role);
}

#[test]
fn altered_migration_history_is_refused() {
    let db = built(&[1]);
    let owner = db.sql();
    // The history itself is append-only...
    let e = owner
        .exec("UPDATE schema_migrations SET sha256 = 'x' WHERE version = 1")
        .unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    // ...so altering it takes the owner disabling the trigger first, as an attacker would.
    owner
        .exec(
            "ALTER TABLE schema_migrations DISABLE TRIGGER schema_migrations_append_only;
             UPDATE schema_migrations SET sha256 = 'x' WHERE version = 1;
             ALTER TABLE schema_migrations ENABLE ALWAYS TRIGGER schema_migrations_append_only;",
        )
        .unwrap();
    assert!(matches!(
        PgStore::open(&db.url, signer()),
        Err(StoreError::MigrationAltered { version: 1, .. })
    ));
    assert!(matches!(
        PgStore::open_read_only(&db.url),
        Err(StoreError::MigrationAltered { version: 1, .. })
    ));
}

#[test]
fn open_and_create_refuse_what_they_should() {
    let db = built(&[1]);
    let other = SignerKey::from_seed(ORIGIN, [1u8; 32]).unwrap();
    assert!(matches!(
        PgStore::open(&db.url, other),
        Err(StoreError::Incompatible(_))
    ));
    assert!(matches!(
        PgStore::create(&db.url, ORIGIN, signer()),
        Err(StoreError::InvalidRequest(_))
    ));
    let ro = PgStore::open_read_only(&db.url).unwrap();
    crate::common::assert_read_only(&ro);
    assert_eq!(ro.size().unwrap(), 1);

    // A database without a log is refused, and left as it was (no tables created).
    let empty = TestDb::new();
    assert!(matches!(
        PgStore::open(&empty.url, signer()),
        Err(StoreError::InvalidRequest(_))
    ));
    assert_eq!(
        empty
            .sql()
            .column("SELECT to_regclass('schema_migrations')::text"),
        vec![None]
    );

    // Not a URL, a bad URL, a bad origin, and an unreachable server: errors, not hangs or panics.
    assert!(matches!(
        PgStore::open("/var/lib/trailmark/log.db", signer()),
        Err(StoreError::InvalidRequest(_))
    ));
    let e = PgStore::open(
        "postgres://u:secret@127.0.0.1:5432/x?sslmode=bogus",
        signer(),
    )
    .unwrap_err();
    assert!(matches!(e, StoreError::InvalidRequest(_)), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
    assert!(matches!(
        PgStore::create(&empty.url, "two\nlines", signer()),
        Err(StoreError::InvalidRequest(_))
    ));
    let e = PgStore::open("postgres://u:secret@127.0.0.1:1/x", signer()).unwrap_err();
    assert!(matches!(e, StoreError::Backend { .. }), "{e}");
    assert!(e.to_string().contains("Connection refused"), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
}

#[test]
fn reopen_continues_the_same_tree() {
    let db = built(&[5, 12]);
    let s = PgStore::open(&db.url, signer()).unwrap();
    assert_eq!(s.size().unwrap(), 17);
    let out = s.append(notes(20)).unwrap();
    assert_eq!(out[0].index, LogIndex(17));
    let report = verify_log(&s, &[signer().verifier()], &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.failures);
    assert_eq!(report.checkpoints, 3);
}

#[test]
fn works_from_inside_another_tokio_runtime() {
    // The server calls the store from `spawn_blocking` threads of its own runtime, and may drop
    // it inside an async task at shutdown.
    let db = TestDb::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = db.url.clone();
    rt.block_on(async move {
        let s: Arc<PgStore> = tokio::task::spawn_blocking(move || {
            Arc::new(PgStore::create(&url, ORIGIN, signer()).unwrap())
        })
        .await
        .unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let s = Arc::clone(&s);
                tokio::task::spawn_blocking(move || {
                    for i in 0..5 {
                        s.append(vec![crate::common::note(&format!("R-{t}"), i)])
                            .unwrap();
                    }
                    let size = s.size().unwrap();
                    s.inclusion_proof(LogIndex(0), size).unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Even called straight from an async task (which blocks that worker, as any blocking
        // call does), the store answers instead of panicking about nested runtimes.
        assert_eq!(s.size().unwrap(), 20);
        assert!(s.record(LogIndex(19)).unwrap().is_some());
        let report = verify_log(&*s, &[signer().verifier()], &mut |_, _| {}).unwrap();
        assert!(report.is_ok(), "{:?}", report.failures);
        // Dropped inside the runtime: the writer is joined, the store's runtime shut down in
        // the background, no panic.
        drop(s);
    });
}

/// The stored log is gapless and every checkpoint's signed root equals the root recomputed from
/// the stored leaves at its size; every acknowledged record is present, at its own index, with
/// what was sent. A stored record nobody was told about can only come from a call that failed
/// when its commit's outcome was unknown (the connection died during COMMIT): `unacked` allows
/// at most that many, from the instance whose label starts with the given prefix.
fn check_log(url: &str, acks: &[Ack], unacked: Option<(&str, usize)>) {
    let s = PgStore::open_read_only(url).unwrap();
    let size = s.size().unwrap();

    // Each acknowledged append has an index of its own, inside the log.
    let mut appended: Vec<u64> = acks.iter().filter(|a| !a.2).map(|a| a.0).collect();
    appended.sort_unstable();
    assert!(
        appended.windows(2).all(|w| w[0] < w[1]),
        "an index acknowledged twice"
    );
    assert!(appended.last().is_none_or(|&i| i < size));
    let missing: Vec<u64> = (0..size)
        .filter(|i| appended.binary_search(i).is_err())
        .collect();
    match unacked {
        None => assert!(missing.is_empty(), "unacknowledged records {missing:?}"),
        Some((prefix, max)) => {
            assert!(missing.len() <= max, "unacknowledged records {missing:?}");
            for i in missing {
                let r = s.record(LogIndex(i)).unwrap().unwrap();
                assert!(r.record.subjects[0].id.starts_with(prefix), "record {i}");
            }
        }
    }

    // Every acknowledged record is present, with the hash its caller was given.
    let mut by_label: HashMap<&str, u64> = HashMap::new();
    for (index, hash, duplicate, label) in acks {
        let stored = s.record(LogIndex(*index)).unwrap().unwrap();
        assert_eq!(stored.leaf_hash, *hash, "record {index}");
        if !duplicate {
            let subject = &stored.record.subjects[0];
            assert!(
                subject.id == *label || label.starts_with("key:"),
                "record {index}: {} != {label}",
                subject.id
            );
        }
        if let Some(key) = label.strip_prefix("key:") {
            // Every instance that sent a key was told the same index.
            let first = *by_label.entry(key).or_insert(*index);
            assert_eq!(first, *index, "key {key}");
        }
    }

    // Checkpoints: recompute the tree from the leaves and compare at every signed size.
    let mut frontier = Frontier::new();
    let mut roots = BTreeMap::new();
    let mut after = None;
    loop {
        let leaves = s.raw_leaves(after, 1000).unwrap();
        if leaves.is_empty() {
            break;
        }
        for leaf in &leaves {
            assert_eq!(leaf.idx, frontier.size(), "stored indices are gapless");
            frontier.append(leaf_hash(&leaf.leaf), |_, _| {});
            roots.insert(frontier.size(), frontier.root());
        }
        after = leaves.last().map(|l| l.idx);
    }
    let checkpoints = s.raw_checkpoints(None, u32::MAX).unwrap();
    assert!(!checkpoints.is_empty());
    let mut last = 0;
    for cp in &checkpoints {
        assert!(cp.size > last, "checkpoint sizes strictly increase");
        last = cp.size;
        let parsed = verify_checkpoint(&cp.note, &[signer().verifier()], Some(ORIGIN)).unwrap();
        assert_eq!(parsed.size, cp.size);
        assert_eq!(
            Some(&parsed.root),
            roots.get(&cp.size),
            "root at {}",
            cp.size
        );
        assert_eq!(parsed.root.as_bytes().as_slice(), cp.root.as_slice());
    }
    assert_eq!(last, size);
    assert_eq!(frontier.size(), size);
    let report = verify_log(&s, &[signer().verifier()], &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.failures);
}

#[test]
fn two_instances_append_concurrently_into_one_gapless_log() {
    const THREADS: usize = 3;
    const ROUNDS: usize = 25;
    let db = TestDb::new();
    let a: Arc<dyn Store> = Arc::new(PgStore::create(&db.url, ORIGIN, signer()).unwrap());
    let b: Arc<dyn Store> = Arc::new(PgStore::open(&db.url, signer()).unwrap());
    let acks = crate::common::append_from_two_writers(&a, &b, THREADS, ROUNDS);
    drop((a, b));
    check_log(&db.url, &acks, None);
}

#[test]
fn an_instance_lost_mid_stream_leaves_the_other_appending_from_the_head() {
    let db = TestDb::new();
    let a_url = format!("{}?application_name=trailmark_instance_a", db.url);
    let a = Arc::new(PgStore::create(&a_url, ORIGIN, signer()).unwrap());
    let b = Arc::new(PgStore::open(&db.url, signer()).unwrap());
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let stop_a = Arc::new(AtomicBool::new(false));
    let stop_b = Arc::new(AtomicBool::new(false));
    let a_after_kill = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(AtomicBool::new(false));

    let spawn = |name: &'static str, store: Arc<PgStore>, stop: Arc<AtomicBool>| {
        let acks = Arc::clone(&acks);
        let killed = Arc::clone(&killed);
        let a_after_kill = Arc::clone(&a_after_kill);
        std::thread::spawn(move || {
            let mut i = 0;
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) && i < 2_000 {
                let was_killed = killed.load(Ordering::SeqCst);
                match store.append(vec![tagged(name, 0, i)]) {
                    Ok(out) => {
                        if name == "A" && was_killed {
                            a_after_kill.fetch_add(1, Ordering::SeqCst);
                        }
                        let a = out[0];
                        acks.lock().unwrap().push((
                            a.index.0,
                            a.leaf_hash,
                            a.duplicate,
                            format!("{name}-0-{i}"),
                        ));
                    }
                    // Only a batch caught by the kill may fail; it was not acknowledged.
                    Err(e) => errors.push(e),
                }
                i += 1;
            }
            errors
        })
    };
    let ta = spawn("A", Arc::clone(&a), Arc::clone(&stop_a));
    let tb = spawn("B", Arc::clone(&b), Arc::clone(&stop_b));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    let wait_for = |n: usize| wait_until("acknowledgements", &|| acks.lock().unwrap().len() >= n);
    wait_for(40);
    // Instance A loses its sessions, as if its host dropped off the network mid-transaction:
    // the server rolls back whatever it had open and releases the append lock.
    let terminated = db.sql().column(&format!(
        "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity \
         WHERE application_name = 'trailmark_instance_a' AND datname = '{}'",
        db.name
    ));
    assert!(!terminated.is_empty());
    killed.store(true, Ordering::SeqCst);
    wait_for(120);
    // A reconnects and appends again; then it is stopped and dropped while B goes on.
    wait_until("A to append again", &|| {
        a_after_kill.load(Ordering::SeqCst) > 0
    });
    stop_a.store(true, Ordering::SeqCst);
    let a_errors = ta.join().unwrap();
    assert!(a_errors.len() < 5, "{a_errors:?}");
    for e in &a_errors {
        assert!(matches!(e, StoreError::Backend { .. }), "{e}");
    }
    drop(a);
    let before = acks.lock().unwrap().len();
    wait_for(before + 40);
    stop_b.store(true, Ordering::SeqCst);
    let b_errors = tb.join().unwrap();
    assert!(b_errors.is_empty(), "{b_errors:?}");

    // B picks up the head: its next append lands right after everything stored.
    let size = b.size().unwrap();
    let out = b.append(notes(1)).unwrap();
    assert_eq!(out[0].index, LogIndex(size));
    let mut acks = acks.lock().unwrap().clone();
    acks.push((out[0].index.0, out[0].leaf_hash, false, "PROJ-1".into()));
    drop(b);
    // A call of A's that failed may still have committed (its connection was cut during COMMIT).
    check_log(&db.url, &acks, Some(("A-", a_errors.len())));
}

#[test]
fn a_tree_that_disagrees_with_its_checkpoint_is_refused_and_named() {
    let db = TestDb::new();
    let a = PgStore::create(&db.url, ORIGIN, signer()).unwrap();
    let b = PgStore::open(&db.url, signer()).unwrap();
    a.append(notes(4)).unwrap();
    a.append(notes(1)).unwrap();
    // The owner, triggers off, rewrites the leaf hash B needs to rebuild its frontier at size 5.
    db.sql()
        .exec(
            "ALTER TABLE records DISABLE TRIGGER records_append_only;
             UPDATE records SET leaf_hash = '\\x00000000000000000000000000000000000000000000000000000000000000ff' WHERE idx = 4;
             ALTER TABLE records ENABLE ALWAYS TRIGGER records_append_only;",
        )
        .unwrap();
    // B's cached frontier is stale (A appended), so under the lock it rebuilds from stored
    // nodes, which no longer reproduce the signed root: it refuses to bury the damage.
    assert!(matches!(b.append(notes(1)), Err(StoreError::Damaged(_))));
    // A fresh instance refuses at startup.
    assert!(matches!(
        PgStore::open(&db.url, signer()),
        Err(StoreError::Damaged(_))
    ));
    drop((a, b));
    // Reading (and so verifying) still works, and names the record.
    let r = verify_url(&db.url);
    assert_eq!(r.first_bad_index(), Some(4), "{:?}", r.failures);
    assert_eq!(verify_url(&db.url).records, 5);
}

#[test]
fn removed_records_and_forged_checkpoints_are_named_by_verify() {
    let db = built(&[2, 2, 2]);
    let owner = db.sql();
    owner
        .exec(
            "ALTER TABLE records DISABLE TRIGGER records_append_only;
             DELETE FROM records WHERE idx = 3;",
        )
        .unwrap();
    let r = verify_url(&db.url);
    assert_eq!(r.first_bad_index(), Some(3), "{:?}", r.failures);
    assert!(
        r.failures
            .contains(&trailmark_store::Failure::Missing { from: 3, to: 4 }),
        "{:?}",
        r.failures
    );
    crate::common::assert_missing_record_is_corrupt(
        &PgStore::open_read_only(&db.url).unwrap(),
        3,
        6,
    );

    let db = built(&[2, 2]);
    let forger = SignerKey::from_seed(ORIGIN, [3u8; 32]).unwrap();
    let s = PgStore::open_read_only(&db.url).unwrap();
    let cp = s.checkpoint(2).unwrap().unwrap();
    drop(s);
    let body = cp.note.split("\n\n").next().unwrap().to_owned() + "\n";
    let forged = forger.sign(&body).unwrap();
    db.sql()
        .exec(&format!(
            "ALTER TABLE checkpoints DISABLE TRIGGER checkpoints_append_only;
             UPDATE checkpoints SET note = '{forged}' WHERE size = 2;"
        ))
        .unwrap();
    let r = verify_url(&db.url);
    assert!(
        matches!(
            &r.failures[..],
            [trailmark_store::Failure::Checkpoint { size: 2, .. }]
        ),
        "{:?}",
        r.failures
    );
}

#[test]
fn a_failed_batch_rolls_back_releases_the_lock_and_leaves_nothing() {
    let db = TestDb::new();
    let a = PgStore::create(&db.url, ORIGIN, signer()).unwrap();
    let b = PgStore::open(&db.url, signer()).unwrap();
    a.append(notes(4)).unwrap();
    // A stray subtree hash where the next four records' level-2 node will go: that batch fails
    // at its tree-node insert, after its records went in, inside the transaction.
    let owner = db.sql();
    owner
        .exec(&format!(
            "INSERT INTO tree_nodes VALUES (2, 1, '\\x{}')",
            "00".repeat(32)
        ))
        .unwrap();
    let e = a.append(notes(4)).unwrap_err();
    assert!(
        matches!(
            &e,
            StoreError::Backend {
                op: "storing tree nodes",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(a.size().unwrap(), 4);
    assert!(a.record(LogIndex(4)).unwrap().is_none());
    // A's session did not stay in its transaction holding the append lock: B appends at once,
    // at the index A's failed batch would have taken.
    let started = std::time::Instant::now();
    assert_eq!(b.append(notes(1)).unwrap()[0].index, LogIndex(4));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    // A failure found before any insert (a stray record past the signed head) is refused by
    // each instance in turn, and promptly: the one refused first rolled back and let go of the
    // lock (the other would otherwise wait out lock_timeout).
    owner
        .exec("INSERT INTO records SELECT 9, leaf, leaf_hash, kind, recorded_us FROM records WHERE idx = 0")
        .unwrap();
    let started = std::time::Instant::now();
    for s in [&b, &a, &b] {
        assert!(matches!(s.append(notes(1)), Err(StoreError::Damaged(_))));
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    owner
        .exec(
            "ALTER TABLE records DISABLE TRIGGER records_append_only;
             DELETE FROM records WHERE idx = 9;
             ALTER TABLE records ENABLE ALWAYS TRIGGER records_append_only;",
        )
        .unwrap();
    owner
        .exec(
            "ALTER TABLE tree_nodes DISABLE TRIGGER tree_nodes_append_only;
             DELETE FROM tree_nodes WHERE level = 2 AND idx = 1;
             ALTER TABLE tree_nodes ENABLE ALWAYS TRIGGER tree_nodes_append_only;",
        )
        .unwrap();
    // A rolled its frontier back and now catches up with B's append.
    let out = a.append(notes(3)).unwrap();
    assert_eq!(
        out.iter().map(|o| o.index.0).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    drop((a, b));
    let r = verify_url(&db.url);
    assert!(r.is_ok(), "{:?}", r.failures);
    assert_eq!(r.records, 8);
}
