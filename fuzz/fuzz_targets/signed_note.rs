#![no_main]
//! Signed notes, checkpoints and key texts.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = trailmark_log::Note::parse(text);
        if let Ok(key) = trailmark_log::VerifierKey::parse("astra+cad5a3d2+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b") {
            let _ = trailmark_log::verify_checkpoint(text, &[key], None);
        }
        let _ = trailmark_log::VerifierKey::parse(text);
        let _ = trailmark_log::SignerKey::parse(text);
    }
});
