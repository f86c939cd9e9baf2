//! Backend-independent behaviour every `Store` must show. Each test takes a fresh, empty store.

use std::sync::Arc;

use trailmark_log::{verify_checkpoint, verify_consistency, verify_inclusion};
use trailmark_model::{Digest, Kind, LogIndex, Payload, Subject, Timestamp, parse_record};
use trailmark_store::{Query, Store, verify_log};

use crate::common::{ORIGIN, keyed, note, notes};

/// Instantiates every conformance test for one backend. `$make` returns a fresh empty store
/// (and anything that must outlive it, e.g. a temp dir) as `(Arc<dyn Store>, guard)`.
#[macro_export]
macro_rules! backend_tests {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use $crate::conformance as c;
            #[test]
            fn appends_are_contiguous_and_checkpointed() {
                let (s, _g) = $make;
                c::appends_are_contiguous_and_checkpointed(&*s);
            }
            #[test]
            fn idempotency_keys_append_once() {
                let (s, _g) = $make;
                c::idempotency_keys_append_once(&*s);
            }
            #[test]
            fn concurrent_appends_stay_gapless() {
                let (s, _g) = $make;
                c::concurrent_appends_stay_gapless(s);
            }
            #[test]
            fn proofs_verify_against_checkpoints() {
                let (s, _g) = $make;
                c::proofs_verify_against_checkpoints(&*s);
            }
            #[test]
            fn queries_filter_and_paginate() {
                let (s, _g) = $make;
                c::queries_filter_and_paginate(&*s);
            }
            #[test]
            fn large_payloads_are_content_addressed() {
                let (s, _g) = $make;
                c::large_payloads_are_content_addressed(&*s);
            }
            #[test]
            fn bad_requests_are_refused() {
                let (s, _g) = $make;
                c::bad_requests_are_refused(&*s);
            }
            #[test]
            fn queued_appends_answer_as_blocking_ones_do() {
                let (s, _g) = $make;
                c::queued_appends_answer_as_blocking_ones_do(&*s);
            }
            #[test]
            fn linked_graph_walks_both_directions() {
                let (s, _g) = $make;
                c::linked_graph_walks_both_directions(&*s);
            }
            #[test]
            fn repeated_subjects_are_indexed_once() {
                let (s, _g) = $make;
                c::repeated_subjects_are_indexed_once(&*s);
            }
            #[test]
            fn subject_lookups_span_index_epochs() {
                let (s, _g) = $make;
                c::subject_lookups_span_index_epochs(&*s);
            }
            #[test]
            fn clean_log_verifies() {
                let (s, _g) = $make;
                c::clean_log_verifies(&*s);
            }
        }
    };
}

pub fn appends_are_contiguous_and_checkpointed(s: &dyn Store) {
    assert_eq!(s.size().unwrap(), 0);
    assert!(s.latest_checkpoint().unwrap().is_none());
    let mut next = 0;
    for batch in [1usize, 5, 2, 17] {
        let out = s.append(notes(batch)).unwrap();
        let indices: Vec<u64> = out.iter().map(|a| a.index.0).collect();
        assert_eq!(indices, (next..next + batch as u64).collect::<Vec<_>>());
        assert!(out.iter().all(|a| !a.duplicate));
        next += batch as u64;
        assert_eq!(s.size().unwrap(), next);
        // Every batch ends with a signed checkpoint at the new size whose root is the tree's.
        let cp = s.latest_checkpoint().unwrap().unwrap();
        assert_eq!(cp.size, next);
        let parsed = verify_checkpoint(&cp.note, &[s.verifier().clone()], Some(ORIGIN)).unwrap();
        assert_eq!(parsed.size, next);
        assert_eq!(parsed.root, cp.root);
        assert_eq!(s.root(next).unwrap(), cp.root);
        assert_eq!(s.checkpoint(next).unwrap().unwrap(), cp);
    }
    // Each stored record is what was appended, at its index, with its leaf hash.
    for i in 0..next {
        let r = s.record(LogIndex(i)).unwrap().unwrap();
        assert_eq!(r.record.index, LogIndex(i));
        assert_eq!(r.leaf_hash, trailmark_log::leaf_hash(&r.leaf));
        assert_eq!(r.record.kind.as_str(), "custom.note");
    }
    assert!(s.record(LogIndex(next)).unwrap().is_none());
    // An empty append is a no-op, not an empty checkpoint.
    assert!(s.append(Vec::new()).unwrap().is_empty());
    assert_eq!(s.size().unwrap(), next);
}

