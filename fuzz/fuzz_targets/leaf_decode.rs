#![no_main]
//! Stored leaf decoding: strictness and round trip.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = trailmark_model::decode_leaf(data) {
        // Whatever decodes must re-encode to the same bytes (decode is strict).
        assert_eq!(trailmark_model::encode_leaf(&record), data);
    }
});
