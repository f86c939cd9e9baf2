//! GitHub webhook parsing. Run: `cargo bench -p trailmark-ingest --bench github` (see
//! BENCHMARKS.md). Every GitHub payload in the shared fixtures, parsed into records as the
//! webhook endpoint parses a delivery (the event named, as `X-GitHub-Event` names it).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trailmark_ingest::{Context, github};

/// The `trailmark` binary's allocator: parsing is mostly allocation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `(event, body)` of every GitHub fixture: the event is the fixture's directory name.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/ingest/github");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let event = dir.file_name().unwrap().to_str().unwrap().to_owned();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|x| x == "json") {
                out.push((event.clone(), std::fs::read(&f).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn parse(c: &mut Criterion) {
    let bodies = fixtures();
    let contexts: Vec<Context> = bodies
        .iter()
        .map(|(event, _)| Context {
            event: Some(event.clone()),
            ..Context::default()
        })
        .collect();
    // Every fixture is a delivery the endpoint accepts.
    for ((_, body), ctx) in bodies.iter().zip(&contexts) {
        github::parse(body, ctx).unwrap();
    }
    let mut g = c.benchmark_group("github");
    g.throughput(Throughput::Elements(bodies.len() as u64));
    g.bench_function(format!("parse/{}_bodies", bodies.len()), |b| {
        b.iter(|| {
            for ((_, body), ctx) in bodies.iter().zip(&contexts) {
                black_box(github::parse(body, ctx).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