pub fn idempotency_keys_append_once(s: &dyn Store) {
    let keyed = |k: &str, n: u32| {
        parse_record(&format!(
            r#"{{"kind":"custom.note","subjects":[{{"type":"ticket","id":"P-1"}}],"payload":{{"n":{n}}},"idempotency_key":"{k}"}}"#
        ))
        .unwrap()
    };
    let first = s
        .append(vec![note("P-0", 0), keyed("delivery-1", 1)])
        .unwrap();
    assert_eq!(first[1].index, LogIndex(1));
    // Same key again, even with different content: the first index comes back, nothing appended.
    let again = s.append(vec![keyed("delivery-1", 2)]).unwrap();
    assert_eq!(again[0].index, LogIndex(1));
    assert_eq!(again[0].leaf_hash, first[1].leaf_hash);
    assert!(again[0].duplicate);
    assert_eq!(s.size().unwrap(), 2);
    // Twice within one batch: appended once.
    let within = s
        .append(vec![
            keyed("delivery-2", 1),
            keyed("delivery-2", 1),
            note("P-0", 3),
        ])
        .unwrap();
    assert_eq!(within[0].index, LogIndex(2));
    assert_eq!(within[1].index, LogIndex(2));
    assert!(!within[0].duplicate && within[1].duplicate);
    assert_eq!(within[2].index, LogIndex(3));
    assert_eq!(s.size().unwrap(), 4);
    // A batch of only duplicates adds no checkpoint.
    let cp = s.latest_checkpoint().unwrap().unwrap();
    s.append(vec![keyed("delivery-1", 9)]).unwrap();
    assert_eq!(s.latest_checkpoint().unwrap().unwrap(), cp);
}

pub fn concurrent_appends_stay_gapless(s: std::sync::Arc<dyn Store>) {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 40;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..PER_THREAD {
                    let out = s.append(vec![note(&format!("T-{t}"), i)]).unwrap();
                    got.push(out[0].index.0);
                }
                got
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..(THREADS * PER_THREAD) as u64).collect::<Vec<_>>());
    assert_eq!(s.size().unwrap(), (THREADS * PER_THREAD) as u64);
    let report = verify_log(&*s, &[s.verifier().clone()], &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.failures);
}

