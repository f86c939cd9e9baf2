#![no_main]
//! Stored leaf decoding: strictness and round trip; what a leaf mentions, read alone.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mentions = trailmark_model::decode_leaf_mentions(data);
    if let Ok(record) = trailmark_model::decode_leaf(data) {
        // Whatever decodes must re-encode to the same bytes (decode is strict).
        assert_eq!(trailmark_model::encode_leaf(&record), data);
        // And what it mentions, read alone, is what the record says.
        let m = mentions.expect("a leaf that decodes has readable mentions");
        assert_eq!(
            (m.index, m.subjects, m.links),
            (record.index, record.subjects, record.links)
        );
    }
});
