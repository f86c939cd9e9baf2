#![no_main]
//! The junit adapter on arbitrary bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any bytes: Ok or a typed error, never a panic.
    let _ = trailmark_ingest::ingest(data, Some(trailmark_ingest::Format::Junit), &trailmark_ingest::Context::default());
});
