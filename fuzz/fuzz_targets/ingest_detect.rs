#![no_main]
//! Format detection plus whichever adapter it picks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = trailmark_ingest::ingest(data, None, &trailmark_ingest::Context::default());
});
