//! Load benchmark of the GitHub webhook endpoint over loopback.
//!
//! The server runs in-process (`trailmark_server::serve` on 127.0.0.1:0, its own multi-thread
//! runtime) over a fresh SQLite store and access database in a temporary directory. The load
//! generator runs on a separate runtime: N keep-alive HTTP/1.1 connections, each sending one
//! signed delivery at a time (a unique `X-GitHub-Delivery`, bodies rotated over every GitHub
//! payload in the shared fixtures) and timing it from the first byte written to the last byte of
//! the response read. Any non-2xx answer or broken connection is an error.
//!
//! `cargo bench -p trailmark-server --bench webhooks`. Settings (environment):
//! - `TRAILMARK_BENCH_CONNECTIONS` (64): concurrent keep-alive connections
//! - `TRAILMARK_BENCH_DELIVERIES` (50000): measured deliveries
//! - `TRAILMARK_BENCH_WARMUP` (2000): deliveries sent first and not measured
//! - `TRAILMARK_BENCH_SECONDS` (60): time cap of the measured phase; stops early if reached
//! - `TRAILMARK_BENCH_CLIENT_THREADS` (1): load-generator runtime threads
//! - `TRAILMARK_BENCH_SERVER_THREADS` (available cores): server runtime worker threads
//! - `TRAILMARK_BENCH_UNIQUE_BODIES` (unset): when `1`, every body is unique (trailing JSON
//!   whitespace encodes the delivery number), so each delivery also stores a new raw-input blob,
//!   as real deliveries do; by default the rotated bodies repeat and their blobs are stored once.
//! - `TRAILMARK_BENCH_DIR` (system temp): where the temporary data directory is made
//! - `TRAILMARK_BENCH_LOG` (unset): when `1`, installs the server's own log subscriber (text on
//!   stderr, `RUST_LOG` or `info`) as `trailmark serve` does, so each request also writes its
//!   log line; by default nothing is subscribed and tracing costs next to nothing
//!
//! It reports; it asserts nothing about the goal (≥ 20k deliveries/s, p99 < 50 ms, no errors).
//!
//! Then, as a yardstick for the machine, the same load goes to a bare axum endpoint on the same
//! runtime (it reads each body and answers 201, nothing more), and the report gives the
//! Trailmark endpoint's rate as a share of that one: how fast the HTTP path alone is here, and
//! how much of it the checks, parsing and durable appends leave. `TRAILMARK_BENCH_BARE=0` skips
//! it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trailmark_access::AccessStore;
use trailmark_log::SignerKey;
use trailmark_server::{AppState, Config, governance};
use trailmark_store::{SqliteStore, Store};

/// The `trailmark` binary's allocator, so the server in this process allocates as `trailmark
/// serve` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;

const SECRET: &str = "bench-webhook-secret-0123456789";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/ingest/github"
);

struct Settings {
    connections: usize,
    deliveries: u64,
    warmup: u64,
    cap: Duration,
    client_threads: usize,
    server_threads: usize,
    unique_bodies: bool,
    dir: Option<PathBuf>,
    log: bool,
}

fn env_num(name: &str, default: u64) -> Result<u64, Error> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a whole number").into()),
        Err(_) => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Settings, Error> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let positive = |name: &str, default: u64| -> Result<u64, Error> {
            match env_num(name, default)? {
                0 => Err(format!("{name} must be at least 1").into()),
                n => Ok(n),
            }
        };
        Ok(Settings {
            connections: usize::try_from(positive("TRAILMARK_BENCH_CONNECTIONS", 64)?)?,
            deliveries: positive("TRAILMARK_BENCH_DELIVERIES", 50_000)?,
            warmup: env_num("TRAILMARK_BENCH_WARMUP", 2_000)?,
            cap: Duration::from_secs(positive("TRAILMARK_BENCH_SECONDS", 60)?),
            client_threads: usize::try_from(positive("TRAILMARK_BENCH_CLIENT_THREADS", 1)?)?,
            server_threads: usize::try_from(positive(
                "TRAILMARK_BENCH_SERVER_THREADS",
                cores as u64,
            )?)?,
            unique_bodies: std::env::var("TRAILMARK_BENCH_UNIQUE_BODIES").is_ok_and(|v| v == "1"),
            dir: std::env::var_os("TRAILMARK_BENCH_DIR").map(PathBuf::from),
            log: std::env::var("TRAILMARK_BENCH_LOG").is_ok_and(|v| v == "1"),
        })
    }
}

