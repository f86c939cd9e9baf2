//! End-to-end tests of the `trailmark` binary, run as a user would run it.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_trailmark");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

#[path = "cli/access.rs"]
mod access;
#[path = "cli/governance.rs"]
mod governance;
#[path = "cli/serve.rs"]
mod serve;

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        Env { _tmp: tmp, dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None)
    }

    fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self._tmp.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn init(&self) -> String {
        self.ok(&["init", "--origin", "test.example/log"])
            .trim()
            .to_owned()
    }

    /// Records in the log, from the signed checkpoint (0 when there is none yet).
    fn size(&self) -> usize {
        let out = self.run(&["checkpoint"]);
        if !out.status.success() {
            return 0;
        }
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command exited with `want` and its stderr says each of `texts`.
fn exits_with(out: &Output, want: i32, texts: &[&str]) {
    let err = stderr(out);
    assert_eq!(code(out), want, "{err}");
    for t in texts {
        assert!(err.contains(t), "stderr does not say {t:?}: {err}");
    }
}

const NOTE: &str = r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"PROJ-1"}],"payload":{"text":"hello"}}"#;

#[test]
fn init_prints_the_verifier_key_and_refuses_to_run_twice() {
    let env = Env::new();
    let vkey = env.init();
    assert!(vkey.starts_with("test.example/log+"), "{vkey}");
    trailmark_log::VerifierKey::parse(&vkey).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.dir.join("signing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the signing key is private");
    }
    let again = env.run(&["init"]);
    assert_eq!(code(&again), 2);
    assert!(stderr(&again).contains("refusing to re-initialise"));
}

#[test]
fn record_prints_index_and_leaf_hash_and_accepts_json_lines_from_stdin() {
    let env = Env::new();
    env.init();
    let file = env.file("one.json", NOTE);
    let out = env.ok(&["record", file.to_str().unwrap()]);
    let (idx, hash) = out.trim().split_once('\t').unwrap();
    assert_eq!(idx, "0");
    assert_eq!(hash.len(), 64);
    // The printed leaf hash is the hash of the stored leaf bytes.
    let leaf = env.run(&["show", "--index", "0", "--leaf"]).stdout;
    assert_eq!(trailmark_log::leaf_hash(&leaf).to_hex(), hash);

    let lines = format!("{NOTE}\n{NOTE}\n");
    let out = env.run_stdin(&["record", "-", "--format", "json"], Some(&lines));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v[0]["index"], 1);
    assert_eq!(v[1]["index"], 2);
    assert_eq!(env.size(), 3);
}

#[test]
fn bad_input_exits_2_names_the_problem_and_stores_nothing() {
    let env = Env::new();
    env.init();
    env.ok(&["record", env.file("ok.json", NOTE).to_str().unwrap()]);
    let cases: &[(&str, &str)] = &[
        ("{\"kind\": ", "invalid JSON"),
        (
            r#"{"subjects":[{"type":"ticket","id":"P-1"}]}"#,
            "missing required field `kind`",
        ),
        (
            r#"{"kind":"custom.note","subjects":[]}"#,
            "at least one subject",
        ),
        (
            r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P"}],"payload":{"x":1.5}}"#,
            "floating-point",
        ),
        // One bad line among good ones: nothing of the file is stored.
        (
            &format!("{NOTE}\n{NOTE}\n{{\"kind\":\"custom.note\"}}\n"),
            "line 3: missing required field `subjects`",
        ),
        ("", "input is empty"),
        // Governance records come only from the commands that enforce their rules.
        (
            &format!(
                "{NOTE}\n{}\n",
                r#"{"kind":"identity.map","subjects":[{"type":"identity_map","id":"people"}],"payload":{}}"#
            ),
            "record 2: kind identity.map is written by trailmark's own commands",
        ),
        (
            r#"{"kind":"approval.decided","subjects":[{"type":"release","id":"a/b/c@1"}]}"#,
            "kind approval.decided is written by trailmark's own commands",
        ),
    ];
    for (i, (content, message)) in cases.iter().enumerate() {
        let f = env.file(&format!("bad{i}.json"), content);
        let out = env.run(&["record", f.to_str().unwrap()]);
        assert_eq!(code(&out), 2, "case {i}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(message),
            "case {i}: expected {message:?} in {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("nothing was recorded") || content.is_empty(),
            "{}",
            stderr(&out)
        );
    }
    let missing = env.run(&["record", "/nonexistent/file.json"]);
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("cannot read /nonexistent/file.json"));
    let flag = env.run(&["record", "--bogus", "x"]);
    assert_eq!(code(&flag), 2);
    assert!(stderr(&flag).contains("--bogus"));
    assert_eq!(env.size(), 1, "the log is unchanged");
    assert!(env.ok(&["verify"]).starts_with("ok: 1 records"));
    // No store at all is a usage problem, clearly said.
    let nowhere = Env::new();
    let out = nowhere.run(&["log"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("trailmark init"));
}

