//! Dossier benchmarks. Run: `cargo bench -p trailmark-dossier --bench dossier` (BENCHMARKS.md).
//!
//! A release of N/3 commits; each commit has a git commit record, a JUnit-shaped test report and
//! a SARIF-shaped scan (three evidence records), all linked to one ticket with an approved
//! transition; one approval. The dossier then carries ≈ N records.
//! - `build/N`: export the dossier (collect, view, export record, N inclusion proofs).
//! - `verify/N`: verify the exported dossier offline (proofs, leaves, manifest, view rebuilt),
//!   back to back.
//! - `verify_once/N`: the same, each verification from an idle start (see below).
//! - `explain/N`: the five questions for the release.
//! - `parse_value/N`: a yardstick for the machine, not a check: parsing the dossier's bytes into
//!   a `serde_json::Value`, the least any verifier of the file does (`verify/N` does it, decodes
//!   every leaf within, proves each and rebuilds the view).
//!
//! Settings (environment): `TRAILMARK_BENCH_DOSSIER_SIZES` (`1000,10000`), and
//! `TRAILMARK_BENCH_DOSSIER_SAVE=DIR` to also write each size's dossier and verifier key to
//! `DIR/dossier-N.json` and `DIR/dossier-N.vkey`, for a profiler or a loop outside criterion
//! (`trailmark-verify-dossier DIR/dossier-10000.json --vkey DIR/dossier-10000.vkey`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use trailmark_dossier::{BuildOptions, build, explain, verify};
use trailmark_ingest::identity::IdentityMap;
use trailmark_log::SignerKey;
use trailmark_model::input::from_value;
use trailmark_policy::{Actor, Governance, Policy};
use trailmark_store::{SqliteStore, Store};

/// The `trailmark` binary's allocator, so the figures are what the CLI does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POLICY: &str = "name = \"default\"\n[approvals.release]\nroles = [\"approver\"]\n[tickets]\napproved_states = [\"Done\"]\n[gates.production]\nchecks = [\"commits_have_tickets\", \"tickets_approved\", \"tests_pass\", \"scans_clean\", \"approvals\"]\n";

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    signer: SignerKey,
    people: IdentityMap,
    release: String,
}

fn fixture(records: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let signer = SignerKey::from_seed("bench.example/log", [4u8; 32]).unwrap();
    let store = SqliteStore::create(
        &dir.path().join("log.db"),
        "bench.example/log",
        signer.clone(),
    )
    .unwrap();
    let people = IdentityMap::default();
    let (_, pjson) = Policy::from_toml(POLICY, &|_| Err("none".into())).unwrap();
    let g = Governance::new(&store, &people);
    g.apply_policy(&pjson, "person:rm").unwrap();
    let commits = records / 3;
    let mut batch = vec![from_value(&json!({"kind": "jira.transition", "subjects": [{"type": "ticket", "id": "PAY-1"}], "payload": {"to": "Done", "from": "In Progress"}})).unwrap()];
    let mut shas = Vec::new();
    for i in 0..commits {
        let sha = format!("{:040x}", i + 1);
        batch.push(from_value(&json!({"kind": "git.commit", "subjects": [{"type": "commit", "id": sha}],
            "links": [{"rel": "in_repo", "to": {"type": "repo", "id": "github.com/acme/pay"}}, {"rel": "references", "to": {"type": "ticket", "id": "PAY-1"}}],
            "payload": {"author": {"email": format!("dev{}@acme.example", i % 7)}, "committer": {"email": "ci@acme.example"}, "message": format!("PAY-1 change {i}")}})).unwrap());
        batch.push(from_value(&json!({"kind": "test.report", "subjects": [{"type": "commit", "id": sha}], "links": [{"rel": "tests", "to": {"type": "commit", "id": sha}}],
            "payload": {"name": "unit", "totals": {"tests": 120, "passed": 120, "failures": 0, "errors": 0, "skipped": 0, "flaky": 0}, "cases": []}})).unwrap());
        batch.push(from_value(&json!({"kind": "scan.sarif", "subjects": [{"type": "commit", "id": sha}], "links": [{"rel": "scans", "to": {"type": "commit", "id": sha}}],
            "payload": {"tool": {"name": "scanner"}, "results": [{"rule_id": "R1", "level": "note"}]}})).unwrap());
        shas.push(("commit".to_owned(), sha));
    }
    for chunk in batch.chunks(1000) {
        store.append(chunk.to_vec()).unwrap();
    }
    let (release, _) = g
        .create_release(
            "acme/pay",
            "pay",
            "1.0",
            &["production".into()],
            None,
            "person:rm",
        )
        .unwrap();
    g.link(&release, &shas, &[], "explicit", "person:rm")
        .unwrap();
    g.decide_release(
        &release,
        &Actor {
            identity: "person:alice".into(),
            roles: vec!["approver".into()],
        },
        true,
        None,
        None,
    )
    .unwrap();
    g.gate(&release, "production", None).unwrap();
    Fixture {
        _dir: dir,
        store,
        signer,
        people,
        release,
    }
}

fn benches(c: &mut Criterion) {
    let sizes: Vec<usize> = std::env::var("TRAILMARK_BENCH_DOSSIER_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]);
    let mut group = c.benchmark_group("dossier");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for n in sizes {
        let f = fixture(n);
        let opts = BuildOptions {
            raw_inputs: false,
            actor: "bench".into(),
            ..BuildOptions::default()
        };
        let d = build(&f.store, &f.people, "default", &f.release, &opts).unwrap();
        eprintln!("dossier/{n}: {} records carried", d.records.len());
        let bytes = serde_json::to_vec(&d).unwrap();
        if let Ok(dir) = std::env::var("TRAILMARK_BENCH_DOSSIER_SAVE") {
            // For harnesses outside criterion (a verification loop, a profiler, `trailmark
            // dossier verify`): the exact bytes measured here, and the key that verifies them.
            std::fs::write(format!("{dir}/dossier-{n}.json"), &bytes).unwrap();
            std::fs::write(
                format!("{dir}/dossier-{n}.vkey"),
                f.signer.verifier().to_string(),
            )
            .unwrap();
        }
        let key = f.signer.verifier();
        assert!(verify::verify(&bytes, &key).unwrap().ok());
        group.bench_function(format!("build/{n}"), |b| {
            b.iter(|| black_box(build(&f.store, &f.people, "default", &f.release, &opts).unwrap()))
        });
        group.bench_function(format!("verify/{n}"), |b| {
            b.iter(|| black_box(verify::verify(&bytes, &key).unwrap()))
        });
        // One verification as an auditor runs it: from an idle start. `verify` leaves freeing
        // the decoded records to rayon's pool after it answers; back to back (above), that
        // cleanup of one verification runs beside the next and is counted in it. Here each
        // timed verification starts once the previous one's cleanup has had time to finish
        // (the pause is not timed).
        group.bench_function(format!("verify_once/{n}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    std::thread::sleep(Duration::from_millis(40));
                    let t = std::time::Instant::now();
                    black_box(verify::verify(&bytes, &key).unwrap());
                    total += t.elapsed();
                }
                total
            })
        });
        group.bench_function(format!("parse_value/{n}"), |b| {
            b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()))
        });
        group.bench_function(format!("explain/{n}"), |b| {
            b.iter(|| black_box(explain(&f.store, &f.people, "default", &f.release).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(dossier, benches);
criterion_main!(dossier);
