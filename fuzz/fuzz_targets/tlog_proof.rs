#![no_main]
//! tlog-proof files.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = trailmark_log::TlogProof::parse(text) {
            let _ = trailmark_log::verify_tlog_proof(&p, &trailmark_log::Hash([0; 32]), &[], None);
        }
    }
});