/// One fixture: the event name (its directory) and the body.
struct Payload {
    event: String,
    body: Vec<u8>,
    signature: String,
}

fn sign(body: &[u8]) -> Result<String, Error> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes())?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Every GitHub payload in the shared fixtures, in a fixed order.
fn payloads() -> Result<Vec<Payload>, Error> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(FIXTURES).map_err(|e| format!("{FIXTURES}: {e}"))? {
        let dir = dir?.path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir)? {
            let f = f?.path();
            if f.extension().is_some_and(|e| e == "json") {
                files.push(f);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let event = f
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: no event directory", f.display()))?
            .to_owned();
        let body = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let signature = sign(&body)?;
        out.push(Payload {
            event,
            body,
            signature,
        });
    }
    if out.is_empty() {
        return Err(format!("no GitHub payloads under {FIXTURES}").into());
    }
    Ok(out)
}

/// The request for delivery `n`, head and body in one buffer.
fn request(payloads: &[Payload], n: u64, unique: bool, buf: &mut Vec<u8>) -> Result<(), Error> {
    let p = &payloads[(n % payloads.len() as u64) as usize];
    let mut unique_body;
    let (body, signature) = if unique {
        // JSON allows trailing whitespace: spaces and tabs spell `n` in binary, so the body
        // (and its digest) is new while the payload parses the same.
        unique_body = p.body.clone();
        unique_body.push(b'\n');
        let mut m = n;
        loop {
            unique_body.push(if m & 1 == 1 { b'\t' } else { b' ' });
            m >>= 1;
            if m == 0 {
                break;
            }
        }
        let sig = sign(&unique_body)?;
        (&unique_body[..], sig)
    } else {
        (&p.body[..], p.signature.clone())
    };
    buf.clear();
    use std::io::Write;
    write!(
        buf,
        "POST /hooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: {}\r\nX-GitHub-Delivery: bench-{n}\r\nX-Hub-Signature-256: {signature}\r\n\
         Content-Length: {}\r\n\r\n",
        p.event,
        body.len()
    )?;
    buf.extend_from_slice(body);
    Ok(())
}

/// Reads one response from a keep-alive connection: the status and the body.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, Vec<u8>), Error> {
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err("the server closed the connection mid-response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
    let mut body = buf[head_end..].to_vec();
    if body.len() > length {
        return Err("more bytes than one response: unexpected pipelining".into());
    }
    let have = body.len();
    body.resize(length, 0);
    s.read_exact(&mut body[have..]).await?;
    Ok((status, body))
}

#[derive(Default)]
struct ConnResult {
    /// Latency of each successful delivery, in microseconds.
    latencies_us: Vec<u32>,
    errors: u64,
    first_errors: Vec<String>,
    appended: u64,
    duplicates: u64,
}

impl ConnResult {
    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_errors.len() < 3 {
            self.first_errors.push(e);
        }
    }
}

/// One keep-alive connection sending deliveries `next..end` (shared counter) until done or
/// past the deadline. A broken connection counts as an error and is reopened.
async fn connection(
    addr: SocketAddr,
    payloads: Arc<Vec<Payload>>,
    next: Arc<AtomicU64>,
    end: u64,
    deadline: Instant,
    unique: bool,
) -> ConnResult {
    let mut out = ConnResult::default();
    let mut req = Vec::with_capacity(32 * 1024);
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut stream: Option<TcpStream> = None;
    loop {
        if Instant::now() >= deadline {
            break;
        }
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= end {
            break;
        }
        if let Err(e) = request(&payloads, n, unique, &mut req) {
            out.error(format!("building delivery {n}: {e}"));
            continue;
        }
        let s = match &mut stream {
            Some(s) => s,
            None => match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream.insert(s)
                }
                Err(e) => {
                    out.error(format!("connecting: {e}"));
                    continue;
                }
            },
        };
        let start = Instant::now();
        let answer = match s.write_all(&req).await {
            Ok(()) => read_response(s, &mut buf).await,
            Err(e) => Err(e.into()),
        };
        let took = start.elapsed();
        match answer {
            Ok((status, body)) if (200..300).contains(&status) => {
                out.latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(v) => {
                        out.appended += v["appended"].as_u64().unwrap_or(0);
                        if v["duplicate"] == true {
                            out.duplicates += 1;
                        }
                    }
                    Err(e) => out.error(format!("delivery {n}: response is not JSON: {e}")),
                }
            }
            Ok((status, body)) => out.error(format!(
                "delivery {n}: status {status}: {}",
                String::from_utf8_lossy(&body)
            )),
            Err(e) => {
                out.error(format!("delivery {n}: {e}"));
                stream = None;
            }
        }
    }
    out
}

