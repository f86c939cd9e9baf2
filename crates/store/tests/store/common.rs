use trailmark_log::SignerKey;
use trailmark_model::{LogIndex, NewRecord, parse_record};
use trailmark_store::{Store, StoreError};

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

/// Record `gone`, deleted behind the store's back from a log of `size`, reads as an error
/// naming it, not as "no such record"; its neighbour reads, and past the end is `None`.
pub fn assert_missing_record_is_corrupt(s: &dyn Store, gone: u64, size: u64) {
    match s.record(LogIndex(gone)) {
        Err(StoreError::Corrupt { index, reason }) => {
            assert_eq!(index, gone);
            assert!(reason.contains("missing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(s.record(LogIndex(gone - 1)).unwrap().is_some());
    assert!(s.record(LogIndex(size)).unwrap().is_none());
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
