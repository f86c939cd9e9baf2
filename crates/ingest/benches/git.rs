//! Git import throughput. Run: `cargo bench -p trailmark-ingest --bench git` (see BENCHMARKS.md).
//! Builds a 50,000-commit repository with `git fast-import` (kept under target/ between runs) and
//! measures walking it into records: commit decode, ticket extraction, record validation.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trailmark_ingest::{TicketPattern, git};

const COMMITS: usize = 50_000;

fn repo() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../target/bench-data/git-{COMMITS}"));
    if dir.join(".git").exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    git(&["init", "-q", "-b", "main"]);
    let mut child = Command::new("git")
        .current_dir(&dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut s = String::new();
    for i in 1..=COMMITS {
        let msg = format!(
            "PAY-{}: change number {i}\n\nLonger description of the change {i}.\n",
            i % 500
        );
        s.push_str(&format!(
            "commit refs/heads/main\nmark :{i}\nauthor Dev {i} <dev{}@example.com> {} +0000\ncommitter Dev <dev@example.com> {} +0000\ndata {}\n{msg}",
            i % 50,
            1_700_000_000 + i,
            1_700_000_000 + i,
            msg.len()
        ));
        if i > 1 {
            s.push_str(&format!("from :{}\n", i - 1));
        }
        s.push_str(&format!(
            "M 644 inline f{}.txt\ndata 2\n{}\n\n",
            i % 100,
            i % 10
        ));
    }
    stdin.write_all(s.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    dir
}

fn import(c: &mut Criterion) {
    let dir = repo();
    let mut g = c.benchmark_group("git_import");
    g.sample_size(10)
        .throughput(Throughput::Elements(COMMITS as u64));
    g.bench_function("walk_to_records/50k", |b| {
        b.iter(|| {
            let r = git::import(&dir, None, &TicketPattern::default(), &mut |_| {}).unwrap();
            assert_eq!(r.records.len(), COMMITS);
        })
    });
    g.finish();
}

criterion_group!(benches, import);
criterion_main!(benches);
