//! Durable appends to the PostgreSQL backend with one and with two instances (two `PgStore`
//! handles on one database, as two `trailmark serve` processes would have), beside raw
//! pipelined inserts of the same leaf rows into a bare table: the floor the database itself sets.
//!
//! `cargo bench -p trailmark-store --bench pg` (needs PostgreSQL at 127.0.0.1:5432, trust auth).
//! Settings: `TRAILMARK_BENCH_PG_RECORDS` (default 100000), `TRAILMARK_BENCH_PG_BATCH` (1000),
//! `TRAILMARK_BENCH_PG_THREADS` (4 appending threads in all, split over the instances).
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use trailmark_log::{SignerKey, leaf_hash};
use trailmark_model::{LogIndex, NewRecord, Timestamp, encode_leaf, parse_record};
use trailmark_store::{PgStore, Store, verify_log};

const ORIGIN: &str = "bench.trailmark.local/pg";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn record(i: usize) -> NewRecord {
    parse_record(&format!(
        r#"{{"kind":"ci.test_report","subjects":[{{"type":"build","id":"ci-{i}"}}],"actor":"ci@example.com","source":"bench","occurred_at":"2026-11-20T10:15:00Z","payload":{{"tests":412,"failures":0,"errors":0,"skipped":3,"suite":"payments"}},"links":[{{"rel":"tests","to":{{"type":"commit","id":"9fceb02d0ae598e95dc970b74767f19372d61af8"}}}}]}}"#
    ))
    .unwrap()
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fresh_database(name: &str) -> String {
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {name}"));
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

fn signer() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [6u8; 32]).unwrap()
}

/// Appends `total` records in batches of `batch` from `threads` threads spread over
/// `instances` store handles on one fresh database; returns records/s and verifies the log.
fn stores(instances: usize, threads: usize, total: usize, batch: usize) -> f64 {
    let url = fresh_database(&format!("trailmark_bench_pg_{instances}"));
    drop(PgStore::create(&url, ORIGIN, signer()).unwrap());
    let handles: Vec<Arc<PgStore>> = (0..instances)
        .map(|_| Arc::new(PgStore::open(&url, signer()).unwrap()))
        .collect();
    let per_thread = total / threads;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = handles[t % instances].clone();
            s.spawn(move || {
                let mut done = 0;
                while done < per_thread {
                    let n = batch.min(per_thread - done);
                    let records: Vec<NewRecord> =
                        (0..n).map(|i| record(t * per_thread + done + i)).collect();
                    store.append(records).unwrap();
                    done += n;
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let appended = per_thread * threads;
    let report = verify_log(
        handles[0].as_ref(),
        &[handles[0].verifier().clone()],
        &mut |_, _| {},
    )
    .unwrap();
    assert!(report.is_ok(), "the benchmark log verifies: {report:?}");
    assert_eq!(report.records, appended as u64);
    appended as f64 / elapsed.as_secs_f64()
}

/// The same leaf rows (index, leaf, leaf hash, kind, time), inserted by `threads` connections
/// into a bare table, one multi-row INSERT and COMMIT per batch, pipelined: no lock, no tree,
/// no subject index, no checkpoint.
fn raw(threads: usize, total: usize, batch: usize) -> f64 {
    let url = fresh_database("trailmark_bench_pg_raw");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let per_thread = total / threads;
    let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = (0..per_thread * threads)
        .map(|i| {
            let r = record(i).sequence(LogIndex(i as u64), Timestamp::now()).0;
            let leaf = encode_leaf(&r);
            let hash = leaf_hash(&leaf).as_bytes().to_vec();
            (i as i64, leaf, hash)
        })
        .collect();
    let rows = Arc::new(rows);
    runtime.block_on(async {
        let (setup, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        setup
            .batch_execute(
                "CREATE TABLE raw_records (idx BIGINT PRIMARY KEY, leaf BYTEA NOT NULL,
                 leaf_hash BYTEA NOT NULL, kind TEXT NOT NULL, recorded_us BIGINT NOT NULL)",
            )
            .await
            .unwrap();
    });
    let start = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..threads {
            let (url, rows) = (url.clone(), rows.clone());
            tasks.push(tokio::spawn(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let insert = client
                    .prepare(
                        "INSERT INTO raw_records SELECT * FROM unnest($1::bigint[], $2::bytea[],
                         $3::bytea[], $4::text[], $5::bigint[])",
                    )
                    .await
                    .unwrap();
                let mine = &rows[t * per_thread..(t + 1) * per_thread];
                for chunk in mine.chunks(batch) {
                    let idx: Vec<i64> = chunk.iter().map(|r| r.0).collect();
                    let leaf: Vec<&[u8]> = chunk.iter().map(|r| r.1.as_slice()).collect();
                    let hash: Vec<&[u8]> = chunk.iter().map(|r| r.2.as_slice()).collect();
                    let kind: Vec<&str> = chunk.iter().map(|_| "ci.test_report").collect();
                    let us: Vec<i64> = chunk.iter().map(|r| r.0).collect();
                    let (b, i, c) = futures_util::future::join3(
                        client.execute("BEGIN", &[]),
                        client.execute(&insert, &[&idx, &leaf, &hash, &kind, &us]),
                        client.execute("COMMIT", &[]),
                    )
                    .await;
                    b.unwrap();
                    i.unwrap();
                    c.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    (per_thread * threads) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo test` runs bench binaries with `--bench` absent; measure only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let total = setting("TRAILMARK_BENCH_PG_RECORDS", 100_000);
    let batch = setting("TRAILMARK_BENCH_PG_BATCH", 1000);
    let threads = setting("TRAILMARK_BENCH_PG_THREADS", 4).max(2);
    println!("PostgreSQL appends: {total} records, batches of {batch}, {threads} threads");
    let one = stores(1, threads, total, batch);
    println!("  one instance:        {one:>9.0} records/s (durable, verified)");
    let two = stores(2, threads, total, batch);
    println!("  two instances:       {two:>9.0} records/s (durable, verified)");
    let bare = raw(threads, total, batch);
    println!("  raw pipelined insert {bare:>9.0} records/s (same leaf rows, bare table)");
    println!(
        "  stores vs raw: one {:.0} %, two {:.0} %",
        100.0 * one / bare,
        100.0 * two / bare
    );
    for name in [
        "trailmark_bench_pg_1",
        "trailmark_bench_pg_2",
        "trailmark_bench_pg_raw",
    ] {
        psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}