struct Phase {
    results: Vec<ConnResult>,
    elapsed: Duration,
    capped: bool,
}

/// Sends deliveries `start..end` over `connections` connections.
fn run_phase(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    addr: SocketAddr,
    payloads: &Arc<Vec<Payload>>,
    start: u64,
    end: u64,
) -> Result<Phase, Error> {
    let next = Arc::new(AtomicU64::new(start));
    let began = Instant::now();
    let deadline = began + s.cap;
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..s.connections)
            .map(|_| {
                tokio::spawn(connection(
                    addr,
                    payloads.clone(),
                    next.clone(),
                    end,
                    deadline,
                    s.unique_bodies,
                ))
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await?);
        }
        Ok::<_, Error>(results)
    })?;
    Ok(Phase {
        results,
        elapsed: began.elapsed(),
        capped: next.load(Ordering::Relaxed) < end,
    })
}

/// What the bare endpoint did under the same load.
struct Bare {
    rate: f64,
    p99: f64,
    errors: u64,
}

/// The same warm-up and measured load against an axum endpoint that reads each body and
/// answers 201 with what the load generator reads of a delivery's answer: the HTTP path alone,
/// on the server's runtime.
fn bare_phase(
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    s: &Settings,
    payloads: &Arc<Vec<Payload>>,
) -> Result<Bare, Error> {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/hooks/github",
        post(|body: axum::body::Bytes| async move {
            std::hint::black_box(body);
            (
                axum::http::StatusCode::CREATED,
                axum::Json(serde_json::json!({"appended": 0})),
            )
        }),
    );
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    run_phase(client_rt, s, addr, payloads, 0, s.warmup)?;
    let phase = run_phase(
        client_rt,
        s,
        addr,
        payloads,
        s.warmup,
        s.warmup + s.deliveries,
    )?;
    let _ = stop.send(());
    server_rt.block_on(server)??;
    let mut latencies: Vec<u32> = Vec::new();
    let mut errors = 0;
    for r in phase.results {
        latencies.extend(r.latencies_us);
        errors += r.errors;
    }
    latencies.sort_unstable();
    Ok(Bare {
        rate: latencies.len() as f64 / phase.elapsed.as_secs_f64(),
        p99: percentile(&latencies, 99.0),
        errors,
    })
}