pub fn proofs_verify_against_checkpoints(s: &dyn Store) {
    let mut sizes = Vec::new();
    for batch in [1usize, 2, 3, 7, 16, 1, 33, 64, 5] {
        s.append(notes(batch)).unwrap();
        sizes.push(s.size().unwrap());
    }
    let verifier = [s.verifier().clone()];
    for &size in &sizes {
        let cp = s.checkpoint(size).unwrap().unwrap();
        let root = verify_checkpoint(&cp.note, &verifier, Some(ORIGIN))
            .unwrap()
            .root;
        let mut one_by_one = Vec::new();
        for i in 0..size {
            let leaf = s.record(LogIndex(i)).unwrap().unwrap().leaf_hash;
            let proof = s.inclusion_proof(LogIndex(i), size).unwrap();
            verify_inclusion(i, size, &leaf, &proof, &root)
                .unwrap_or_else(|e| panic!("index {i} size {size}: {e}"));
            one_by_one.push(proof);
        }
        // Many at once (in and out of order, repeated) are the same proofs.
        let mut indices: Vec<LogIndex> = (0..size).map(LogIndex).collect();
        assert_eq!(s.inclusion_proofs(&indices, size).unwrap(), one_by_one);
        indices.reverse();
        indices.push(LogIndex(0));
        let mut expected: Vec<_> = one_by_one.iter().rev().cloned().collect();
        expected.push(one_by_one[0].clone());
        assert_eq!(s.inclusion_proofs(&indices, size).unwrap(), expected);
    }
    for (a, &m) in sizes.iter().enumerate() {
        for &n in &sizes[a..] {
            let proof = s.consistency_proof(m, n).unwrap();
            verify_consistency(m, n, &s.root(m).unwrap(), &s.root(n).unwrap(), &proof)
                .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
        }
    }
    // Sizes without a checkpoint (inside a batch) still have roots and proofs.
    let (m, n) = (5, *sizes.last().unwrap());
    verify_consistency(
        m,
        n,
        &s.root(m).unwrap(),
        &s.root(n).unwrap(),
        &s.consistency_proof(m, n).unwrap(),
    )
    .unwrap();
}

pub fn queries_filter_and_paginate(s: &dyn Store) {
    let rec = |kind: &str, ticket: &str| {
        parse_record(&format!(
            r#"{{"kind":"{kind}","subjects":[{{"type":"ticket","id":"{ticket}"}}],"links":[{{"rel":"implements","to":{{"type":"ticket","id":"EPIC-1"}}}}]}}"#
        ))
        .unwrap()
    };
    s.append(vec![
        rec("custom.a", "A-1"),
        rec("custom.b", "A-1"),
        rec("custom.a", "B-1"),
    ])
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let before = Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(2));
    s.append(vec![rec("custom.a", "A-1")]).unwrap();
    let idx = |q: &Query| {
        s.query(q)
            .unwrap()
            .iter()
            .map(|r| r.record.index.0)
            .collect::<Vec<_>>()
    };
    let all = Query {
        limit: 100,
        ..Query::default()
    };
    assert_eq!(idx(&all), vec![0, 1, 2, 3]);
    let kind_a = Query {
        kind: Some(Kind::parse("custom.a").unwrap()),
        ..all.clone()
    };
    assert_eq!(idx(&kind_a), vec![0, 2, 3]);
    let a1: Subject = "ticket:A-1".parse().unwrap();
    assert_eq!(
        idx(&Query {
            subject: Some(a1.clone()),
            ..all.clone()
        }),
        vec![0, 1, 3]
    );
    assert_eq!(
        idx(&Query {
            subject: Some(a1),
            ..kind_a.clone()
        }),
        vec![0, 3]
    );
    // Link targets are not subjects.
    assert!(
        idx(&Query {
            subject: Some("ticket:EPIC-1".parse().unwrap()),
            ..all.clone()
        })
        .is_empty()
    );
    assert_eq!(
        idx(&Query {
            since: Some(before),
            ..all.clone()
        }),
        vec![3]
    );
    assert_eq!(
        idx(&Query {
            until: Some(before),
            ..all.clone()
        }),
        vec![0, 1, 2]
    );
    assert_eq!(
        idx(&Query {
            after: Some(LogIndex(1)),
            limit: 1,
            ..all.clone()
        }),
        vec![2]
    );
}

pub fn large_payloads_are_content_addressed(s: &dyn Store) {
    let big = "evidence ".repeat(4000);
    let r = parse_record(&serde_json::json!({"kind":"custom.log","subjects":[{"type":"build","id":"b-1"}],"payload":{"text": big}}).to_string()).unwrap();
    let payload = r.payload.clone();
    s.append(vec![r]).unwrap();
    let stored = s.record(LogIndex(0)).unwrap().unwrap();
    let Payload::Blob { digest, size } = stored.record.payload else {
        panic!("expected a blob payload")
    };
    assert!(stored.leaf.len() < 1024);
    let bytes = s.blob(&digest).unwrap().unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert_eq!(Digest::of(&bytes), digest);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
        payload
    );
    assert!(s.blob(&Digest::of(b"nope")).unwrap().is_none());
}

