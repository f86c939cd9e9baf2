//! The PostgreSQL backend: one log shared by several stateless `trailmark serve` instances.
//!
//! **Bridging.** The [`Store`] trait is synchronous; this backend is a tokio-postgres client on a
//! small runtime the store owns (two worker threads that only do I/O). A call spawns its work
//! onto that runtime and waits for the answer on a plain channel, so it works from any thread —
//! a `spawn_blocking` thread of the server's runtime included — and, unlike `Handle::block_on`,
//! cannot panic for being called from inside another runtime.
//!
//! **Sequencing across instances.** Every append transaction first takes a transaction-scoped
//! advisory lock whose key is derived from the log's origin, then reads the head (latest
//! checkpoint size and root). If the head is not where this instance's cached frontier is,
//! another instance appended: the frontier is rebuilt from O(log n) stored nodes and must
//! reproduce the stored root, or the append is refused. Then records, subjects, tree nodes,
//! blobs, idempotency keys and ONE signed checkpoint are inserted (one multi-row `INSERT ...
//! SELECT FROM unnest(...)` per table) and the transaction commits with `synchronous_commit` on,
//! so an acknowledged batch is durable. A batch costs two round trips: BEGIN, lock, head and
//! idempotency lookup pipelined; then every insert and the COMMIT pipelined. The lock
//! serialises appends across processes, so indices stay contiguous and each size is signed by
//! exactly one instance; the checkpoints' primary key would refuse a second root for a size even
//! if the lock were bypassed. Idempotency keys are looked up inside the locked transaction, so
//! two instances cannot both append the same key.
//!
//! **Within one instance** a writer thread group-commits every append request waiting in its
//! queue into one transaction, as the SQLite backend does. Reads use a pool of read-only
//! sessions (`default_transaction_read_only`); proofs read O(log n) stored nodes in one statement.
//!
//! **Append-only** is enforced by the database: triggers refuse UPDATE, DELETE and TRUNCATE on
//! every log table (also for the owner), and those privileges are revoked from PUBLIC. The
//! service should connect as a role that owns nothing and holds only SELECT and INSERT; see
//! `migrations/postgres/0001_log.sql`.
//!
//! The log expects a database (or a schema, through the URL's `options=-c search_path=...`) of
//! its own: its tables have plain names (`records`, `meta`, `schema_migrations`, ...).
//! Connections are plain TCP or Unix sockets: this build has no TLS client.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use sha2::{Digest as _, Sha256};
use tokio::runtime::{Handle, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Client, Config, GenericClient, NoTls, Row, Statement, Transaction};
use trailmark_log::{
    Checkpoint, Frontier, Hash, NodeId, NodeSource, SignerKey, VerifierKey, empty_root, leaf_hash,
    node_hash,
};
use trailmark_model::{
    Blob, Digest, LogIndex, NewRecord, Rel, Sealed, Subject, Timestamp, decode_leaf,
};

use crate::cache::NodeCache;
use crate::error::{StoreError, describe_pg};
use crate::migrate::{Applied, POSTGRES, plan};
use crate::writer::{Job, WriterHandle, check_signer};
use crate::{Appended, Query, RawCheckpoint, SignedCheckpoint, Store, StoredRecord};

/// Most records the writer puts in one transaction (as for SQLite: bigger batches amortize the
/// commit further but hold callers, and the append lock, longer).
pub const DEFAULT_MAX_BATCH: usize = 10_000;

/// Pooled read sessions per store handle. Each `trailmark serve` instance holds this many plus
/// one writer connection, which bounds what N instances ask of `max_connections`.
const POOL_SIZE: usize = 8;
/// A database that does not answer a connection attempt in this long is reported, not waited for.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read waits for a free pooled session before giving up.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Settings of the writer's session. A wait for the append lock longer than `lock_timeout` means
/// another instance is stuck holding it: the batch fails rather than queueing forever. A writer
/// that stalls inside its transaction (a hung process) is disconnected by the server after
/// `idle_in_transaction_session_timeout`, which releases the lock for the other instances.
const WRITER_SESSION: &str =
    "SET lock_timeout = '60s'; SET idle_in_transaction_session_timeout = '60s'";

/// Serialises schema changes (create, migrate) of concurrently starting instances.
const MIGRATION_LOCK: &str = "trailmark:migrate";

/// The migration history table, created before the first migration, append-only like the log.
const BOOTSTRAP: &str = "
CREATE TABLE schema_migrations (
    version bigint PRIMARY KEY,
    name    text NOT NULL,
    sha256  text NOT NULL
);
CREATE FUNCTION trailmark_refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trailmark: migration history is append-only (% of % refused)', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER schema_migrations_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON schema_migrations
    FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_history_change();
ALTER TABLE schema_migrations ENABLE ALWAYS TRIGGER schema_migrations_append_only;
REVOKE UPDATE, DELETE, TRUNCATE ON schema_migrations FROM PUBLIC;
";

const SQL_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
/// The head, in one statement (one snapshot): latest checkpoint size and root, where the records
/// end, and the last record's time (the floor for the next `recorded_at`).
const SQL_HEAD: &str = "SELECT (SELECT max(size) FROM checkpoints), \
     (SELECT root FROM checkpoints ORDER BY size DESC LIMIT 1), \
     (SELECT max(idx) FROM records), \
     (SELECT recorded_us FROM records ORDER BY idx DESC LIMIT 1)";
const SQL_FIND_KEYS: &str = "SELECT i.key, r.idx, r.leaf_hash FROM idempotency i \
     JOIN records r ON r.idx = i.idx WHERE i.key = ANY($1::text[])";
/// Stored subtree hashes by (level, index) — level 0 from `records`, even levels from
/// `tree_nodes` — plus the latest checkpoint size as a row of level -1, all in one snapshot, so
/// a proof's size check and its node reads agree.
const SQL_NODES: &str = "SELECT -1::smallint, coalesce(max(size), 0), NULL::bytea FROM checkpoints \
     UNION ALL SELECT 0::smallint, idx, leaf_hash FROM records WHERE idx = ANY($1::bigint[]) \
     UNION ALL SELECT t.level, t.idx, t.hash FROM tree_nodes t \
     JOIN unnest($2::smallint[], $3::bigint[]) AS w(level, idx) ON t.level = w.level AND t.idx = w.idx";
/// The records and their kind rows, in one statement (one round trip, as before the kinds had a
/// table of their own).
const SQL_INS_RECORDS: &str = "WITH r AS (INSERT INTO records (idx, leaf, leaf_hash, kind, recorded_us) \
     SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::bigint[]) \
     RETURNING kind, idx) INSERT INTO record_kinds (kind, idx) SELECT kind, idx FROM r";
const SQL_INS_KEYS: &str =
    "INSERT INTO idempotency (key, idx) SELECT * FROM unnest($1::text[], $2::bigint[])";
/// Rows are unique by construction (deduplicated per record; the index is part of the key), so
/// no ON CONFLICT: its speculative insertion made this the slowest statement of a batch.
const SQL_INS_SUBJECTS: &str = "INSERT INTO record_subjects (type, id, rel, idx) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])";
const SQL_INS_NODES: &str = "INSERT INTO tree_nodes (level, idx, hash) \
     SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])";
/// Content-addressed: a blob already stored is the same bytes.
const SQL_INS_BLOBS: &str = "INSERT INTO blobs (digest, bytes) \
     SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT DO NOTHING";
const SQL_INS_CHECKPOINT: &str =
    "INSERT INTO checkpoints (size, root, note, signed_ms) VALUES ($1, $2, $3, $4)";
/// Reads see only what a signed checkpoint covers, bounded in the statement's own snapshot.
const COVERED: &str = "(SELECT coalesce(max(size), 0) FROM checkpoints)";

type Param = Box<dyn ToSql + Send + Sync>;