#[test]
fn log_filters_by_kind_subject_and_time() {
    let env = Env::new();
    env.init();
    let recs = [
        r#"{"kind":"custom.a","subjects":[{"type":"ticket","id":"A-1"}]}"#,
        r#"{"kind":"custom.b","subjects":[{"type":"ticket","id":"A-1"}]}"#,
        r#"{"kind":"custom.a","subjects":[{"type":"ticket","id":"B-2"}]}"#,
    ];
    env.ok(&[
        "record",
        env.file("r.jsonl", &recs.join("\n")).to_str().unwrap(),
    ]);
    let indices = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["log"];
        a.extend_from_slice(args);
        env.ok(&a)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["index"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(indices(&[]), vec![0, 1, 2]);
    assert_eq!(indices(&["--kind", "custom.a"]), vec![0, 2]);
    assert_eq!(indices(&["--subject", "ticket:A-1"]), vec![0, 1]);
    assert_eq!(
        indices(&["--subject", "ticket:A-1", "--kind", "custom.b"]),
        vec![1]
    );
    assert_eq!(
        indices(&[
            "--since",
            "2000-01-01T00:00:00Z",
            "--until",
            "2000-01-02T00:00:00Z"
        ]),
        Vec::<u64>::new()
    );
    assert_eq!(
        indices(&["--since", "2000-01-01T00:00:00Z", "--limit", "2"]),
        vec![0, 1]
    );
    assert_eq!(indices(&["--after", "0"]), vec![1, 2]);
    let bad = env.run(&["log", "--subject", "PROJ-1"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("TYPE:ID"));
    assert_eq!(code(&env.run(&["log", "--since", "yesterday"])), 2);
}

#[test]
fn proofs_verify_offline_and_tampered_proofs_fail() {
    let env = Env::new();
    let vkey = env.init();
    for _ in 0..3 {
        env.ok(&[
            "record",
            env.file("n.jsonl", &format!("{NOTE}\n{NOTE}\n{NOTE}\n"))
                .to_str()
                .unwrap(),
        ]);
    }
    let proof = env.ok(&["proof", "inclusion", "--index", "4"]);
    assert!(
        proof.starts_with("c2sp.org/tlog-proof@v1\nindex 4\n"),
        "{proof}"
    );
    let proof_file = env.file("p.txt", &proof);
    let leaf = env.file("leaf.bin", "");
    std::fs::write(&leaf, env.run(&["show", "--index", "4", "--leaf"]).stdout).unwrap();
    let ok = env.run(&[
        "verify-proof",
        proof_file.to_str().unwrap(),
        "--vkey",
        &vkey,
        "--leaf",
        leaf.to_str().unwrap(),
    ]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    // The wrong leaf fails with exit 1.
    let other = env.file("other.bin", "not the leaf");
    let bad = env.run(&[
        "verify-proof",
        proof_file.to_str().unwrap(),
        "--vkey",
        &vkey,
        "--leaf",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code(&bad), 1);
    // A proof at an older checkpoint size also verifies.
    let old = env.ok(&[
        "proof",
        "inclusion",
        "--index",
        "1",
        "--size",
        "3",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&old).unwrap();
    assert_eq!(v["size"], 3);
    let hash = v["leaf_hash"].as_str().unwrap().to_owned();
    let text = env.ok(&["proof", "inclusion", "--index", "1", "--size", "3"]);
    let f = env.file("p1.txt", &text);
    assert_eq!(
        code(&env.run(&[
            "verify-proof",
            f.to_str().unwrap(),
            "--vkey",
            &vkey,
            "--leaf-hash",
            &hash
        ])),
        0
    );
    // Altering one proof hash breaks it.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let h = trailmark_log::Hash::from_base64(&lines[2]).unwrap();
    let mut bytes = h.0;
    bytes[0] ^= 1;
    lines[2] = trailmark_log::Hash(bytes).to_base64();
    let f = env.file("p2.txt", &(lines.join("\n") + "\n"));
    assert_eq!(
        code(&env.run(&[
            "verify-proof",
            f.to_str().unwrap(),
            "--vkey",
            &vkey,
            "--leaf-hash",
            &hash
        ])),
        1
    );
    // No such size, no such index: exit 2.
    assert_eq!(
        code(&env.run(&["proof", "inclusion", "--index", "1", "--size", "4"])),
        2
    );
    assert_eq!(code(&env.run(&["proof", "inclusion", "--index", "9"])), 2);
}

#[test]
fn consistency_proof_json_matches_the_shared_vector_shape_and_verifies() {
    let env = Env::new();
    env.init();
    for n in [2, 5, 1] {
        let body: String = (0..n).map(|_| format!("{NOTE}\n")).collect();
        env.ok(&["record", env.file("n.jsonl", &body).to_str().unwrap()]);
    }
    let out = env.ok(&["proof", "consistency", "--from", "2", "--to", "8"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let h = |k: &str| trailmark_log::Hash::from_base64(v[k].as_str().unwrap()).unwrap();
    let proof: Vec<_> = v["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| trailmark_log::Hash::from_base64(p.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        (v["size1"].as_u64(), v["size2"].as_u64()),
        (Some(2), Some(8))
    );
    trailmark_log::verify_consistency(2, 8, &h("root1"), &h("root2"), &proof).unwrap();
    // root2 is the signed root of the latest checkpoint.
    let cp = env.ok(&["checkpoint"]);
    assert_eq!(cp.lines().nth(2).unwrap(), v["root2"].as_str().unwrap());
    assert_eq!(
        code(&env.run(&["proof", "consistency", "--from", "0", "--to", "8"])),
        2
    );
    assert_eq!(
        code(&env.run(&["proof", "consistency", "--from", "3", "--to", "99"])),
        2
    );
}

/// A log of six notes, one record per append.
fn six_notes() -> Env {
    let env = Env::new();
    env.init();
    for _ in 0..6 {
        env.ok(&["record", env.file("n.json", NOTE).to_str().unwrap()]);
    }
    env
}

#[test]
fn verify_names_the_first_altered_record() {
    let env = six_notes();
    assert!(
        env.ok(&["verify"])
            .starts_with("ok: 6 records, 6 checkpoints")
    );
    let db = env.dir.join("trailmark.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "DROP TRIGGER records_no_update;
         UPDATE records SET leaf = CAST(replace(CAST(leaf AS TEXT), 'hello', 'HELLO') AS BLOB) WHERE idx = 4;",
    )
    .unwrap();
    drop(c);
    let out = env.run(&["verify"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("first bad index 4"),
        "{}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL: record 4 was altered"));
}

/// A log changed behind Trailmark's back fails as a verification (exit 1) whichever command
/// finds it, not as a storage error (exit 3) that a script might retry; appending to it is
/// refused and stores nothing.
#[test]
fn a_damaged_log_is_exit_1_whichever_command_finds_it() {
    let env = six_notes();
    let db = env.dir.join("trailmark.db");
    let tamper = |sql: &str| {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(sql).unwrap();
    };
    tamper("DROP TRIGGER records_no_delete; DELETE FROM records WHERE idx = 2;");

    for args in [
        &["show", "--index", "2"][..],
        &["log", "--subject", "ticket:PROJ-1"],
        &["verify"],
    ] {
        let out = env.run(args);
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("verification failed") || args == ["verify"],
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = env.run(&["show", "--index", "2"]);
    assert!(
        stderr(&out).contains("stored record 2 is corrupt"),
        "{}",
        stderr(&out)
    );
    // Records that are there still read.
    env.ok(&["show", "--index", "3"]);

    // The last record removed: the records end short of the signed checkpoint.
    tamper("DELETE FROM records WHERE idx = 5;");
    let out = env.run(&["record", env.file("n.json", NOTE).to_str().unwrap()]);
    exits_with(
        &out,
        1,
        &["the stored log is damaged", "refusing to append"],
    );
    assert_eq!(env.size(), 6, "nothing was appended");
}

#[test]
fn verify_checkpoint_accepts_any_c2sp_checkpoint() {
    let env = Env::new();
    let vkey = "astra+cad5a3d2+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b";
    let cp = Path::new(FIXTURES).join("checkpoints/serverless-log/checkpoint.15");
    let out = env.run(&[
        "verify-checkpoint",
        cp.to_str().unwrap(),
        "--vkey",
        vkey,
        "--origin",
        "example.com/testdata",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("size 15"));
    // Wrong origin, and a key that did not sign it: exit 1.
    assert_eq!(
        code(&env.run(&[
            "verify-checkpoint",
            cp.to_str().unwrap(),
            "--vkey",
            vkey,
            "--origin",
            "other"
        ])),
        1
    );
    let ours = Env::new();
    let our_key = ours.init();
    assert_eq!(
        code(&env.run(&[
            "verify-checkpoint",
            cp.to_str().unwrap(),
            "--vkey",
            &our_key
        ])),
        1
    );
    // A malformed key is bad input.
    assert_eq!(
        code(&env.run(&[
            "verify-checkpoint",
            cp.to_str().unwrap(),
            "--vkey",
            "nonsense"
        ])),
        2
    );
    // Our own checkpoints verify with our key through the same command.
    ours.ok(&["record", ours.file("n.json", NOTE).to_str().unwrap()]);
    let f = ours.file("cp.txt", &ours.ok(&["checkpoint"]));
    assert_eq!(
        code(&ours.run(&["verify-checkpoint", f.to_str().unwrap(), "--vkey", &our_key])),
        0
    );
}

#[test]
fn quickstart_is_repeatable() {
    let env = Env::new();
    let first = env.ok(&["quickstart"]);
    assert!(first.contains("signed checkpoint:"));
    assert!(first.contains("ok: 4 records"), "{first}");
    let second = env.ok(&["quickstart"]);
    assert!(
        second.contains("\tduplicate"),
        "idempotency keys make the samples append once"
    );
    assert!(second.contains("ok: 4 records"));
}

#[test]
fn killed_writers_never_lose_acknowledged_records() {
    // kill -9 a `trailmark record` import mid-flight, repeatedly: whatever it acknowledged
    // (printed) is present afterwards, and the log verifies.
    let env = Env::new();
    env.init();
    let body: String = (0..40_000).map(|i| format!(
        "{{\"kind\":\"custom.note\",\"subjects\":[{{\"type\":\"ticket\",\"id\":\"K-{i}\"}}],\"idempotency_key\":\"kill-{i}\"}}\n"
    )).collect();
    let file = env.file("big.jsonl", &body);
    let mut acknowledged = 0usize;
    for round in 0..3 {
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(&env.dir)
            .args(["record", file.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first newly acknowledged record, then kill while more are in flight.
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        loop {
            let mut line = String::new();
            if std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() == 0 {
                break;
            }
            first.push_str(&line);
            if !line.contains("duplicate") {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Everything printed before the kill was acknowledged (printed only once durable).
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let printed = first
            .lines()
            .chain(rest.lines())
            .filter(|l| !l.contains("duplicate"))
            .count();
        eprintln!("round {round}: {printed} new records acknowledged before the kill");
        acknowledged += printed;
        let v = env.ok(&["verify"]);
        assert!(v.starts_with("ok: "), "{v}");
        assert!(
            env.size() >= acknowledged,
            "round {round}: acknowledged records lost"
        );
    }
    assert!(
        acknowledged > 0,
        "the kill came after at least one acknowledgement"
    );
    let present = env.size();
    assert!(
        present >= acknowledged,
        "{present} present < {acknowledged} acknowledged"
    );
    // Finishing the import afterwards appends exactly the rest (idempotency keys).
    env.ok(&["record", file.to_str().unwrap()]);
    assert_eq!(
        env.ok(&["log", "--limit", "100000"]).lines().count(),
        40_000
    );
    assert!(env.ok(&["verify"]).starts_with("ok: 40000 records"));
}

#[test]
fn ingest_keeps_the_raw_input_is_idempotent_and_refuses_bad_files_whole() {
    let env = Env::new();
    env.init();
    let fixture = Path::new(FIXTURES).join("ingest/github/pull_request/opened.payload.json");
    let f = fixture.to_str().unwrap();
    let out = env.run(&["ingest", f, "--event", "pull_request"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(stderr(&out).contains("github"), "{}", stderr(&out));
    let n = first.lines().count();
    assert!(n >= 1);
    // The records cite the raw input, and the raw input is stored byte for byte.
    let rec: serde_json::Value = serde_json::from_str(
        env.ok(&["log", "--kind", "github.pull_request"])
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let digest = rec["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "derived_from")
        .unwrap()["to"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let raw = env.run(&["blob", &digest]).stdout;
    assert_eq!(raw, std::fs::read(&fixture).unwrap());
    // Ingesting the same delivery again appends nothing.
    let again = env.ok(&["ingest", f, "--event", "pull_request"]);
    assert_eq!(
        again.lines().filter(|l| l.ends_with("duplicate")).count(),
        n
    );
    assert_eq!(env.size(), n);
    // A refused file stores nothing, even beside a good one, and the exit code says so.
    let empty = env.file("empty.json", "");
    let truncated = env.file("trunc.json", "{\"repository\": {");
    let push = Path::new(FIXTURES).join("ingest/github/push/payload.json");
    let out = env.run(&[
        "ingest",
        empty.to_str().unwrap(),
        truncated.to_str().unwrap(),
        push.to_str().unwrap(),
        "--format",
        "github",
        "--event",
        "push",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the input is empty"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("invalid JSON"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 of 3 files were refused"),
        "{}",
        stderr(&out)
    );
    assert!(env.size() > n, "the good file was still ingested");
    assert_eq!(code(&env.run(&["ingest", f, "--format", "nope"])), 2);
    assert!(env.ok(&["verify"]).starts_with("ok: "));
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Dev",
            "-c",
            "user.email=dev@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2026-11-20T10:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-11-20T10:00:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn git_import_records_commits_links_tickets_and_is_incremental() {
    let env = Env::new();
    env.init();
    let repo = env._tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "git@github.com:acme/payments.git",
        ],
    );
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "PAY-1: first"],
    );
    git(&repo, &["checkout", "-q", "-b", "feature/PAY-2-retry"]);
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "retry captures"],
    );
    git(&repo, &["checkout", "-q", "main"]);
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "hotfix, see OPS-9"],
    );
    git(
        &repo,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge PAY-2",
            "feature/PAY-2-retry",
        ],
    );
    let out = env.ok(&["import", "git", repo.to_str().unwrap()]);
    assert_eq!(
        out.trim(),
        "github.com/acme/payments: 4 commits read, 4 new recorded, 0 already present"
    );
    let records: Vec<serde_json::Value> = env
        .ok(&["log", "--kind", "git.commit"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4);
    // Oldest first; the root commit has no parent and references PAY-1.
    let first = &records[0];
    assert_eq!(first["payload"]["message"], "PAY-1: first\n");
    assert_eq!(first["actor"], "email:dev@example.com");
    assert_eq!(first["occurred_at"], "2026-11-20T10:00:00Z");
    let links = |r: &serde_json::Value, rel: &str| -> Vec<String> {
        r["links"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|l| l["rel"] == rel)
                    .map(|l| l["to"]["id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(links(first, "references"), vec!["PAY-1"]);
    assert!(links(first, "parent").is_empty());
    let merge = records
        .iter()
        .find(|r| r["payload"]["merge"] == true)
        .unwrap();
    assert_eq!(links(merge, "parent").len(), 2);
    // The feature branch tip links to the ticket in its branch name.
    let tip = records
        .iter()
        .find(|r| r["payload"]["message"] == "retry captures\n")
        .unwrap();
    assert_eq!(links(tip, "references"), vec!["PAY-2"]);
    assert_eq!(links(tip, "in_repo"), vec!["github.com/acme/payments"]);
    // Incremental: a new commit is the only thing appended on re-import.
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "PAY-3 next"],
    );
    let out = env.ok(&["import", "git", repo.to_str().unwrap()]);
    assert!(
        out.contains("5 commits read, 1 new recorded, 4 already present"),
        "{out}"
    );
    let out = env.ok(&["import", "git", repo.to_str().unwrap(), "--since", "HEAD~1"]);
    assert!(out.contains("1 commits read, 0 new recorded"), "{out}");
    // The graph of a ticket reaches its commits and, through parent links, their history.
    let g: serde_json::Value =
        serde_json::from_str(&env.ok(&["graph", "ticket:PAY-2", "--depth", "1"])).unwrap();
    let subjects: Vec<&str> = g["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        subjects.contains(&"repo:github.com/acme/payments"),
        "{subjects:?}"
    );
    assert!(
        g["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["payload"]["message"] == "retry captures\n")
    );
    assert_eq!(g["truncated"], false);
    assert_eq!(code(&env.run(&["graph", "PAY-2"])), 2);
    // A custom ticket pattern (here: GitHub-style issue numbers); a bad one is refused.
    let bad = env.run(&[
        "import",
        "git",
        repo.to_str().unwrap(),
        "--ticket-pattern",
        "(",
    ]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("ticket pattern"), "{}", stderr(&bad));
    // Bad input: not a repository, bad revision.
    let bad = env.run(&["import", "git", env._tmp.path().to_str().unwrap()]);
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("not a git repository"),
        "{}",
        stderr(&bad)
    );
    let bad = env.run(&["import", "git", repo.to_str().unwrap(), "--since", "nope"]);
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("does not name a commit"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn identity_resolution_uses_the_map_and_safe_matches_only() {
    let env = Env::new();
    let map = env.file("people.json", r#"{"people": [{"id": "alice", "identities": ["email:alice@example.com", "github:alice-dev", "jira:5b10a2844c20165700ede21g"]}]}"#);
    let out = env.ok(&[
        "identity",
        "--map",
        map.to_str().unwrap(),
        "email:123+alice-dev@users.noreply.github.com",
        "jira:5b10a2844c20165700ede21g",
        "email:mallory@example.com",
    ]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["person"], "alice");
    assert_eq!(rows[0]["match"], "noreply");
    assert_eq!(rows[1]["person"], "alice");
    assert_eq!(rows[2]["match"], "unmapped");
    let bad = env.file("bad.json", r#"{"people": [{"id": "a", "identities": ["github:x"]}, {"id": "b", "identities": ["github:X"]}]}"#);
    let out = env.run(&["identity", "--map", bad.to_str().unwrap(), "github:x"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("listed for both a and b"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        code(&env.run(&["identity", "--map", map.to_str().unwrap(), "Alice Smith"])),
        2
    );
}

/// The identity map is kept in the log: `people set` records a version with its actor (and
/// nothing when unchanged), `people show` lists them, resolution uses the version in force, a
/// legacy `people.json` in the data directory is recorded once and then never silently used,
/// and a bad map is refused with nothing stored.
#[test]
fn the_identity_map_is_recorded_in_the_log_and_versions_are_shown() {
    let env = Env::new();
    env.init();
    let show = |env: &Env| -> serde_json::Value {
        serde_json::from_str(&env.ok(&["people", "show"])).unwrap()
    };
    assert!(show(&env)["current"].is_null());
    assert_eq!(show(&env)["versions"].as_array().unwrap().len(), 0);

    // A data directory from before: its people.json becomes the first version.
    std::fs::write(
        env.dir.join("people.json"),
        r#"{"people": [{"id": "alice", "identities": ["github:alice-dev"]}]}"#,
    )
    .unwrap();
    let out = env.run(&["identity", "github:alice-dev"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("recorded"), "{}", stderr(&out));
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row["person"], "alice");
    let v = show(&env);
    assert_eq!(v["versions"][0]["actor"], "system:people.json");
    let size = env.size();

    // A new version, set by a named person; the same map again records nothing.
    let map = env.file(
        "map.json",
        r#"{"people": [{"id": "alice", "identities": ["github:alice-dev"]}, {"id": "bob", "identities": ["github:bobby", "email:bob@example.com"]}]}"#,
    );
    let set_map = || -> serde_json::Value {
        let args = [
            "people",
            "set",
            map.to_str().unwrap(),
            "--as",
            "person:admin",
        ];
        serde_json::from_str(&env.ok(&args)).unwrap()
    };
    let set = set_map();
    assert_eq!(set["recorded"], true);
    assert_eq!(set["record"], size as u64);
    assert_eq!(set_map()["recorded"], false);
    assert_eq!(env.size(), size + 1);
    let v = show(&env);
    let versions = v["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["actor"], "person:admin");
    assert_eq!(v["current"]["record"], set["record"]);
    assert_eq!(v["current"]["digest"], set["digest"]);
    let row: serde_json::Value =
        serde_json::from_str(&env.ok(&["identity", "email:BOB@example.com"])).unwrap();
    assert_eq!(row["person"], "bob");

    // The legacy file, edited now, is not used: the log's version stays in force, and the
    // edit is named.
    std::fs::write(
        env.dir.join("people.json"),
        r#"{"people": [{"id": "alice", "identities": ["github:alice-dev", "github:bobby"]}]}"#,
    )
    .unwrap();
    let out = env.run(&["identity", "github:bobby"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not used"), "{}", stderr(&out));
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row["person"], "bob");

    // A map naming one identity for two people is refused whole, nothing stored.
    let bad = env.file(
        "bad.json",
        r#"{"people": [{"id": "a", "identities": ["github:x"]}, {"id": "b", "identities": ["github:X"]}]}"#,
    );
    let out = env.run(&["people", "set", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("listed for both a and b"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.size(), size + 1);
}
