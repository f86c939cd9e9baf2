use trailmark_log::SignerKey;
use trailmark_model::{Kind, LogIndex, NewRecord, Subject, parse_record};
use trailmark_store::{Query, Store, StoreError};

pub const ORIGIN: &str = "test.trailmark.local/log";

pub fn signer() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [7u8; 32]).unwrap()
}

pub fn note(ticket: &str, n: usize) -> NewRecord {
    parse_record(&format!(
        r#"{{"kind":"custom.note","subjects":[{{"type":"ticket","id":"{ticket}"}}],"payload":{{"n":{n}}}}}"#
    ))
    .unwrap()
}

/// Record `gone`, deleted behind the store's back from a log of `size` notes about PROJ-1
/// ([`notes`]), reads as an error naming it, not as "no such record", and queries whose answer
/// would have held it fail the same way instead of answering without it. Its neighbour reads,
/// past the end is `None`, and queries around it still answer.
pub fn assert_missing_record_is_corrupt(s: &dyn Store, gone: u64, size: u64) {
    let names_it = |what: &str, got: Result<Vec<u64>, StoreError>| match got {
        Err(StoreError::Corrupt { index, reason }) => {
            assert_eq!(index, gone, "{what}");
            assert!(reason.contains("missing"), "{what}: {reason}");
        }
        other => panic!("{what}: {other:?}"),
    };
    names_it("record", s.record(LogIndex(gone)).map(|_| Vec::new()));
    assert!(s.record(LogIndex(gone - 1)).unwrap().is_some());
    assert!(s.record(LogIndex(size)).unwrap().is_none());

    // A limit of 0 here means "all of them".
    let query = |q: Query| {
        let limit = if q.limit == 0 { 100 } else { q.limit };
        s.query(&Query { limit, ..q })
            .map(|rs| rs.iter().map(|r| r.record.index.0).collect::<Vec<_>>())
    };
    let subject = || Some(Subject::parse("ticket", "PROJ-1").unwrap());
    let kind = || Some(Kind::parse("custom.note").unwrap());
    names_it("the whole log", query(Query::default()));
    names_it(
        "by subject",
        query(Query {
            subject: subject(),
            ..Query::default()
        }),
    );
    names_it(
        "by subject and kind",
        query(Query {
            subject: subject(),
            kind: kind(),
            ..Query::default()
        }),
    );
    // The kind index is a table of its own, so a row gone from `records` is still indexed.
    names_it(
        "by kind",
        query(Query {
            kind: kind(),
            ..Query::default()
        }),
    );
    names_it(
        "from just before it",
        query(Query {
            after: Some(LogIndex(gone - 1)),
            ..Query::default()
        }),
    );
    // Answers that never reached it are whole.
    let before: Vec<u64> = (0..gone).collect();
    assert_eq!(
        query(Query {
            limit: gone as u32,
            ..Query::default()
        })
        .unwrap(),
        before
    );
    assert_eq!(
        query(Query {
            subject: subject(),
            limit: gone as u32,
            ..Query::default()
        })
        .unwrap(),
        before
    );
    assert_eq!(
        query(Query {
            kind: kind(),
            limit: gone as u32,
            ..Query::default()
        })
        .unwrap(),
        before
    );
    let after: Vec<u64> = (gone + 1..size).collect();
    assert_eq!(
        query(Query {
            kind: kind(),
            after: Some(LogIndex(gone)),
            ..Query::default()
        })
        .unwrap(),
        after
    );
    assert_eq!(
        query(Query {
            after: Some(LogIndex(gone)),
            ..Query::default()
        })
        .unwrap(),
        after
    );
}

/// A store opened read-only refuses appends, blocking and queued.
pub fn assert_read_only(ro: &dyn Store) {
    assert!(matches!(ro.append(notes(1)), Err(StoreError::ReadOnly)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(matches!(
        rt.block_on(ro.append_queued(notes(1), vec![])),
        Err(StoreError::ReadOnly)
    ));
}

pub fn notes(count: usize) -> Vec<NewRecord> {
    (0..count).map(|n| note("PROJ-1", n)).collect()
}

pub fn keyed(key: &str, n: usize) -> NewRecord {
    parse_record(&format!(
        r#"{{"kind":"custom.note","subjects":[{{"type":"ticket","id":"K-1"}}],"payload":{{"n":{n}}},"idempotency_key":"{key}"}}"#
    ))
    .unwrap()
}

pub fn tagged(instance: &str, thread: usize, i: usize) -> NewRecord {
    note(&format!("{instance}-{thread}-{i}"), i)
}

/// What an instance's caller was told: (index, leaf hash, duplicate, what was sent).
pub type Ack = (u64, trailmark_log::Hash, bool, String);

/// Two writers on one log (instances `A` and `B`), each with `threads` threads appending
/// `rounds` batches of 1-3 records; every fifth batch also carries a key every thread of both
/// sends (`key:shared-<round>`), which exactly one of them may append. Returns what every
/// caller was told, after checking that each shared key was appended once, that both writers
/// appended, and that both see the same head.
pub fn append_from_two_writers(
    a: &std::sync::Arc<dyn trailmark_store::Store>,
    b: &std::sync::Arc<dyn trailmark_store::Store>,
    threads: usize,
    rounds: usize,
) -> Vec<Ack> {
    use std::sync::{Arc, Mutex};
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let mut handles = Vec::new();
    for (name, store) in [("A", a), ("B", b)] {
        for t in 0..threads {
            let store = Arc::clone(store);
            let acks = Arc::clone(&acks);
            handles.push(std::thread::spawn(move || {
                for i in 0..rounds {
                    let mut batch: Vec<NewRecord> = (0..1 + (i + t) % 3)
                        .map(|j| tagged(name, t, i * 10 + j))
                        .collect();
                    let mut labels: Vec<String> = (0..batch.len())
                        .map(|j| format!("{name}-{t}-{}", i * 10 + j))
                        .collect();
                    if i % 5 == 0 {
                        batch.push(keyed(&format!("shared-{i}"), i));
                        labels.push(format!("key:shared-{i}"));
                    }
                    let out = store.append(batch).unwrap();
                    let mut acks = acks.lock().unwrap();
                    for (a, label) in out.into_iter().zip(labels) {
                        acks.push((a.index.0, a.leaf_hash, a.duplicate, label));
                    }
                }
            }));
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    for i in (0..rounds).step_by(5) {
        let label = format!("key:shared-{i}");
        let firsts = acks.iter().filter(|x| x.3 == label && !x.2).count();
        assert_eq!(firsts, 1, "{label} appended once");
    }
    assert!(acks.iter().any(|x| x.3.starts_with("A-") && !x.2));
    assert!(acks.iter().any(|x| x.3.starts_with("B-") && !x.2));
    assert_eq!(a.size().unwrap(), b.size().unwrap());
    assert_eq!(
        a.latest_checkpoint().unwrap(),
        b.latest_checkpoint().unwrap()
    );
    acks
}