fn pg(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    StoreError::postgres(op)
}

fn pool_err(op: &'static str) -> impl FnOnce(PoolError) -> StoreError {
    move |e| StoreError::Backend {
        op,
        message: match &e {
            PoolError::Backend(e) => describe_pg(e),
            other => other.to_string(),
        },
    }
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidRequest(format!("{v} is out of range")))
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        index: 0,
        reason: format!("{what} is negative ({v})"),
    })
}

fn hash_from(bytes: &[u8], what: &str, index: u64) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).map_err(|_| StoreError::Corrupt {
        index,
        reason: format!("{what} is {} bytes, not 32", bytes.len()),
    })
}

/// A column of a row, typed; a type mismatch is an error, never a panic.
fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize, op: &'static str) -> Result<T, StoreError> {
    row.try_get(i).map_err(pg(op))
}

/// A 64-bit advisory lock key: the first 8 bytes of SHA-256 of `label`. Fixed for a label, so
/// every instance of one log computes the same key without coordination.
fn lock_key(label: &str) -> i64 {
    let d = Sha256::digest(label.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

/// Runs `fut` on the store's runtime and waits for it on this thread. Spawning (rather than
/// `Handle::block_on`) is what lets any thread call the store, including one that is inside
/// another tokio runtime.
fn run<T, F>(handle: &Handle, fut: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| StoreError::Backend {
        op: "waiting for PostgreSQL",
        message: "the store's runtime stopped before answering".into(),
    })?
}

/// The store's runtime. Dropping a tokio runtime blocks and panics inside an async context, and
/// a store handle may be dropped anywhere (the server drops its state inside its runtime), so it
/// is shut down in the background instead: by then the writer has been joined and nothing
/// acknowledged is pending.
#[derive(Debug)]
struct OwnedRuntime(Option<Runtime>);

impl OwnedRuntime {
    fn new() -> Result<OwnedRuntime, StoreError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trailmark-pg")
            .enable_io()
            .enable_time()
            .build()
            .map(|rt| OwnedRuntime(Some(rt)))
            .map_err(|e| StoreError::Backend {
                op: "starting the PostgreSQL client runtime",
                message: e.to_string(),
            })
    }

    fn handle(&self) -> Result<Handle, StoreError> {
        self.0
            .as_ref()
            .map(|rt| rt.handle().clone())
            .ok_or_else(|| StoreError::WriterStopped("the store's runtime is gone".into()))
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn parse_url(url: &str) -> Result<Config, StoreError> {
    if !PgStore::is_url(url) {
        // The URL is not echoed: it may hold a password.
        return Err(StoreError::InvalidRequest(
            "a PostgreSQL store is named by a postgres:// or postgresql:// URL".into(),
        ));
    }
    let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
        StoreError::InvalidRequest(format!("invalid PostgreSQL URL: {e}"))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("trailmark");
    }
    Ok(config)
}

/// `user@host:port/dbname`, for messages: never the password.
fn describe_target(c: &Config) -> String {
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let user = c.get_user().unwrap_or("?");
    let db = c.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

async fn connect(config: Config) -> Result<Client, StoreError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(pg("connecting to PostgreSQL"))?;
    // The connection future does the socket I/O. It ends when the client is dropped or the
    // server goes away, after which the client reports itself closed (the writer reconnects).
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn has_log(tx: &Transaction<'_>) -> Result<bool, StoreError> {
    let op = "looking for the log's tables";
    let row = tx
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
        .await
        .map_err(pg(op))?;
    col(&row, 0, op)
}

/// Applies missing migrations and checks applied ones inside `tx`, with the decision made by the
/// same [`plan`] as for SQLite. Runs only DDL it needs, so a role that may only SELECT and INSERT
/// can open an up-to-date log.
async fn migrate_pg(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(SQL_LOCK, &[&lock_key(MIGRATION_LOCK)])
        .await
        .map_err(pg("taking the migration lock"))?;
    let row = tx
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(pg("reading migrations"))?;
    if !col::<bool>(&row, 0, "reading migrations")? {
        tx.batch_execute(BOOTSTRAP)
            .await
            .map_err(pg("creating the migration table"))?;
    }
    let rows = tx
        .query("SELECT version, sha256 FROM schema_migrations", &[])
        .await
        .map_err(pg("reading migrations"))?;
    let applied = rows
        .iter()
        .map(|r| {
            Ok(Applied {
                version: col(r, 0, "reading migrations")?,
                sha256: col(r, 1, "reading migrations")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    for (m, shipped) in plan(POSTGRES, &applied)? {
        tx.batch_execute(m.sql)
            .await
            .map_err(pg("applying a migration"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &shipped],
        )
        .await
        .map_err(pg("recording a migration"))?;
    }
    Ok(())
}

async fn meta(tx: &Transaction<'_>, key: &str) -> Result<Option<String>, StoreError> {
    let op = "reading store metadata";
    let row = tx
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
        .await
        .map_err(pg(op))?;
    row.map(|r| col(&r, 0, op)).transpose()
}

fn reader_pool(config: &Config) -> Result<Pool, StoreError> {
    let mut config = config.clone();
    // Readers can never write, whatever their role may do (as SQLite's read-only connections).
    let read_only = "-c default_transaction_read_only=on";
    let options = match config.get_options() {
        Some(o) if !o.is_empty() => format!("{o} {read_only}"),
        _ => read_only.to_owned(),
    };
    config.options(options);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Backend {
            op: "creating the connection pool",
            message: e.to_string(),
        })
}

/// A stored subtree hash's address: (level, index at that level).
type NodeKey = (u8, u64);

/// What one tree computation needs read: the stored hashes to fetch, and those already cached.
struct NodePlan {
    wanted: Vec<NodeKey>,
    /// A snapshot of the cached ones, so a cache reset in between cannot lose one.
    known: HashMap<NodeKey, Hash>,
}

/// Plans the reads for `ids`: an even level is one stored hash, an odd level the hash of its two
/// children at the even level below.
fn plan_nodes(ids: &[NodeId], cache: Option<&NodeCache>) -> Result<NodePlan, StoreError> {
    let mut plan = NodePlan {
        wanted: Vec::new(),
        known: HashMap::new(),
    };
    let mut want = |level: u8, index: u64| match cache.and_then(|c| c.get(level, index)) {
        Some(h) => {
            plan.known.insert((level, index), h);
        }
        None => plan.wanted.push((level, index)),
    };
    for id in ids {
        if id.level % 2 == 0 {
            want(id.level, id.index);
        } else {
            let left = id.index.checked_mul(2).ok_or_else(|| {
                StoreError::InvalidRequest(format!(
                    "tree node {}#{} is out of range",
                    id.level, id.index
                ))
            })?;
            want(id.level - 1, left);
            want(id.level - 1, left + 1);
        }
    }
    Ok(plan)
}

/// Fetches `wanted` with [`SQL_NODES`]; returns the latest checkpoint size and the raw hashes.
async fn fetch_nodes<C: GenericClient + Sync>(
    client: &C,
    st: &Statement,
    wanted: &[NodeKey],
) -> Result<(u64, HashMap<NodeKey, Vec<u8>>), StoreError> {
    let op = "reading tree nodes";
    let (mut leaves, mut levels, mut idxs) = (Vec::new(), Vec::new(), Vec::new());
    for &(level, index) in wanted {
        if level == 0 {
            leaves.push(to_i64(index)?);
        } else {
            levels.push(i16::from(level));
            idxs.push(to_i64(index)?);
        }
    }
    let rows = client
        .query(st, &[&leaves, &levels, &idxs])
        .await
        .map_err(pg(op))?;
    let mut latest = 0;
    let mut out = HashMap::with_capacity(rows.len());
    for row in &rows {
        let level: i16 = col(row, 0, op)?;
        let idx: i64 = col(row, 1, op)?;
        match u8::try_from(level) {
            Ok(level) => {
                let hash: Option<Vec<u8>> = col(row, 2, op)?;
                out.insert(
                    (level, to_u64(idx, "a tree node index")?),
                    hash.unwrap_or_default(),
                );
            }
            Err(_) => latest = to_u64(idx, "the latest checkpoint size")?,
        }
    }
    Ok((latest, out))
}

/// The hashes of `ids`, in order, from `known` (cached) and `fetched` (just read).
fn assemble(
    ids: &[NodeId],
    mut known: HashMap<NodeKey, Hash>,
    fetched: HashMap<NodeKey, Vec<u8>>,
    cache: Option<&NodeCache>,
) -> Result<Vec<Hash>, StoreError> {
    for ((level, index), bytes) in fetched {
        let h = hash_from(&bytes, "a stored tree hash", index << level)?;
        if let Some(c) = cache {
            c.put(level, index, h);
        }
        known.insert((level, index), h);
    }
    let even = |level: u8, index: u64| {
        known
            .get(&(level, index))
            .copied()
            .ok_or_else(|| StoreError::Corrupt {
                index: index << level,
                reason: format!("tree hash at level {level} #{index} is missing"),
            })
    };
    ids.iter()
        .map(|id| {
            if id.level % 2 == 0 {
                even(id.level, id.index)
            } else {
                let left = even(id.level - 1, id.index * 2)?;
                let right = even(id.level - 1, id.index * 2 + 1)?;
                Ok(node_hash(&left, &right))
            }
        })
        .collect()
}

fn too_large(size: u64, current: u64) -> StoreError {
    StoreError::InvalidRequest(format!(
        "tree size {size} is larger than the log ({current} records)"
    ))
}

fn proof_err(e: trailmark_log::ProofError<StoreError>) -> StoreError {
    match e {
        trailmark_log::ProofError::Source(e) => e,
        other => StoreError::InvalidRequest(other.to_string()),
    }
}

fn stored(row: &Row, op: &'static str) -> Result<StoredRecord, StoreError> {
    let idx: i64 = col(row, 0, op)?;
    let leaf: Vec<u8> = col(row, 1, op)?;
    let hash: &[u8] = col(row, 2, op)?;
    let index = to_u64(idx, "a record index")?;
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
        leaf_hash: hash_from(hash, "the leaf hash", index)?,
        leaf,
    })
}

fn signed_checkpoint(row: &Row, op: &'static str) -> Result<SignedCheckpoint, StoreError> {
    let size = to_u64(col(row, 0, op)?, "a checkpoint size")?;
    let root: &[u8] = col(row, 1, op)?;
    Ok(SignedCheckpoint {
        size,
        root: hash_from(root, "a checkpoint root", size)?,
        note: col(row, 2, op)?,
    })
}

/// A Trailmark log in a PostgreSQL database, shareable by several processes.
pub struct PgStore {
    target: String,
    config: Config,
    origin: String,
    verifier: VerifierKey,
    writer: Option<WriterHandle>,
    pool: Pool,
    nodes: NodeCache,
    handle: Handle,
    /// Last, so it is shut down after everything that runs on it.
    _runtime: OwnedRuntime,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.target)
            .field("origin", &self.origin)
            .field("read_only", &self.writer.is_none())
            .finish()
    }
}

impl PgStore {
    /// Whether `location` names a PostgreSQL store (a `postgres://` or `postgresql://` URL)
    /// rather than a SQLite file.
    pub fn is_url(location: &str) -> bool {
        location.starts_with("postgres://") || location.starts_with("postgresql://")
    }

    /// Creates a new, empty log in the database `url` names (which must exist and hold no
    /// Trailmark log): applies the schema and writes the log's origin and key, in one
    /// transaction. Run as the role that should own the tables.
    pub fn create(url: &str, origin: &str, signer: SignerKey) -> Result<PgStore, StoreError> {
        if origin.is_empty() || origin.contains('\n') || origin.trim() != origin {
            return Err(StoreError::InvalidRequest(format!(
                "origin {origin:?} must be one non-empty line"
            )));
        }
        let config = parse_url(url)?;
        let target = describe_target(&config);
        let runtime = OwnedRuntime::new()?;
        let verifier = signer.verifier();
        let rows = [
            ("origin", origin.to_owned()),
            ("verifier_key", verifier.to_string()),
            ("created_at", Timestamp::now().to_string()),
        ];
        let (setup, label) = (config.clone(), target.clone());
        run(&runtime.handle()?, async move {
            let op = "initialising the store";
            let mut client = connect(setup).await?;
            let tx = client.transaction().await.map_err(pg(op))?;
            // Under the migration lock, so two concurrent creates cannot both find it empty.
            tx.execute(SQL_LOCK, &[&lock_key(MIGRATION_LOCK)])
                .await
                .map_err(pg("taking the migration lock"))?;
            if has_log(&tx).await? {
                return Err(StoreError::InvalidRequest(format!(
                    "{label} already holds a Trailmark log; refusing to create one over it"
                )));
            }
            migrate_pg(&tx).await?;
            for (k, v) in &rows {
                tx.execute("INSERT INTO meta (key, value) VALUES ($1, $2)", &[k, v])
                    .await
                    .map_err(pg(op))?;
            }
            tx.commit().await.map_err(pg(op))
        })?;
        Self::open_parts(config, target, runtime, Some(signer), DEFAULT_MAX_BATCH)
    }

    /// Opens an existing log for appending. `signer` must be the key the log was created with.
    pub fn open(url: &str, signer: SignerKey) -> Result<PgStore, StoreError> {
        Self::open_with(url, Some(signer), DEFAULT_MAX_BATCH)
    }

    /// Opens an existing log for reading only (no signing key needed).
    pub fn open_read_only(url: &str) -> Result<PgStore, StoreError> {
        Self::open_with(url, None, DEFAULT_MAX_BATCH)
    }

    /// Opens with an explicit maximum batch size (benchmarks and tests).
    pub fn open_with(
        url: &str,
        signer: Option<SignerKey>,
        max_batch: usize,
    ) -> Result<PgStore, StoreError> {
        let config = parse_url(url)?;
        let target = describe_target(&config);
        Self::open_parts(config, target, OwnedRuntime::new()?, signer, max_batch)
    }

    fn open_parts(
        config: Config,
        target: String,
        runtime: OwnedRuntime,
        signer: Option<SignerKey>,
        max_batch: usize,
    ) -> Result<PgStore, StoreError> {
        let handle = runtime.handle()?;
        let (setup, label) = (config.clone(), target.clone());
        let (origin, stored_key) = run(&handle, async move {
            let op = "opening the store";
            let mut client = connect(setup).await?;
            let tx = client.transaction().await.map_err(pg(op))?;
            // Checked before migrating: opening must never turn an unrelated database into an
            // empty, origin-less log.
            if !has_log(&tx).await? {
                return Err(StoreError::InvalidRequest(format!(
                    "no Trailmark log in {label} (run `trailmark init` first)"
                )));
            }
            migrate_pg(&tx).await?;
            let origin = meta(&tx, "origin").await?;
            let key = meta(&tx, "verifier_key").await?;
            tx.commit().await.map_err(pg(op))?;
            Ok((origin, key))
        })?;
        let origin = origin.ok_or_else(|| {
            StoreError::Incompatible("the database has no origin; it is not a Trailmark log".into())
        })?;
        let stored_key = stored_key
            .ok_or_else(|| StoreError::Incompatible("the database has no verifier key".into()))?;
        let verifier = VerifierKey::parse(&stored_key).map_err(|e| {
            StoreError::Incompatible(format!("stored verifier key is invalid: {e}"))
        })?;
        let pool = reader_pool(&config)?;

        let writer = match signer {
            None => None,
            Some(signer) => {
                check_signer(&signer, &verifier)?;
                let state = run(
                    &handle,
                    Writer::start(config.clone(), signer, origin.clone()),
                )?;
                let on = handle.clone();
                Some(WriterHandle::spawn("trailmark-pg-writer", move |jobs| {
                    state.serve(&on, &jobs, max_batch.max(1))
                })?)
            }
        };
        Ok(PgStore {
            target,
            config,
            origin,
            verifier,
            writer,
            pool,
            nodes: NodeCache::default(),
            handle,
            _runtime: runtime,
        })
    }

    /// The database this handle uses, as `user@host:port/dbname` (never the password).
    pub fn database(&self) -> &str {
        &self.target
    }

    /// Copies `source`'s whole log into this empty one **verbatim**: the exact leaf bytes, the
    /// raw inputs and large payloads they cite, and every signed checkpoint note as signed, so
    /// the roots (and every proof an auditor holds) stay valid. One transaction per source
    /// checkpoint, under the append lock; each is checked before it commits (leaf hashes, the
    /// recomputed root equals the checkpoint's, the note verifies with this log's key). Both
    /// logs must have the same origin and key. Returns the number of records copied.
    pub fn import_from(
        &self,
        source: &dyn Store,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64, StoreError> {
        if self.writer.is_none() {
            return Err(StoreError::ReadOnly);
        }
        if source.origin() != self.origin || source.verifier() != &self.verifier {
            return Err(StoreError::InvalidRequest(format!(
                "the source log ({}) and this one ({}) must have the same origin and key",
                source.origin(),
                self.origin
            )));
        }
        if self.size()? != 0 {
            return Err(StoreError::InvalidRequest(format!(
                "{} already holds records; a log can only be imported into an empty one",
                self.target
            )));
        }
        let total = source.size()?;
        let lock = lock_key(&format!("trailmark:append:{}", self.origin));
        let config = self.config.clone();
        let conn = run(&self.handle, async move { WriterConn::open(&config).await })?;
        let conn = std::sync::Arc::new(conn);
        let mut frontier = Frontier::new();
        let mut after = None;
        loop {
            let cps = source.raw_checkpoints(after, 1000)?;
            let Some(last) = cps.last() else { break };
            after = Some(last.size);
            for cp in cps {
                let from = frontier.size();
                let mut leaves = Vec::new();
                while (leaves.len() as u64) < cp.size - from {
                    let have = from + leaves.len() as u64;
                    let want = u32::try_from((cp.size - have).min(10_000)).unwrap_or(10_000);
                    let chunk = source.raw_leaves(have.checked_sub(1), want)?;
                    if chunk.is_empty() {
                        return Err(StoreError::Corrupt {
                            index: have,
                            reason: format!(
                                "the source has no record {have} below its checkpoint {}",
                                cp.size
                            ),
                        });
                    }
                    leaves.extend(chunk);
                }
                let mut blobs = Vec::new();
                let mut wanted = HashSet::new();
                for l in &leaves {
                    let record = decode_leaf(&l.leaf).map_err(|e| StoreError::Corrupt {
                        index: l.idx,
                        reason: e.to_string(),
                    })?;
                    let mut digests = Vec::new();
                    if let trailmark_model::Payload::Blob { digest, .. } = record.payload {
                        digests.push((digest, true));
                    }
                    for link in &record.links {
                        if link.to.ty.as_str() == "input"
                            && let Ok(d) = link.to.id.parse::<Digest>()
                        {
                            digests.push((d, false));
                        }
                    }
                    for (digest, required) in digests {
                        if !wanted.insert(digest.0) {
                            continue;
                        }
                        match source.blob(&digest)? {
                            // Addressed anew from the bytes: a source blob stored under
                            // the wrong address is refused, not copied.
                            Some(bytes) => {
                                let blob = Blob::new(bytes);
                                if blob.digest() != digest {
                                    return Err(StoreError::Corrupt {
                                        index: l.idx,
                                        reason: format!(
                                            "blob {digest} does not hash to its address"
                                        ),
                                    });
                                }
                                blobs.push(blob);
                            }
                            None if required => {
                                return Err(StoreError::Corrupt {
                                    index: l.idx,
                                    reason: format!("its payload blob {digest} is missing"),
                                });
                            }
                            None => {}
                        }
                    }
                }
                let mut segment = frontier.clone();
                let (c, origin, verifier) =
                    (conn.clone(), self.origin.clone(), self.verifier.clone());
                segment = run(&self.handle, async move {
                    import_segment(&c, lock, segment, leaves, blobs, cp, &origin, &verifier).await
                })?;
                frontier = segment;
                progress(frontier.size(), total);
            }
        }
        Ok(frontier.size())
    }

    /// Runs `f` with a pooled read-only session, on the store's runtime.
    fn read<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send,
    {
        let pool = self.pool.clone();
        run(&self.handle, async move {
            let client = pool.get().await.map_err(pool_err(op))?;
            f(client).await
        })
    }

    /// One statement on a pooled read-only session (prepared once per session).
    fn rows(
        &self,
        op: &'static str,
        sql: impl Into<Cow<'static, str>>,
        params: Vec<Param>,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = sql.into();
        self.read(op, move |c| async move {
            let st = c.prepare_cached(&sql).await.map_err(pg(op))?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            c.query(&st, &refs).await.map_err(pg(op))
        })
    }

    /// Runs a tree computation over stored (and cached) subtree hashes, after checking that the
    /// tree of `size` exists — in the same statement as the node reads when there are any.
    fn with_tree<T>(
        &self,
        size: u64,
        f: impl FnOnce(&mut PgNodes<'_>) -> Result<T, trailmark_log::ProofError<StoreError>>,
    ) -> Result<T, StoreError> {
        let mut src = PgNodes {
            store: self,
            size,
            checked: false,
        };
        let out = f(&mut src).map_err(proof_err)?;
        if !src.checked {
            let current = self.size()?;
            if size > current {
                return Err(too_large(size, current));
            }
        }
        Ok(out)
    }
}

/// Subtree hashes for one tree computation: one statement per `nodes` call (the log crate asks
/// for all of a proof's nodes at once), which also checks the tree size.
struct PgNodes<'a> {
    store: &'a PgStore,
    size: u64,
    checked: bool,
}

impl NodeSource for PgNodes<'_> {
    type Error = StoreError;

    fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let NodePlan { wanted, known } = plan_nodes(ids, Some(&self.store.nodes))?;
        let (current, fetched) = self.store.read("reading tree nodes", move |c| async move {
            let st = c
                .prepare_cached(SQL_NODES)
                .await
                .map_err(pg("reading tree nodes"))?;
            fetch_nodes(&**c, &st, &wanted).await
        })?;
        self.checked = true;
        if self.size > current {
            return Err(too_large(self.size, current));
        }
        assemble(ids, known, fetched, Some(&self.store.nodes))
    }
}

