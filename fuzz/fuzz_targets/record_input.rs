#![no_main]
//! User record input (one record, an array, or JSON Lines).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = trailmark_model::parse_records(text);
    }
});
