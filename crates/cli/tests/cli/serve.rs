//! `trailmark serve` as a process: acknowledged webhook deliveries survive `kill -9` during
//! sustained ingest, and SIGTERM drains in-flight requests before a clean exit.
//!
//! The client is a few lines of HTTP/1.1 over `std::net::TcpStream` (one request per
//! connection, `Connection: close`), so these tests see exactly what a real sender sees.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{BIN, FIXTURES};

const SECRET: &str = "crash-test-secret-0123456789";

/// A generous bound so a hung server fails the test instead of hanging it (not a timing check).
const IO_TIMEOUT: Duration = Duration::from_secs(60);

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("serve.toml");
    std::fs::write(
        &path,
        format!("[[hooks]]\nsource = \"github\"\nsecret = \"{SECRET}\"\nscope = \"default\"\n"),
    )
    .unwrap();
    path
}

/// One GitHub payload from the shared fixtures, with its event name and signature.
struct Payload {
    event: &'static str,
    body: Vec<u8>,
    signature: String,
}

fn payloads() -> Vec<Payload> {
    [
        ("push", "push/payload.json"),
        ("push", "push/with-new-branch.payload.json"), // two records: the push and its commit
        ("pull_request", "pull_request/opened.payload.json"),
        ("workflow_run", "workflow_run/completed.payload.json"),
        ("check_run", "check_run/completed.payload.json"),
    ]
    .into_iter()
    .map(|(event, file)| {
        let body = std::fs::read(Path::new(FIXTURES).join("ingest/github").join(file)).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        Payload {
            event,
            body,
            signature,
        }
    })
    .collect()
}

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl HttpResponse {
    /// The value the response sets for cookie `name`, if it sets it.
    fn cookie(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if !k.eq_ignore_ascii_case("set-cookie") {
                return None;
            }
            let pair = v.trim().split(';').next()?;
            let (n, value) = pair.split_once('=')?;
            (n == name).then(|| value.to_owned())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} with a body that is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn request_head(method: &str, path: &str, headers: &[(&str, &str)], len: usize) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {len}\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Reads a whole `Connection: close` response. A response cut short (the server died while
/// sending it) is an error, never a status: only a complete answer counts as an acknowledgement.
fn read_response(s: &mut TcpStream) -> std::io::Result<HttpResponse> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad(format!("incomplete response head ({} bytes)", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let body = raw[end + 4..].to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(format!("bad status line: {head}")))?;
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .ok_or_else(|| bad(format!("no Content-Length: {head}")))?;
    if body.len() != length {
        return Err(bad(format!(
            "truncated body: {} of {length} bytes",
            body.len()
        )));
    }
    Ok(HttpResponse { status, head, body })
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut s = connect(addr)?;
    let mut req = request_head(method, path, headers, body.len()).into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req)?;
    read_response(&mut s)
}

fn deliver(addr: SocketAddr, p: &Payload, delivery: &str) -> std::io::Result<HttpResponse> {
    http(
        addr,
        "POST",
        "/hooks/github",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", p.event),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &p.signature),
        ],
        &p.body,
    )
}