impl Store for PgStore {
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
        let op = "reading the log size";
        let rows = self.rows(op, "SELECT coalesce(max(size), 0) FROM checkpoints", vec![])?;
        match rows.first() {
            Some(r) => to_u64(col(r, 0, op)?, "the latest checkpoint size"),
            None => Ok(0),
        }
    }

    fn record(&self, index: LogIndex) -> Result<Option<StoredRecord>, StoreError> {
        let op = "reading a record";
        // One statement, so one snapshot: the log's size is read with the row, and a missing
        // row inside it is told apart from an index past the end.
        let rows = self.rows(
            op,
            "SELECT r.idx, r.leaf, r.leaf_hash, (SELECT coalesce(max(size), 0) FROM checkpoints) \
             FROM (SELECT 1) AS one LEFT JOIN records r ON r.idx = $1",
            vec![Box::new(to_i64(index.0)?)],
        )?;
        let row = rows.first().ok_or_else(|| StoreError::Backend {
            op,
            message: "the query returned no row".into(),
        })?;
        if col::<Option<i64>>(row, 0, op)?.is_some() {
            return stored(row, op).map(Some);
        }
        crate::missing_record(index, to_u64(col(row, 3, op)?, "a checkpoint size")?)
    }

    fn query(&self, q: &Query) -> Result<Vec<StoredRecord>, StoreError> {
        fn bind(params: &mut Vec<Param>, p: Param) -> String {
            params.push(p);
            format!("${}", params.len())
        }
        let op = "querying records";
        let mut params: Vec<Param> = Vec::new();
        // The signed size is read by the same statement as the rows (one snapshot), to tell a
        // record whose row is gone from one past the log's end.
        let mut sql = format!("SELECT r.idx, r.leaf, r.leaf_hash, {COVERED} FROM records r");
        // By subject, the index drives and its rows are kept when their record's row is gone
        // (LEFT JOIN): such a row is reported, not skipped. `r.*` is then NULL, and so passes
        // the filters on it.
        let (idx, or_gone) = if let Some(s) = &q.subject {
            let ty = bind(&mut params, Box::new(s.ty.as_str().to_owned()));
            let id = bind(&mut params, Box::new(s.id.clone()));
            sql = format!(
                "SELECT s.idx, r.leaf, r.leaf_hash, {COVERED} FROM record_subjects s \
                 LEFT JOIN records r ON r.idx = s.idx \
                 WHERE s.type = {ty} AND s.id = {id} AND s.rel = ''"
            );
            ("s.idx", " OR r.idx IS NULL")
        } else if let Some(k) = &q.kind {
            // By kind alone, the kind table drives in the same way.
            let k = bind(&mut params, Box::new(k.as_str().to_owned()));
            sql = format!(
                "SELECT k.idx, r.leaf, r.leaf_hash, {COVERED} FROM record_kinds k \
                 LEFT JOIN records r ON r.idx = k.idx WHERE k.kind = {k}"
            );
            ("k.idx", " OR r.idx IS NULL")
        } else {
            sql.push_str(" WHERE true");
            ("r.idx", "")
        };
        let after = bind(
            &mut params,
            Box::new(q.after.map_or(Ok(-1), |a| to_i64(a.0))?),
        );
        sql.push_str(&format!(" AND {idx} > {after} AND {idx} < {COVERED}"));
        if let (Some(k), Some(_)) = (&q.kind, &q.subject) {
            let k = bind(&mut params, Box::new(k.as_str().to_owned()));
            sql.push_str(&format!(" AND (r.kind = {k}{or_gone})"));
        }
        // recorded_us never decreases along idx, so these are one range of the log, as in SQLite.
        if let Some(t) = q.since {
            let t = bind(&mut params, Box::new(t.as_micros()));
            sql.push_str(&format!(" AND (r.recorded_us >= {t}{or_gone})"));
        }
        if let Some(t) = q.until {
            let t = bind(&mut params, Box::new(t.as_micros()));
            sql.push_str(&format!(" AND (r.recorded_us < {t}{or_gone})"));
        }
        let limit = bind(&mut params, Box::new(i64::from(q.limit)));
        sql.push_str(&format!(" ORDER BY {idx} LIMIT {limit}"));
        let rows = self.rows(op, sql, params)?;
        let size = match rows.first() {
            Some(r) => to_u64(col(r, 3, op)?, "the log size")?,
            None => 0,
        };
        let records = rows
            .iter()
            .map(|r| {
                let leaf: Option<&[u8]> = col(r, 1, op)?;
                match leaf {
                    Some(_) => stored(r, op),
                    None => Err(crate::gone(to_u64(col(r, 0, op)?, "a record index")?, size)),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if q.subject.is_none() && q.kind.is_none() {
            // Without a time filter the run starts right after `after` and, short of the limit,
            // ends at the signed size; with one, only its inside is known. An empty answer
            // carries no size (it is not checked).
            let first = q.since.is_none().then(|| q.after.map_or(0, |a| a.0 + 1));
            let end = (q.until.is_none() && !records.is_empty()).then_some(size);
            crate::check_run(&records, first, end, q.limit, size)?;
        }
        Ok(records)
    }

    fn mentions(&self, subject: &Subject) -> Result<Vec<(LogIndex, Option<Rel>)>, StoreError> {
        let op = "looking up a subject";
        let rows = self.rows(
            op,
            mentions_sql(),
            vec![
                Box::new(subject.ty.as_str().to_owned()),
                Box::new(subject.id.clone()),
            ],
        )?;
        rows.iter()
            .map(|r| {
                let idx = to_u64(col(r, 0, op)?, "a record index")?;
                let rel: &str = col(r, 1, op)?;
                let rel = if rel.is_empty() {
                    None
                } else {
                    Some(Rel::parse(rel).map_err(|e| StoreError::Corrupt {
                        index: idx,
                        reason: format!("indexed rel {rel:?} {e}"),
                    })?)
                };
                Ok((LogIndex(idx), rel))
            })
            .collect()
    }

    fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let op = "reading a blob";
        let rows = self.rows(
            op,
            "SELECT bytes FROM blobs WHERE digest = $1",
            vec![Box::new(digest.0.to_vec())],
        )?;
        let bytes: Option<Vec<u8>> = rows.first().map(|r| col(r, 0, op)).transpose()?;
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
        let op = "reading the latest checkpoint";
        let rows = self.rows(
            op,
            "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1",
            vec![],
        )?;
        rows.first().map(|r| signed_checkpoint(r, op)).transpose()
    }

    fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        let op = "reading a checkpoint";
        let rows = self.rows(
            op,
            "SELECT size, root, note FROM checkpoints WHERE size = $1",
            vec![Box::new(to_i64(size)?)],
        )?;
        rows.first().map(|r| signed_checkpoint(r, op)).transpose()
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

    /// One statement for every node of all of them, each node read once.
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
        let op = "scanning records";
        let after = after.map_or(Ok(-1), to_i64)?;
        let rows = self.rows(
            op,
            "SELECT idx, leaf, leaf_hash FROM records WHERE idx > $1 ORDER BY idx LIMIT $2",
            vec![Box::new(after), Box::new(i64::from(limit))],
        )?;
        let mut n = 0;
        for row in &rows {
            let idx: i64 = col(row, 0, op)?;
            // Raw rows for verification: whatever is there, hashed straight out of the row
            // buffers. A negative index (tampering) shows up as a gap, as it does for SQLite.
            let leaf: Option<&[u8]> = col(row, 1, op)?;
            let hash: Option<&[u8]> = col(row, 2, op)?;
            visit(
                idx as u64,
                leaf.unwrap_or_default(),
                hash.unwrap_or_default(),
            );
            n += 1;
        }
        Ok(n)
    }

    fn raw_checkpoints(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<RawCheckpoint>, StoreError> {
        let op = "scanning checkpoints";
        let after = after.map_or(Ok(-1), to_i64)?;
        let rows = self.rows(
            op,
            "SELECT size, root, note FROM checkpoints WHERE size > $1 ORDER BY size LIMIT $2",
            vec![Box::new(after), Box::new(i64::from(limit))],
        )?;
        rows.iter()
            .map(|r| {
                Ok(RawCheckpoint {
                    size: col::<i64>(r, 0, op)? as u64,
                    root: col(r, 1, op)?,
                    note: col(r, 2, op)?,
                })
            })
            .collect()
    }

    fn raw_nodes(&self, level: u8, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let op = "scanning tree nodes";
        let rows = self.rows(
            op,
            "SELECT idx, hash FROM tree_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
            vec![
                Box::new(i16::from(level)),
                Box::new(to_i64(from)?),
                Box::new(to_i64(to)?),
            ],
        )?;
        rows.iter()
            .map(|r| Ok((col::<i64>(r, 0, op)? as u64, col(r, 1, op)?)))
            .collect()
    }

    fn stored_node_level(&self, level: u8) -> bool {
        level > 0 && level.is_multiple_of(2)
    }
}

/// Every mention of a subject, as a subject (rel '') or a link target, in index order.
fn mentions_sql() -> String {
    format!(
        "SELECT idx, rel FROM record_subjects WHERE type = $1 AND id = $2 AND idx < {COVERED} ORDER BY idx, rel"
    )
}

/// The writer's prepared statements, per connection. Everything the writer pipelines must be
/// prepared beforehand: a statement given as text is prepared on first poll, in a round trip of
/// its own, and would reach the server after the statements queued behind it.
struct Statements {
    begin: Statement,
    commit: Statement,
    lock: Statement,
    head: Statement,
    find_keys: Statement,
    nodes: Statement,
    records: Statement,
    keys: Statement,
    subjects: Statement,
    tree_nodes: Statement,
    blobs: Statement,
    checkpoint: Statement,
}

/// The writer's own connection (never pooled: it holds the append lock inside its transactions).
struct WriterConn {
    client: Client,
    st: Statements,
}

impl WriterConn {
    async fn open(config: &Config) -> Result<WriterConn, StoreError> {
        let client = connect(config.clone()).await?;
        client
            .batch_execute(WRITER_SESSION)
            .await
            .map_err(pg("configuring the writer session"))?;
        // Acknowledged means durable: every setting but `off` waits at least for the local WAL
        // flush, so only `off` (as a database or role default) is overridden.
        let row = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .map_err(pg("reading synchronous_commit"))?;
        if col::<String>(&row, 0, "reading synchronous_commit")? == "off" {
            client
                .batch_execute("SET synchronous_commit = on")
                .await
                .map_err(pg("setting synchronous_commit"))?;
        }
        let op = "preparing the writer's statements";
        let st = Statements {
            // READ COMMITTED: every statement sees what was committed before it started, so
            // reads after the lock see everything the previous lock holder committed.
            begin: client
                .prepare("BEGIN ISOLATION LEVEL READ COMMITTED")
                .await
                .map_err(pg(op))?,
            commit: client.prepare("COMMIT").await.map_err(pg(op))?,
            lock: client.prepare(SQL_LOCK).await.map_err(pg(op))?,
            head: client.prepare(SQL_HEAD).await.map_err(pg(op))?,
            find_keys: client.prepare(SQL_FIND_KEYS).await.map_err(pg(op))?,
            nodes: client.prepare(SQL_NODES).await.map_err(pg(op))?,
            records: client.prepare(SQL_INS_RECORDS).await.map_err(pg(op))?,
            keys: client.prepare(SQL_INS_KEYS).await.map_err(pg(op))?,
            subjects: client.prepare(SQL_INS_SUBJECTS).await.map_err(pg(op))?,
            tree_nodes: client.prepare(SQL_INS_NODES).await.map_err(pg(op))?,
            blobs: client.prepare(SQL_INS_BLOBS).await.map_err(pg(op))?,
            checkpoint: client.prepare(SQL_INS_CHECKPOINT).await.map_err(pg(op))?,
        };
        Ok(WriterConn { client, st })
    }
}

/// The writer's connection, reopened if the server dropped it (restart, failover, a terminated
/// backend): the next batch then starts on a fresh session.
async fn ensure<'a>(
    conn: &'a mut Option<WriterConn>,
    config: &Config,
) -> Result<&'a mut WriterConn, StoreError> {
    if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
        *conn = None;
        *conn = Some(WriterConn::open(config).await?);
    }
    conn.as_mut()
        .ok_or_else(|| StoreError::WriterStopped("no connection to PostgreSQL".into()))
}