pub fn bad_requests_are_refused(s: &dyn Store) {
    s.append(notes(3)).unwrap();
    assert!(s.inclusion_proof(LogIndex(3), 3).is_err());
    assert!(s.inclusion_proof(LogIndex(0), 4).is_err());
    assert!(s.inclusion_proofs(&[LogIndex(0), LogIndex(3)], 3).is_err());
    assert!(s.inclusion_proofs(&[LogIndex(0)], 4).is_err());
    assert_eq!(s.inclusion_proofs(&[], 3).unwrap(), Vec::<Vec<_>>::new());
    assert!(s.consistency_proof(0, 3).is_err());
    assert!(s.consistency_proof(3, 2).is_err());
    assert!(s.consistency_proof(1, 9).is_err());
    assert!(s.root(4).is_err());
    assert!(s.checkpoint(2).unwrap().is_none());
}

/// Record `i` of a spread-out log: about ticket `T-{i % 7}`, testing build `b{i % 5}`, of kind
/// `custom.other` when `i % 3 == 0`.
pub fn spread_record(i: usize) -> trailmark_model::NewRecord {
    let kind = if i.is_multiple_of(3) {
        "custom.other"
    } else {
        "custom.note"
    };
    parse_record(&format!(
        r#"{{"kind":"{kind}","subjects":[{{"type":"ticket","id":"T-{}"}}],"links":[{{"rel":"tests","to":{{"type":"build","id":"b{}"}}}}],"payload":{{"n":{i}}}}}"#,
        i % 7,
        i % 5
    ))
    .unwrap()
}

/// Every answer about a subject in a log of `size` [`spread_record`]s, paged, checked against
/// what the records say: the same whichever part of the log (and of any index over it) an
/// answer comes from.
pub fn assert_spread_answers(s: &dyn Store, size: usize) {
    let paged_by = |subject: Option<&str>, kind: Option<&str>| {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .query(&Query {
                    subject: subject.map(|s| s.parse().unwrap()),
                    kind: kind.map(|k| Kind::parse(k).unwrap()),
                    after,
                    limit: 333,
                    ..Query::default()
                })
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.record.index);
            out.extend(page.iter().map(|r| r.record.index.0 as usize));
        }
        out
    };
    let paged = |subject: &str, kind: Option<&str>| paged_by(Some(subject), kind);
    let expect = |f: &dyn Fn(usize) -> bool| (0..size).filter(|i| f(*i)).collect::<Vec<_>>();
    // By kind alone, too.
    assert_eq!(
        paged_by(None, Some("custom.other")),
        expect(&|i| i % 3 == 0)
    );
    assert_eq!(paged("ticket:T-3", None), expect(&|i| i % 7 == 3));
    assert_eq!(
        paged("ticket:T-5", Some("custom.other")),
        expect(&|i| i % 7 == 5 && i % 3 == 0)
    );
    // Link targets are mentions, not subjects.
    assert!(paged("build:b2", None).is_empty());
    let m: Vec<(usize, String)> = s
        .mentions(&"build:b2".parse().unwrap())
        .unwrap()
        .into_iter()
        .map(|(i, rel)| {
            (
                i.0 as usize,
                rel.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            )
        })
        .collect();
    let want: Vec<(usize, String)> = expect(&|i| i % 5 == 2)
        .into_iter()
        .map(|i| (i, "tests".to_owned()))
        .collect();
    assert_eq!(m, want);
    // One page from the middle: it starts after the cursor, whichever side of an epoch that is.
    let page = s
        .query(&Query {
            subject: Some("ticket:T-0".parse().unwrap()),
            after: Some(LogIndex(4090)),
            limit: 3,
            ..Query::default()
        })
        .unwrap();
    let got: Vec<usize> = page.iter().map(|r| r.record.index.0 as usize).collect();
    let want: Vec<usize> = expect(&|i| i % 7 == 0 && i > 4090)
        .into_iter()
        .take(3)
        .collect();
    assert_eq!(got, want);
    let page = s
        .query(&Query {
            kind: Some(Kind::parse("custom.note").unwrap()),
            after: Some(LogIndex(4093)),
            limit: 3,
            ..Query::default()
        })
        .unwrap();
    let got: Vec<usize> = page.iter().map(|r| r.record.index.0 as usize).collect();
    let want: Vec<usize> = expect(&|i| i % 3 != 0 && i > 4093)
        .into_iter()
        .take(3)
        .collect();
    assert_eq!(got, want);
}