/// A running `trailmark serve`, its address read from its stderr, which a thread keeps reading
/// (so the server never blocks on a full pipe) and forwards line by line.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(data: &Path, config: &Path, rust_log: &str) -> Server {
        Server::start_with(data, config, rust_log, &[])
    }

    fn start_with(data: &Path, config: &Path, rust_log: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .envs(env.iter().copied())
            .arg("--data-dir")
            .arg(data)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            seen: Vec::new(),
        };
        let line = server.wait_for_line("Trailmark is serving http://");
        let rest = &line[line.find("http://").unwrap() + "http://".len()..];
        server.addr = rest[..rest.find('/').unwrap()].parse().unwrap();
        server.wait_ready();
        server
    }

    /// The next stderr line containing `needle` (lines before it are kept for failure messages).
    fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(IO_TIMEOUT) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no {needle:?} on the server's stderr ({e}); it said:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Polls `/readyz` until it answers 200.
    fn wait_ready(&self) {
        for _ in 0..2000 {
            if let Ok(r) = http(self.addr, "GET", "/readyz", &[], b"")
                && r.status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("{} never became ready", self.addr);
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL (what `Child::kill` sends on unix), then reap.
    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn wait(&mut self) -> ExitStatus {
        self.child.take().unwrap().wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a round of ingest saw: acknowledged deliveries with the indices the server returned,
/// every delivery id that was sent at all, and anything a live server should never answer.
#[derive(Default)]
struct Outcome {
    acked: BTreeMap<String, Vec<u64>>,
    sent: BTreeSet<String>,
    unexpected: Vec<String>,
}

/// Delivery ids are `{prefix}-{n}`; the payload is `n` modulo the payload count, so a resend
/// can rebuild the exact delivery from the id alone.
fn payload_of<'a>(payloads: &'a [Payload], id: &str) -> &'a Payload {
    let n: usize = id.rsplit('-').next().unwrap().parse().unwrap();
    &payloads[n % payloads.len()]
}

/// `clients` threads post fresh signed deliveries back to back until `stop` is set; once `target`
/// deliveries are acknowledged, `then` runs (with requests still in flight). A connection
/// error ends a client's loop; before `stop` it is reported as unexpected.
fn ingest_until(
    addr: SocketAddr,
    payloads: &Arc<Vec<Payload>>,
    prefix: &str,
    clients: usize,
    target: usize,
    then: impl FnOnce(),
) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<(String, Vec<u64>)>();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, next, tx, payloads) =
                (stop.clone(), next.clone(), tx.clone(), payloads.clone());
            let prefix = prefix.to_owned();
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                let mut unexpected = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let id = format!("{prefix}-{n}");
                    sent.push(id.clone());
                    match deliver(addr, &payloads[n % payloads.len()], &id) {
                        Ok(r) if r.status == 201 => {
                            let v = r.json();
                            assert_eq!(v["duplicate"], false, "{id}: {v}");
                            let indices: Vec<u64> = v["indices"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|i| i.as_u64().unwrap())
                                .collect();
                            assert!(!indices.is_empty(), "{id}: {v}");
                            let _ = tx.send((id, indices));
                        }
                        Ok(r) => unexpected.push(format!(
                            "{id}: status {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        )),
                        Err(e) => {
                            if !stop.load(Ordering::SeqCst) {
                                unexpected.push(format!("{id}: {e} while the server was up"));
                            }
                            break;
                        }
                    }
                }
                (sent, unexpected)
            })
        })
        .collect();
    drop(tx);
    let mut out = Outcome::default();
    while out.acked.len() < target {
        match rx.recv_timeout(IO_TIMEOUT) {
            Ok((id, indices)) => {
                out.acked.insert(id, indices);
            }
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                panic!("only {} acknowledgements ({e})", out.acked.len());
            }
        }
    }
    // Clients treat errors from here on as the expected end of the server.
    stop.store(true, Ordering::SeqCst);
    then();
    for h in handles {
        let (sent, unexpected) = h.join().unwrap();
        out.sent.extend(sent);
        out.unexpected.extend(unexpected);
    }
    // Answers that arrived between `stop` and the end of the server are acknowledgements too.
    out.acked.extend(rx.try_iter());
    out
}