/// The log head as stored.
struct Head {
    size: u64,
    root: Hash,
    last_recorded: Option<Timestamp>,
}

impl Head {
    fn parse(row: &Row) -> Result<Head, StoreError> {
        let op = "reading the log head";
        let size: Option<i64> = col(row, 0, op)?;
        let root: Option<&[u8]> = col(row, 1, op)?;
        let max_idx: Option<i64> = col(row, 2, op)?;
        let last_us: Option<i64> = col(row, 3, op)?;
        let size = size.map_or(Ok(0), |s| to_u64(s, "the latest checkpoint size"))?;
        let end = max_idx.map_or(Ok(0), |m| to_u64(m, "a record index").map(|m| m + 1))?;
        if end != size {
            return Err(StoreError::Damaged(format!(
                "the log's records end at index {end} but its latest checkpoint covers {size}; refusing to append (run `trailmark verify`)"
            )));
        }
        let root = match root {
            Some(r) => hash_from(r, "a checkpoint root", size)?,
            None => empty_root(),
        };
        let last_recorded = last_us
            .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
            .map(Timestamp);
        Ok(Head {
            size,
            root,
            last_recorded,
        })
    }
}

/// Brings `frontier` to the stored head. Cheap when it is already there (this instance made the
/// last append); otherwise another instance appended, and the frontier is rebuilt from the
/// O(log n) stored nodes of the head's size, which must reproduce the signed root: appending to
/// a tree that disagrees with its checkpoint would bury the damage.
async fn refresh<C: GenericClient + Sync>(
    client: &C,
    nodes: &Statement,
    frontier: &mut Frontier,
    head: &Head,
) -> Result<(), StoreError> {
    if frontier.size() == head.size && frontier.root() == head.root {
        return Ok(());
    }
    let ids = Frontier::ids(head.size);
    let NodePlan { wanted, known } = plan_nodes(&ids, None)?;
    let (_, fetched) = fetch_nodes(client, nodes, &wanted).await?;
    let hashes = assemble(&ids, known, fetched, None).map_err(|e| {
        StoreError::Damaged(format!(
            "cannot rebuild the tree frontier at size {}: {e}; refusing to append (run `trailmark verify`)",
            head.size
        ))
    })?;
    let rebuilt = Frontier::from_parts(head.size, hashes)
        .map_err(|e| StoreError::Damaged(format!("cannot rebuild the tree frontier: {e}")))?;
    if rebuilt.root() != head.root {
        return Err(StoreError::Damaged(format!(
            "the stored tree does not match the latest checkpoint (size {}); refusing to append (run `trailmark verify`)",
            head.size
        )));
    }
    *frontier = rebuilt;
    Ok(())
}