pub fn subject_lookups_span_index_epochs(s: &dyn Store) {
    // 8,500 records: past two SQLite subject-index epochs of 4,096, batches crossing them.
    let size = 8_500;
    for start in (0..size).step_by(1_000) {
        let batch = (start..(start + 1_000).min(size))
            .map(spread_record)
            .collect();
        s.append(batch).unwrap();
    }
    assert_spread_answers(s, size);
}

pub fn repeated_subjects_are_indexed_once(s: &dyn Store) {
    // Nothing stops a record from naming a subject twice; the index holds the fact once.
    let r = parse_record(
        r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"A-1"},{"type":"ticket","id":"A-1"}],"links":[{"rel":"references","to":{"type":"ticket","id":"B-1"}},{"rel":"references","to":{"type":"ticket","id":"B-1"}},{"rel":"blocks","to":{"type":"ticket","id":"B-1"}}]}"#,
    )
    .unwrap();
    s.append(vec![r.clone(), r]).unwrap();
    let about_a = Query {
        subject: Some("ticket:A-1".parse().unwrap()),
        limit: 10,
        ..Query::default()
    };
    let found: Vec<u64> = s
        .query(&about_a)
        .unwrap()
        .iter()
        .map(|r| r.record.index.0)
        .collect();
    assert_eq!(found, vec![0, 1]);
    let m = s.mentions(&"ticket:B-1".parse().unwrap()).unwrap();
    let rels: Vec<(u64, &str)> = m
        .iter()
        .map(|(i, r)| (i.0, r.as_ref().map_or("", |r| r.as_str())))
        .collect();
    assert_eq!(
        rels,
        vec![
            (0, "blocks"),
            (0, "references"),
            (1, "blocks"),
            (1, "references")
        ]
    );
}

pub fn clean_log_verifies(s: &dyn Store) {
    for batch in [3usize, 100, 1, 250] {
        s.append(notes(batch)).unwrap();
    }
    let mut calls = 0;
    let report = verify_log(s, &[s.verifier().clone()], &mut |_, _| calls += 1).unwrap();
    assert!(report.is_ok(), "{:?}", report.failures);
    assert_eq!(report.records, 354);
    assert_eq!(report.checkpoints, 4);
    assert!(
        report.nodes > 80,
        "stored tree hashes compared: {}",
        report.nodes
    );
    assert_eq!(report.latest.unwrap().size, 354);
    assert!(calls >= 1);
    // A different key does not verify the checkpoints.
    let stranger = trailmark_log::SignerKey::from_seed(ORIGIN, [9u8; 32])
        .unwrap()
        .verifier();
    let report = verify_log(s, &[stranger], &mut |_, _| {}).unwrap();
    assert!(!report.is_ok());
}