/// Re-sends every acknowledged delivery: each must be a duplicate naming the same indices.
fn resend_all(addr: SocketAddr, payloads: &[Payload], acked: &BTreeMap<String, Vec<u64>>) {
    let all: Vec<(&String, &Vec<u64>)> = acked.iter().collect();
    std::thread::scope(|s| {
        for chunk in all.chunks(all.len().div_ceil(4).max(1)) {
            s.spawn(move || {
                for (id, indices) in chunk {
                    let r = deliver(addr, payload_of(payloads, id), id).unwrap();
                    assert_eq!(r.status, 200, "{id} re-sent: {:?}", r);
                    let v = r.json();
                    assert_eq!(v["duplicate"], true, "{id} re-sent: {v}");
                    assert_eq!(v["appended"], 0, "{id} re-sent: {v}");
                    let stored: Vec<u64> = v["indices"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i.as_u64().unwrap())
                        .collect();
                    assert_eq!(
                        &&stored, indices,
                        "{id} is stored where it was acknowledged"
                    );
                }
            });
        }
    });
}

fn cli_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .envs(env.iter().copied())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn verify_ok(data: &Path, when: &str) {
    verify_ok_with(data, when, &[]);
}

fn verify_ok_with(data: &Path, when: &str, env: &[(&str, &str)]) {
    let out = cli_with(data, &["verify"], env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok: "),
        "{when}: verify exited {:?}: {stdout}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GitHub records in the log, by delivery id: the indices stored for it, from the idempotency
/// key the receiver gives every record.
fn logged_deliveries(data: &Path, env: &[(&str, &str)]) -> BTreeMap<String, Vec<u64>> {
    let out = cli_with(data, &["log", "--limit", "1000000"], env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut by_delivery: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut keys = BTreeSet::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["source"] != "github" {
            continue;
        }
        let key = v["idempotency_key"].as_str().unwrap().to_owned();
        // `<scope>|github:<delivery>:<n>`: the receiver prefixes the hook's scope.
        let (delivery, _) = key
            .split_once("|github:")
            .and_then(|(_, k)| k.rsplit_once(':'))
            .unwrap_or_else(|| panic!("unexpected idempotency key {key}"));
        by_delivery
            .entry(delivery.to_owned())
            .or_default()
            .push(v["index"].as_u64().unwrap());
        assert!(keys.insert(key.clone()), "{key} stored twice");
    }
    by_delivery
}

/// Everything acknowledged is in the log at the acknowledged indices, and nothing is in the log
/// that was never sent.
fn check_log(data: &Path, acked: &BTreeMap<String, Vec<u64>>, sent: &BTreeSet<String>, when: &str) {
    check_log_with(data, acked, sent, when, &[]);
}

fn check_log_with(
    data: &Path,
    acked: &BTreeMap<String, Vec<u64>>,
    sent: &BTreeSet<String>,
    when: &str,
    env: &[(&str, &str)],
) {
    let logged = logged_deliveries(data, env);
    for (id, indices) in acked {
        assert_eq!(
            logged.get(id),
            Some(indices),
            "{when}: acknowledged {id} is missing"
        );
    }
    for id in logged.keys() {
        assert!(
            sent.contains(id),
            "{when}: {id} is stored but was never sent"
        );
    }
    let keys: usize = logged.values().map(Vec::len).sum();
    let acked_keys: usize = acked.values().map(Vec::len).sum();
    assert!(
        keys >= acked_keys,
        "{when}: {keys} keys < {acked_keys} acknowledged"
    );
}

#[test]
fn kill_9_during_ingest_never_loses_an_acknowledged_delivery() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = config(tmp.path());
    let payloads = Arc::new(payloads());
    let mut acked: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut sent = BTreeSet::new();
    for round in 0..3 {
        let mut server = Server::start(&data, &config, "warn");
        // After each restart, every delivery acknowledged before the earlier kills is a
        // duplicate at the index it was acknowledged with.
        resend_all(server.addr, &payloads, &acked);
        let outcome = ingest_until(
            server.addr,
            &payloads,
            &format!("crash-r{round}"),
            4,
            300,
            || server.kill(),
        );
        assert!(
            outcome.unexpected.is_empty(),
            "round {round}: {:#?}",
            outcome.unexpected
        );
        let in_flight = outcome.sent.len() - outcome.acked.len();
        eprintln!(
            "round {round}: {} acknowledged, {in_flight} unanswered when killed",
            outcome.acked.len()
        );
        acked.extend(outcome.acked);
        sent.extend(outcome.sent);
        let when = format!("after kill {round}");
        verify_ok(&data, &when);
        check_log(&data, &acked, &sent, &when);
    }
    let mut server = Server::start(&data, &config, "warn");
    resend_all(server.addr, &payloads, &acked);
    // The log still accepts new deliveries after three crashes.
    let r = deliver(server.addr, &payloads[0], "after-the-crashes").unwrap();
    assert_eq!(r.status, 201, "{:?}", r);
    server.kill();
    verify_ok(&data, "at the end");
}

/// A `trailmark` command that appends while `trailmark serve` runs on the same embedded log
/// (an operator recording a note, applying a policy): both keep appending, the server from
/// the stored head, and the log verifies.
#[test]
fn a_command_appending_beside_a_running_server_leaves_both_appending() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = config(tmp.path());
    let payloads = payloads();
    let mut server = Server::start(&data, &config, "warn");
    let first = deliver(server.addr, &payloads[0], "beside-1").unwrap();
    assert_eq!(first.status, 201, "{first:?}");
    let note = tmp.path().join("note.json");
    std::fs::write(
        &note,
        r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"OPS-1"}],"payload":{"text":"recorded from the CLI"}}"#,
    )
    .unwrap();
    for _ in 0..2 {
        let out = cli_with(&data, &["record", note.to_str().unwrap()], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The server's writer last committed before the command's two appends.
    let second = deliver(server.addr, &payloads[1], "beside-2").unwrap();
    assert_eq!(second.status, 201, "{second:?}");
    let third = deliver(server.addr, &payloads[2], "beside-3").unwrap();
    assert_eq!(third.status, 201, "{third:?}");
    server.kill();
    verify_ok(&data, "after appends from the server and a command");
    let logged = logged_deliveries(&data, &[]);
    for id in ["beside-1", "beside-2", "beside-3"] {
        assert!(logged.contains_key(id), "{id} missing from {logged:?}");
    }
    let log = cli_with(&data, &["log", "--subject", "ticket:OPS-1"], &[]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 2);
}

/// `trailmark backup` while the server takes deliveries: the copy is a consistent, verified
/// data directory holding every delivery acknowledged before the backup began, without the
/// signing key unless asked; a non-empty target is refused with nothing written.
#[test]
fn backup_copies_a_live_store_consistently() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = config(tmp.path());
    let payloads = Arc::new(payloads());
    let mut server = Server::start(&data, &config, "warn");
    let before = deliver(server.addr, &payloads[0], "before-backup").unwrap();
    assert_eq!(before.status, 201, "{before:?}");
    // Deliveries go on during the backup.
    let addr = server.addr;
    let feeder = {
        let payloads = Arc::clone(&payloads);
        std::thread::spawn(move || {
            for i in 0..30 {
                let p = &payloads[i % payloads.len()];
                let r = deliver(addr, p, &format!("during-{i}")).unwrap();
                assert!(r.status == 201 || r.status == 200, "{r:?}");
            }
        })
    };
    let copy = tmp.path().join("copy");
    let out = cli_with(&data, &["backup", copy.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    feeder.join().unwrap();
    server.kill();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["size"].as_u64().unwrap() > 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the signing key was not copied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!copy.join("signing.key").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(copy.join("access.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "access.db copy readable by others: {mode:o}"
        );
    }
    // The copy verifies on its own, at the size and root the backup reported, and holds the
    // delivery acknowledged before it began.
    let verified = cli_with(&copy, &["verify"], &[]);
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        text.contains(&format!(
            "latest checkpoint size {} root {}",
            summary["size"],
            summary["root"].as_str().unwrap()
        )),
        "{text} vs {summary}"
    );
    assert!(logged_deliveries(&copy, &[]).contains_key("before-backup"));
    // Without the signing key the copy is read-only: an append is refused, naming the key.
    let note = tmp.path().join("note.json");
    std::fs::write(
        &note,
        r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"OPS-1"}],"payload":{}}"#,
    )
    .unwrap();
    let refused = cli_with(&copy, &["record", note.to_str().unwrap()], &[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("signing"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // A target that is not empty is refused, and left as it was.
    let again = cli_with(&data, &["backup", copy.to_str().unwrap()], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
    let with_key = tmp.path().join("with-key");
    let out = cli_with(
        &data,
        &["backup", with_key.to_str().unwrap(), "--with-signing-key"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With the key, the copy takes appends, continuing the same log.
    let appended = cli_with(&with_key, &["record", note.to_str().unwrap()], &[]);
    assert!(
        appended.status.success(),
        "{}",
        String::from_utf8_lossy(&appended.stderr)
    );
    verify_ok(&with_key, "after appending to the copy");
}

/// A web sign-in outlives the server process that made it: sessions are kept in the access
/// store, so a restarted server (or another instance) still knows the cookie.
#[test]
fn a_web_session_survives_a_server_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = config(tmp.path());
    let mut server = Server::start(&data, &config, "warn");
    let password = std::fs::read_to_string(data.join("admin.password")).unwrap();
    let form = http(server.addr, "GET", "/ui/login", &[], b"").unwrap();
    let csrf = form
        .cookie("trailmark_login_csrf")
        .expect("the form's CSRF cookie");
    let body = format!(
        "username=admin&password={}&csrf={csrf}&next=%2Fui%2F",
        password.trim()
    );
    let cookie = format!("trailmark_login_csrf={csrf}");
    let signed_in = http(
        server.addr,
        "POST",
        "/ui/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(signed_in.status, 303, "{}", signed_in.head);
    let session = signed_in
        .cookie("trailmark_session")
        .expect("a session cookie");
    let with_session = format!("trailmark_session={session}");
    let page = |addr| http(addr, "GET", "/ui/", &[("Cookie", &with_session)], b"").unwrap();
    assert_eq!(page(server.addr).status, 200);
    server.kill();
    drop(server);

    let server = Server::start(&data, &config, "warn");
    let home = page(server.addr);
    assert_eq!(home.status, 200, "{}", home.head);
    // Nor does an unknown cookie get in.
    let stranger = http(
        server.addr,
        "GET",
        "/ui/",
        &[("Cookie", &format!("trailmark_session={}", "0".repeat(64)))],
        b"",
    )
    .unwrap();
    assert_eq!(stranger.status, 303, "{}", stranger.head);
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = config(tmp.path());
    let payloads = Arc::new(payloads());
    let mut server = Server::start(&data, &config, "info");
    let addr = server.addr;

    // A fresh data directory gets a person to sign in to the web UI as: `admin`, whose random
    // password is kept beside the admin token, readable by the owner only, never printed.
    let line = server.wait_for_line("sign in at http://");
    assert!(line.contains("/ui/ as `admin`"), "{line}");
    let password = std::fs::read_to_string(data.join("admin.password")).unwrap();
    assert_eq!(password.trim().len(), 24);
    assert!(
        !server.seen.iter().any(|l| l.contains(password.trim())),
        "password printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("admin.password"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let login = http(addr, "GET", "/ui/login", &[], b"").unwrap();
    assert_eq!(login.status, 200);
    assert!(String::from_utf8_lossy(&login.body).contains("Sign in to Trailmark"));

    // A request the server is in the middle of: its handler is reading the body (hyper sends
    // `100 Continue` only when the handler first polls the body), whose last bytes are held back.
    let p = &payloads[1];
    let mut held = connect(addr).unwrap();
    let head = request_head(
        "POST",
        "/hooks/github",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", p.event),
            ("X-GitHub-Delivery", "in-flight-1"),
            ("X-Hub-Signature-256", &p.signature),
            ("Expect", "100-continue"),
        ],
        p.body.len(),
    );
    held.write_all(head.as_bytes()).unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        held.read_exact(&mut byte).unwrap();
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    let (first, last) = p.body.split_at(p.body.len() - 10);
    held.write_all(first).unwrap();

    // Sustained ingest from other clients, then SIGTERM while they are sending.
    let pid = server.pid();
    let outcome = ingest_until(addr, &payloads, "term", 3, 100, || {
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {pid}");
    });
    server.wait_for_line("shutting down");
    // Draining: the listener is closed, so new connections are refused...
    let mut refused = false;
    for _ in 0..2000 {
        if connect(addr).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(refused, "the listener still accepts after SIGTERM");
    // ...but the request already in flight completes, durably.
    held.write_all(last).unwrap();
    let r = read_response(&mut held).expect("the request in flight at SIGTERM is answered");
    assert_eq!(r.status, 201, "{:?}", r);
    let v = r.json();
    assert_eq!(v["appended"], 2, "{v}");

    let status = server.wait();
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    server.wait_for_line("Trailmark stopped");
    assert!(outcome.unexpected.is_empty(), "{:#?}", outcome.unexpected);
    verify_ok(&data, "after SIGTERM");
    let mut acked = outcome.acked;
    let indices = v["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    acked.insert("in-flight-1".into(), indices);
    let mut sent = outcome.sent;
    sent.insert("in-flight-1".into());
    check_log(&data, &acked, &sent, "after SIGTERM");
}

/// A fresh PostgreSQL database for one test, dropped afterwards. PostgreSQL must be up
/// (`.ci/run` starts it): an unreachable server fails the test, it is never skipped.
struct PgDatabase {
    name: String,
}

impl PgDatabase {
    fn create(tag: &str) -> PgDatabase {
        let name = format!("trailmark_cli_{tag}_{}", std::process::id());
        let psql = |sql: &str| {
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
                .expect("psql runs (PostgreSQL client installed)");
            assert!(
                out.status.success(),
                "PostgreSQL at 127.0.0.1:5432 must be reachable: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        psql(&format!("DROP DATABASE IF EXISTS {name}"));
        psql(&format!("CREATE DATABASE {name}"));
        PgDatabase { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Two server processes on one PostgreSQL log, ingesting at the same time: one gapless,
/// duplicate-free log that verifies, every acknowledged delivery present where it was
/// acknowledged, and idempotency that holds across instances.
#[test]
fn two_servers_on_one_postgres_log_ingest_concurrently() {
    let db = PgDatabase::create("two");
    let url = db.url();
    let env = [("TRAILMARK_DATABASE_URL", url.as_str())];
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let init = cli_with(&data, &["init", "--origin", "test.example/scale"], &env);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let config = config(tmp.path());
    let a = Server::start_with(&data, &config, "warn", &env);
    let b = Server::start_with(&data, &config, "warn", &env);
    let payloads = Arc::new(payloads());

    let (pa, pb) = (payloads.clone(), payloads.clone());
    let (addr_a, addr_b) = (a.addr, b.addr);
    let ta = std::thread::spawn(move || ingest_until(addr_a, &pa, "a", 4, 150, || {}));
    let tb = std::thread::spawn(move || ingest_until(addr_b, &pb, "b", 4, 150, || {}));
    let (oa, ob) = (ta.join().unwrap(), tb.join().unwrap());
    assert!(oa.unexpected.is_empty(), "{:?}", oa.unexpected);
    assert!(ob.unexpected.is_empty(), "{:?}", ob.unexpected);

    let mut acked = oa.acked.clone();
    acked.extend(ob.acked.clone());
    let mut sent = oa.sent.clone();
    sent.extend(ob.sent.clone());
    // No index was handed out twice.
    let mut all: Vec<u64> = acked.values().flatten().copied().collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "an index was acknowledged for two deliveries");

    // Each instance recognises the other's deliveries as duplicates, at the same indices.
    resend_all(addr_b, &payloads, &oa.acked);
    resend_all(addr_a, &payloads, &ob.acked);
    check_log_with(&data, &acked, &sent, "two instances", &env);
    // Access state is shared too: a token made by the CLI works on both instances at once,
    // and its revocation takes effect on both.
    let ok = |args: &[&str]| {
        let out = cli_with(&data, args, &env);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&["org", "create", "default"]);
    let token = ok(&[
        "token", "create", "--name", "t", "--role", "auditor", "--scope", "default",
    ]);
    let bearer = format!("Bearer {}", token.trim());
    let whoami = |addr| {
        http(
            addr,
            "GET",
            "/api/v1/whoami",
            &[("authorization", bearer.as_str())],
            b"",
        )
        .unwrap()
        .status
    };
    assert_eq!((whoami(addr_a), whoami(addr_b)), (200, 200));
    let id = token.trim().split('_').nth(1).unwrap().to_owned();
    ok(&["token", "revoke", &id]);
    assert_eq!((whoami(addr_a), whoami(addr_b)), (401, 401));

    // Gapless, every leaf and checkpoint consistent, whoever signed it.
    verify_ok_with(&data, "two instances", &env);
    drop((a, b));
}

/// `trailmark migrate` moves an embedded store into PostgreSQL verbatim: the same checkpoints
/// and roots, raw inputs and large payloads included, and the copy verifies and serves.
#[test]
fn migrate_moves_an_embedded_store_to_postgres_with_the_same_roots() {
    let db = PgDatabase::create("migrate");
    let url = db.url();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = cli_with(&data, args, env);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["init", "--origin", "test.example/migrate"], &[]);
    // Several batches (several checkpoints), a raw input, and a payload large enough to be a blob.
    let push = Path::new(FIXTURES).join("ingest/github/push/payload.json");
    run(
        &[
            "ingest",
            push.to_str().unwrap(),
            "--format",
            "github",
            "--event",
            "push",
        ],
        &[],
    );
    let big = format!(
        r#"{{"kind":"custom.note","subjects":[{{"type":"ticket","id":"BIG-1"}}],"payload":{{"text":"{}"}}}}"#,
        "x".repeat(40_000)
    );
    let file = tmp.path().join("big.json");
    std::fs::write(&file, big).unwrap();
    run(&["record", file.to_str().unwrap()], &[]);
    for i in 0..3 {
        let f = tmp.path().join(format!("n{i}.json"));
        std::fs::write(
            &f,
            format!(r#"{{"kind":"custom.note","subjects":[{{"type":"ticket","id":"N-{i}"}}]}}"#),
        )
        .unwrap();
        run(&["record", f.to_str().unwrap()], &[]);
    }
    let before = run(&["checkpoint"], &[]);

    let out = run(&["migrate", "--to", &url], &[]);
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(summary["checkpoints"].as_u64().unwrap() >= 5, "{summary}");

    let env = [("TRAILMARK_DATABASE_URL", url.as_str())];
    assert_eq!(
        run(&["checkpoint"], &env),
        before,
        "the same signed checkpoint"
    );
    verify_ok_with(&data, "after migrate", &env);
    let sqlite_log = run(&["log"], &[]);
    assert_eq!(run(&["log"], &env), sqlite_log, "the same records");
    let digest = format!("sha256:{}", {
        use sha2::Digest as _;
        hex::encode(Sha256::digest(std::fs::read(&push).unwrap()))
    });
    assert_eq!(
        run(&["blob", &digest], &env).into_bytes(),
        std::fs::read(&push).unwrap()
    );

    // A second migration into the same database is refused and changes nothing.
    let again = cli_with(&data, &["migrate", "--to", &url], &[]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(run(&["checkpoint"], &env), before);
}
