#![no_main]
//! Offline dossier verification over hostile files: a dossier comes from the party being
//! audited, so the verifier must answer any bytes with a report or an `Unreadable` error, never
//! a panic, and a report is "verified" only with no failure in it. Seeded with the pinned
//! dossiers of `crates/dossier/tests/data`, which verify with this key.
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use trailmark_log::{SignerKey, VerifierKey};

static KEY: LazyLock<VerifierKey> = LazyLock::new(|| {
    SignerKey::from_seed("test.example/log", [5u8; 32])
        .expect("a valid key name")
        .verifier()
});

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = trailmark_dossier::verify::verify(data, &KEY) {
        assert_eq!(report.ok(), report.failures.is_empty());
        if report.ok() {
            // Verified: every record it counts was proven into the checkpoint it names.
            assert!(report.checkpoint_size as usize >= report.records);
        }
    }
});