/// CPU time (user + system) from a `/proc/.../stat` line, in seconds (USER_HZ is 100 on Linux).
fn stat_cpu(stat: &str) -> Option<f64> {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ').skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// CPU seconds used so far by the whole process and by the load generator's threads, so the
/// server's share can be told apart (Linux only; `None` elsewhere).
fn cpu_seconds() -> Option<(f64, f64)> {
    let total = stat_cpu(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut load = 0.0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "load" {
            load += stat_cpu(&std::fs::read_to_string(dir.join("stat")).unwrap_or_default())
                .unwrap_or(0.0);
        }
    }
    Some((total, load))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn main() -> Result<(), Error> {
    // `cargo bench` passes `--bench`; a filter that is not this bench's name skips it.
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with('-'))
        && !"webhooks".contains(filter.as_str())
    {
        return Ok(());
    }
    let s = Settings::from_env()?;
    if s.log {
        trailmark_server::init_logging(trailmark_server::config::LogFormat::Text);
    }
    let payloads = Arc::new(payloads()?);
    let tmp = match &s.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let signer = SignerKey::from_seed("bench.example/log", [9; 32])?;
    let sqlite = Arc::new(SqliteStore::create(
        &tmp.path().join("trailmark.db"),
        "bench.example/log",
        signer,
    )?);
    let store: Arc<dyn Store> = sqlite.clone();
    let access = Arc::new(AccessStore::open(&tmp.path().join("access.db"))?);
    let org = "bench".parse()?;
    governance::create_org(store.as_ref(), &access, "bench", &org)
        .map_err(|e| format!("creating the organisation: {e}"))?;
    let config = Config::from_toml(
        &format!(
            "default_org = \"bench\"\n[[hooks]]\nsource = \"github\"\nsecret = \"{SECRET}\"\nscope = \"bench\"\n"
        ),
        &BTreeMap::new(),
    )?;
    let state = AppState::new(store.clone(), access, config)?;

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(s.server_threads)
        .thread_name("server")
        .enable_all()
        .build()?;
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(trailmark_server::serve(state, listener, async move {
        let _ = stopped.await;
    }));

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(s.client_threads)
        .thread_name("load")
        .enable_all()
        .build()?;

    let bare = std::env::var("TRAILMARK_BENCH_BARE").map_or(true, |v| v != "0");
    eprintln!(
        "webhooks: {} GitHub fixture payloads, {} connections, {} deliveries (+{} warm-up), cap {} s, \
         server threads {}, client threads {}, {} bodies, request logging {}, data in {}",
        payloads.len(),
        s.connections,
        s.deliveries,
        s.warmup,
        s.cap.as_secs(),
        s.server_threads,
        s.client_threads,
        if s.unique_bodies { "unique" } else { "rotated" },
        if s.log { "on" } else { "off" },
        tmp.path().display()
    );
    let size_before = store.size()?;
    if s.warmup > 0 {
        let w = run_phase(&client_rt, &s, addr, &payloads, 0, s.warmup)?;
        let errors: u64 = w.results.iter().map(|r| r.errors).sum();
        eprintln!(
            "warm-up: {} deliveries in {:.2} s, {errors} errors",
            s.warmup,
            w.elapsed.as_secs_f64()
        );
    }
    let size_measured = store.size()?;
    let cpu_before = cpu_seconds();
    let phase = run_phase(
        &client_rt,
        &s,
        addr,
        &payloads,
        s.warmup,
        s.warmup + s.deliveries,
    )?;

    let cpu_after = cpu_seconds();
    let _ = stop.send(());
    server_rt.block_on(server)??;
    let baseline = if bare {
        Some(bare_phase(&server_rt, &client_rt, &s, &payloads)?)
    } else {
        None
    };
    drop(client_rt);
    let size_after = store.size()?;

    let mut latencies: Vec<u32> = Vec::new();
    let (mut errors, mut appended, mut duplicates) = (0u64, 0u64, 0u64);
    let mut first_errors = Vec::new();
    for r in phase.results {
        latencies.extend(r.latencies_us);
        errors += r.errors;
        appended += r.appended;
        duplicates += r.duplicates;
        first_errors.extend(r.first_errors);
    }
    latencies.sort_unstable();
    let ok = latencies.len();
    let secs = phase.elapsed.as_secs_f64();
    let rate = ok as f64 / secs;
    let (p50, p90, p99) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
    );
    let max = latencies
        .last()
        .map_or(f64::NAN, |m| f64::from(*m) / 1000.0);
    println!(
        "webhooks/github: {ok} deliveries in {secs:.2} s over {} connections{}",
        s.connections,
        if phase.capped {
            " (stopped by the time cap)"
        } else {
            ""
        }
    );
    println!("  deliveries/s   {rate:.0}");
    println!("  latency ms     p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  max {max:.2}");
    println!("  errors         {errors}");
    println!(
        "  records        {appended} appended ({duplicates} duplicate deliveries); log grew by {} during the run, {} in all",
        size_after - size_measured,
        size_after - size_before
    );
    if let (Some((t0, l0)), Some((t1, l1))) = (cpu_before, cpu_after)
        && ok > 0
    {
        let (total, load) = (t1 - t0, l1 - l0);
        println!(
            "  cpu            {:.0} µs per delivery in the server (incl. its writer), {:.0} µs in the load generator; {:.2} of {} cores busy",
            (total - load) / ok as f64 * 1e6,
            load / ok as f64 * 1e6,
            total / secs,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
    }
    for e in &first_errors {
        println!("  error: {e}");
    }
    if let Some(b) = baseline {
        println!(
            "  bare axum      {:.0} deliveries/s, p99 {:.2} ms, {} errors (reads the body, answers 201): Trailmark does {:.0} % of that",
            b.rate,
            b.p99,
            b.errors,
            rate / b.rate * 100.0
        );
    }
    let met = rate >= 20_000.0 && p99 < 50.0 && errors == 0;
    println!(
        "  goal ≥ 20k deliveries/s, p99 < 50 ms, zero errors: {}",
        if met { "met" } else { "not met" }
    );
    drop(store);
    // The last handle: dropping it drains and stops the writer before the directory goes.
    drop(sqlite);
    Ok(())
}