pub fn linked_graph_walks_both_directions(s: &dyn Store) {
    let rec = |json: &str| parse_record(json).unwrap();
    let sha = "9fceb02d0ae598e95dc970b74767f19372d61af8";
    s.append(vec![
        // 0: the ticket itself
        rec(r#"{"kind":"jira.transition","subjects":[{"type":"ticket","id":"PAY-1"}]}"#),
        // 1: a commit that implements it (links TO the ticket)
        rec(&format!(r#"{{"kind":"git.commit","subjects":[{{"type":"commit","id":"{sha}"}}],"links":[{{"rel":"references","to":{{"type":"ticket","id":"PAY-1"}}}},{{"rel":"in_repo","to":{{"type":"repo","id":"github.com/a/b"}}}}]}}"#)),
        // 2: a build of that commit (two hops from the ticket)
        rec(&format!(r#"{{"kind":"test.report","subjects":[{{"type":"build","id":"ci-1"}}],"links":[{{"rel":"tests","to":{{"type":"commit","id":"{sha}"}}}}]}}"#)),
        // 3: unrelated, but in the same repo: must not be reached through the repo hub
        rec(r#"{"kind":"git.commit","subjects":[{"type":"commit","id":"1111111111111111111111111111111111111111"}],"links":[{"rel":"in_repo","to":{"type":"repo","id":"github.com/a/b"}}]}"#),
    ])
    .unwrap();
    let start: Subject = "ticket:PAY-1".parse().unwrap();
    let g = trailmark_store::graph::linked(s, &start, 5, 1000).unwrap();
    assert_eq!(
        g.records.keys().map(|i| i.0).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(g.subjects.contains(&"build:ci-1".parse().unwrap()));
    assert!(
        g.subjects.contains(&"repo:github.com/a/b".parse().unwrap()),
        "hubs are shown"
    );
    assert!(!g.truncated);
    assert!(
        g.edges
            .iter()
            .any(|e| e.rel.as_str() == "tests" && e.from.id == "ci-1")
    );
    // Depth 1 stops at the commit; a record cap truncates honestly.
    assert_eq!(
        trailmark_store::graph::linked(s, &start, 0, 1000)
            .unwrap()
            .records
            .len(),
        2
    );
    let capped = trailmark_store::graph::linked(s, &start, 5, 1).unwrap();
    assert!(capped.truncated);
    assert_eq!(capped.records.len(), 1);
    // Mentions distinguish subjects from link targets.
    let m = s.mentions(&start).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0], (LogIndex(0), None));
    assert_eq!(m[1].1.as_ref().map(|r| r.as_str()), Some("references"));
}

/// An append queued by async code ([`Store::append_queued`]) answers as a blocking one does:
/// contiguous indices, given once the batch is durable (the records read back at once),
/// concurrent ones gapless, a repeated key found as a duplicate, nothing for nothing.
pub fn queued_appends_answer_as_blocking_ones_do(s: &dyn Store) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let first = rt.block_on(s.append_queued(notes(3), vec![])).unwrap();
    assert_eq!(
        first.iter().map(|a| a.index.0).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(s.size().unwrap(), 3);
    for a in &first {
        assert_eq!(s.record(a.index).unwrap().unwrap().leaf_hash, a.leaf_hash);
    }
    // Queued together, answered each: 20 one-record batches, all distinct, no gap.
    let queued: Vec<_> = (0..20)
        .map(|n| s.append_queued(vec![note("Q-1", n)], vec![]))
        .collect();
    let mut got: Vec<u64> = rt.block_on(async {
        let mut got = Vec::new();
        for q in queued {
            got.push(q.await.unwrap()[0].index.0);
        }
        got
    });
    got.sort_unstable();
    assert_eq!(got, (3..23).collect::<Vec<u64>>());
    assert_eq!(s.size().unwrap(), 23);
    let once = rt
        .block_on(s.append_queued(vec![keyed("queued", 1)], vec![]))
        .unwrap();
    let again = rt
        .block_on(s.append_queued(vec![keyed("queued", 1)], vec![]))
        .unwrap();
    assert!(!once[0].duplicate);
    assert!(again[0].duplicate);
    assert_eq!(again[0].index, once[0].index);
    assert!(
        rt.block_on(s.append_queued(vec![], vec![]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.size().unwrap(), 24);
}