/// Column-wise rows of one batch, for one multi-row INSERT per table.
/// One verbatim segment of an import (see [`PgStore::import_from`]): the leaves up to a source
/// checkpoint and the checkpoint itself, checked, then written in one transaction.
#[allow(clippy::too_many_arguments)]
async fn import_segment(
    c: &WriterConn,
    lock_key: i64,
    mut frontier: Frontier,
    leaves: Vec<crate::RawLeaf>,
    blobs: Vec<Blob>,
    cp: RawCheckpoint,
    origin: &str,
    verifier: &VerifierKey,
) -> Result<Frontier, StoreError> {
    let mut rows = BatchRows::default();
    let mut blob_seen = HashSet::new();
    for blob in blobs {
        rows.blob(&mut blob_seen, blob);
    }
    for l in leaves {
        if l.idx != frontier.size() {
            return Err(StoreError::Corrupt {
                index: frontier.size(),
                reason: format!("the source skips to record {}", l.idx),
            });
        }
        let hash = leaf_hash(&l.leaf);
        if hash.as_bytes().as_slice() != l.leaf_hash.as_slice() {
            return Err(StoreError::Corrupt {
                index: l.idx,
                reason: "its stored leaf hash does not match its leaf".into(),
            });
        }
        let record = decode_leaf(&l.leaf).map_err(|e| StoreError::Corrupt {
            index: l.idx,
            reason: e.to_string(),
        })?;
        rows.record(&mut frontier, &record, l.leaf, hash)?;
    }
    let root = frontier.root();
    let signed =
        trailmark_log::verify_checkpoint(&cp.note, std::slice::from_ref(verifier), Some(origin))
            .map_err(|e| StoreError::Corrupt {
                index: cp.size,
                reason: format!(
                    "checkpoint {} does not verify with the log's key: {e}",
                    cp.size
                ),
            })?;
    if cp.size != frontier.size() || signed.size != cp.size || signed.root != root {
        return Err(StoreError::Corrupt {
            index: cp.size,
            reason: format!(
                "the records do not produce checkpoint {}'s signed root",
                cp.size
            ),
        });
    }
    let WriterConn { client, st } = c;
    let written = async {
        client.execute(&st.begin, &[]).await.map_err(pg("starting an import"))?;
        client.execute(&st.lock, &[&lock_key]).await.map_err(pg("taking the append lock"))?;
        let head = Head::parse(&client.query_one(&st.head, &[]).await.map_err(pg("reading the log head"))?)?;
        let start = frontier.size() - rows.rec_idx.len() as u64;
        if head.size != start {
            return Err(StoreError::InvalidRequest(format!(
                "the target log grew to {} while importing (at {start}); import into a log nothing else writes",
                head.size
            )));
        }
        let cp_size = to_i64(cp.size)?;
        let cp_root: &[u8] = root.as_bytes();
        let signed_ms = Timestamp::now().as_millis();
        let steps: [(&'static str, &Statement, Vec<&(dyn ToSql + Sync)>, bool); 6] = [
            ("storing raw inputs", &st.blobs, vec![&rows.blob_digest, &rows.blob_bytes], !rows.blob_digest.is_empty()),
            ("importing records", &st.records, vec![&rows.rec_idx, &rows.rec_leaf, &rows.rec_hash, &rows.rec_kind, &rows.rec_us], !rows.rec_idx.is_empty()),
            ("recording idempotency keys", &st.keys, vec![&rows.key, &rows.key_idx], !rows.key.is_empty()),
            ("indexing subjects", &st.subjects, vec![&rows.subj_type, &rows.subj_id, &rows.subj_rel, &rows.subj_idx], !rows.subj_idx.is_empty()),
            ("storing tree nodes", &st.tree_nodes, vec![&rows.node_level, &rows.node_idx, &rows.node_hash], !rows.node_idx.is_empty()),
            ("storing a checkpoint", &st.checkpoint, vec![&cp_size, &cp_root, &cp.note, &signed_ms], true),
        ];
        for (op, statement, params, needed) in steps {
            if needed {
                client.execute(statement, &params).await.map_err(pg(op))?;
            }
        }
        client.execute(&st.commit, &[]).await.map_err(pg("committing an import"))?;
        Ok(())
    }
    .await;
    if let Err(e) = written {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(e);
    }
    Ok(frontier)
}

#[derive(Default)]
struct BatchRows {
    rec_idx: Vec<i64>,
    rec_leaf: Vec<Vec<u8>>,
    rec_hash: Vec<Vec<u8>>,
    rec_kind: Vec<String>,
    rec_us: Vec<i64>,
    key: Vec<String>,
    key_idx: Vec<i64>,
    subj_type: Vec<String>,
    subj_id: Vec<String>,
    subj_rel: Vec<String>,
    subj_idx: Vec<i64>,
    node_level: Vec<i16>,
    node_idx: Vec<i64>,
    node_hash: Vec<Vec<u8>>,
    blob_digest: Vec<Vec<u8>>,
    blob_bytes: Vec<Vec<u8>>,
}

impl BatchRows {
    /// One sealed record at the frontier's next index: its row, its idempotency key, its
    /// subject index rows, and the tree nodes it completes (even levels, as stored).
    fn record(
        &mut self,
        frontier: &mut Frontier,
        record: &trailmark_model::Record,
        leaf: Vec<u8>,
        hash: Hash,
    ) -> Result<(), StoreError> {
        let idx = to_i64(frontier.size())?;
        self.rec_idx.push(idx);
        self.rec_leaf.push(leaf);
        self.rec_hash.push(hash.as_bytes().to_vec());
        self.rec_kind.push(record.kind.as_str().to_owned());
        self.rec_us.push(record.recorded_at.as_micros());
        if let Some(key) = &record.idempotency_key {
            self.key.push(key.clone());
            self.key_idx.push(idx);
        }
        // A record may name one subject twice (or link to it twice with one rel): the
        // second row would be the same fact.
        let mut named = HashSet::new();
        let subjects = record.subjects.iter().map(|s| (s, ""));
        let links = record.links.iter().map(|l| (&l.to, l.rel.as_str()));
        for (s, rel) in subjects.chain(links) {
            if named.insert((s, rel)) {
                self.subject(s.ty.as_str(), &s.id, rel, idx);
            }
        }
        let mut node_error = None;
        frontier.append(hash, |id, h| {
            if id.level % 2 == 0 {
                match i64::try_from(id.index) {
                    Ok(i) => {
                        self.node_level.push(i16::from(id.level));
                        self.node_idx.push(i);
                        self.node_hash.push(h.as_bytes().to_vec());
                    }
                    Err(_) => node_error = Some(id),
                }
            }
        });
        match node_error {
            Some(id) => Err(StoreError::InvalidRequest(format!(
                "tree node {}#{} is out of range",
                id.level, id.index
            ))),
            None => Ok(()),
        }
    }

    fn subject(&mut self, ty: &str, id: &str, rel: &str, idx: i64) {
        self.subj_type.push(ty.to_owned());
        self.subj_id.push(id.to_owned());
        self.subj_rel.push(rel.to_owned());
        self.subj_idx.push(idx);
    }

    fn blob(&mut self, seen: &mut HashSet<[u8; 32]>, blob: Blob) {
        let digest = blob.digest();
        if seen.insert(digest.0) {
            self.blob_digest.push(digest.0.to_vec());
            self.blob_bytes.push(blob.into_bytes());
        }
    }
}

/// The writer thread's state: its connection, the signing key and the cached right frontier.
struct Writer {
    config: Config,
    conn: Option<WriterConn>,
    signer: SignerKey,
    origin: String,
    lock_key: i64,
    frontier: Frontier,
}

impl Writer {
    /// Connects and checks the stored tree against its latest checkpoint (as the SQLite writer
    /// does on open), so a damaged log is refused at startup, not at the first append.
    async fn start(
        config: Config,
        signer: SignerKey,
        origin: String,
    ) -> Result<Writer, StoreError> {
        let mut w = Writer {
            lock_key: lock_key(&format!("trailmark:append:{origin}")),
            config,
            conn: None,
            signer,
            origin,
            frontier: Frontier::new(),
        };
        let Writer {
            config,
            conn,
            frontier,
            ..
        } = &mut w;
        let WriterConn { client, st } = ensure(conn, config).await?;
        let op = "checking the stored tree";
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(pg(op))?;
        let head = Head::parse(&tx.query_one(&st.head, &[]).await.map_err(pg(op))?)?;
        refresh(&tx, &st.nodes, frontier, &head).await?;
        tx.commit().await.map_err(pg(op))?;
        Ok(w)
    }

    fn serve(mut self, handle: &Handle, rx: &mpsc::Receiver<Job>, max_batch: usize) {
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
            let saved = self.frontier.clone();
            let mut batches: Vec<Vec<NewRecord>> = jobs
                .iter_mut()
                .map(|j| std::mem::take(&mut j.records))
                .collect();
            let blobs: Vec<Blob> = jobs
                .iter_mut()
                .flat_map(|j| std::mem::take(&mut j.blobs))
                .collect();
            // This is the writer's own thread, never inside a runtime, so blocking on the
            // store's runtime here is safe; the CPU work (sealing, hashing, signing) stays on
            // this thread.
            match handle.block_on(self.commit(&mut batches, blobs)) {
                Ok(results) => {
                    for (job, result) in jobs.into_iter().zip(results) {
                        job.reply.send(Ok(result));
                    }
                }
                Err(e) => {
                    // Nothing of the batch is in the database (the transaction rolled back), so
                    // the cached frontier goes back too. (Should the commit have succeeded
                    // unseen — a connection lost during COMMIT — the next batch finds the head
                    // moved and rebuilds from what is stored.)
                    self.frontier = saved;
                    for job in jobs {
                        job.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    async fn commit(
        &mut self,
        batches: &mut [Vec<NewRecord>],
        blobs: Vec<Blob>,
    ) -> Result<Vec<Vec<Appended>>, StoreError> {
        let Writer {
            config,
            conn,
            signer,
            origin,
            lock_key,
            frontier,
        } = self;
        let c = ensure(conn, config).await?;
        let result = append_batch(c, signer, origin, *lock_key, frontier, batches, blobs).await;
        if result.is_err() {
            // Whatever failed, the session must not stay inside the transaction, holding the
            // append lock: roll back, or drop the session if even that fails (the server then
            // rolls back). After a failed COMMIT this is a harmless no-op.
            if c.client.batch_execute("ROLLBACK").await.is_err() {
                *conn = None;
            }
        }
        result
    }
}

/// One batch in one transaction, in two round trips: BEGIN, the lock, the head and the
/// idempotency keys; then every insert and the COMMIT (plus one to rebuild the frontier when
/// another instance appended). The caller rolls back if this fails.
async fn append_batch(
    c: &WriterConn,
    signer: &SignerKey,
    origin: &str,
    lock_key: i64,
    frontier: &mut Frontier,
    batches: &mut [Vec<NewRecord>],
    blobs: Vec<Blob>,
) -> Result<Vec<Vec<Appended>>, StoreError> {
    let WriterConn { client, st } = c;
    let mut keys: Vec<String> = batches
        .iter()
        .flatten()
        .filter_map(|r| r.idempotency_key.clone())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    // Pipelined, and executed by the server in this order: the lock before anything is read,
    // so the head and the idempotency keys are read only once no other instance can append.
    let (begun, locked, head, known) = futures_util::future::join4(
        client.execute(&st.begin, &[]),
        client.execute(&st.lock, &[&lock_key]),
        client.query_one(&st.head, &[]),
        client.query(&st.find_keys, &[&keys]),
    )
    .await;
    begun.map_err(pg("starting an append"))?;
    locked.map_err(pg("taking the append lock"))?;
    let head = Head::parse(&head.map_err(pg("reading the log head"))?)?;
    let known = known.map_err(pg("checking idempotency keys"))?;
    refresh(client, &st.nodes, frontier, &head).await?;

    let op = "checking idempotency keys";
    let mut existing: HashMap<String, Appended> = HashMap::with_capacity(known.len());
    for row in &known {
        let index = to_u64(col(row, 1, op)?, "a record index")?;
        existing.insert(
            col(row, 0, op)?,
            Appended {
                index: LogIndex(index),
                leaf_hash: hash_from(col(row, 2, op)?, "the leaf hash", index)?,
                duplicate: true,
            },
        );
    }

    // recorded_at never goes backwards, whichever instance's clock wrote the last record.
    let floor = head
        .last_recorded
        .unwrap_or(Timestamp(jiff::Timestamp::UNIX_EPOCH));
    let now = std::cmp::max(Timestamp::now(), floor);
    let start_size = frontier.size();
    let mut rows = BatchRows::default();
    let mut blob_seen = HashSet::new();
    for blob in blobs {
        rows.blob(&mut blob_seen, blob);
    }
    let mut seen: HashMap<String, Appended> = HashMap::new();
    let mut results = Vec::with_capacity(batches.len());
    for batch in batches.iter_mut() {
        let mut out = Vec::with_capacity(batch.len());
        for rec in std::mem::take(batch) {
            if let Some(first) = rec
                .idempotency_key
                .as_ref()
                .and_then(|k| seen.get(k).or_else(|| existing.get(k)))
            {
                out.push(Appended {
                    duplicate: true,
                    ..*first
                });
                continue;
            }
            let index = LogIndex(frontier.size());
            let Sealed { record, leaf, blob } = rec.seal(index, now);
            let hash = leaf_hash(&leaf);
            if let Some(blob) = blob {
                rows.blob(&mut blob_seen, blob);
            }
            rows.record(frontier, &record, leaf, hash)?;
            let appended = Appended {
                index,
                leaf_hash: hash,
                duplicate: false,
            };
            if let Some(key) = record.idempotency_key {
                seen.insert(key, appended);
            }
            out.push(appended);
        }
        results.push(out);
    }

    let size = frontier.size();
    let grew = size > start_size;
    let root = frontier.root();
    // A batch of only duplicates appends nothing and so signs nothing.
    let note = if grew {
        let checkpoint = Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        };
        signer
            .sign(&checkpoint.body())
            .map_err(|e| StoreError::Backend {
                op: "signing a checkpoint",
                message: e.to_string(),
            })?
    } else {
        String::new()
    };
    let cp_size = to_i64(size)?;
    let cp_root: &[u8] = root.as_bytes();
    let signed_ms = Timestamp::now().as_millis();
    let p_records: [&(dyn ToSql + Sync); 5] = [
        &rows.rec_idx,
        &rows.rec_leaf,
        &rows.rec_hash,
        &rows.rec_kind,
        &rows.rec_us,
    ];
    let p_keys: [&(dyn ToSql + Sync); 2] = [&rows.key, &rows.key_idx];
    let p_subjects: [&(dyn ToSql + Sync); 4] = [
        &rows.subj_type,
        &rows.subj_id,
        &rows.subj_rel,
        &rows.subj_idx,
    ];
    let p_nodes: [&(dyn ToSql + Sync); 3] = [&rows.node_level, &rows.node_idx, &rows.node_hash];
    let p_blobs: [&(dyn ToSql + Sync); 2] = [&rows.blob_digest, &rows.blob_bytes];
    let p_checkpoint: [&(dyn ToSql + Sync); 4] = [&cp_size, &cp_root, &note, &signed_ms];
    type Step<'a> = (
        &'static str,
        &'a Statement,
        &'a [&'a (dyn ToSql + Sync)],
        bool,
    );
    let steps: [Step<'_>; 7] = [
        // Raw inputs are stored even when every record was a duplicate (as SQLite does).
        (
            "storing raw inputs",
            &st.blobs,
            &p_blobs,
            !rows.blob_digest.is_empty(),
        ),
        ("appending records", &st.records, &p_records, grew),
        (
            "recording idempotency keys",
            &st.keys,
            &p_keys,
            !rows.key.is_empty(),
        ),
        (
            "indexing subjects",
            &st.subjects,
            &p_subjects,
            !rows.subj_idx.is_empty(),
        ),
        (
            "storing tree nodes",
            &st.tree_nodes,
            &p_nodes,
            !rows.node_idx.is_empty(),
        ),
        ("storing a checkpoint", &st.checkpoint, &p_checkpoint, grew),
        ("committing an append", &st.commit, &[], true),
    ];
    // One statement per table and the COMMIT, all pipelined in one round trip; the server runs
    // them in order. If one fails, the rest fail or are skipped, and the COMMIT of the aborted
    // transaction rolls it back (reporting success!), so every result is checked, in order, and
    // the batch counts as committed only if all of them succeeded.
    let mut ops = Vec::new();
    let mut pending = Vec::new();
    for (op, statement, params, needed) in steps {
        if needed {
            ops.push(op);
            pending.push(client.execute(statement, params));
        }
    }
    let done = futures_util::future::join_all(pending).await;
    for (op, result) in ops.into_iter().zip(done) {
        result.map_err(pg(op))?;
    }
    // synchronous_commit is on: the COMMIT returned once the batch was in the flushed WAL, so
    // it survives a crash. Only now are callers answered.
    Ok(results)
}
