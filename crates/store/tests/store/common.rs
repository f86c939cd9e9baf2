use trailmark_log::SignerKey;
use trailmark_model::{NewRecord, parse_record};

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

pub fn notes(count: usize) -> Vec<NewRecord> {
    (0..count).map(|n| note("PROJ-1", n)).collect()
}
