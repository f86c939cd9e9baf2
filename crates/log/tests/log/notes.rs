//! Signed-note behaviour: unknown signers, bad signatures, malformed notes.

use proptest::prelude::*;
use trailmark_log::{Error, MAX_SIGNATURES, Note, NoteError, SignerKey, open};

use crate::common::{checkpoint_file, signer, verifier};

fn other_key() -> SignerKey {
    SignerKey::from_seed("witness.example/w1", [7; 32]).unwrap()
}

fn body_of(text: &str) -> &str {
    let split = text.rfind("\n\n").unwrap();
    &text[..split + 1]
}

fn note_err(text: &str) -> NoteError {
    match open(text, &[verifier()]) {
        Err(Error::Note(e)) => e,
        other => panic!("expected a note error for {text:?}, got {other:?}"),
    }
}

#[test]
fn unknown_signer_is_ignored() {
    let text = checkpoint_file(5);
    let cosigned = format!(
        "{text}{}",
        other_key().signature_line(body_of(&text)).unwrap()
    );
    let opened = open(&cosigned, &[verifier()]).unwrap();
    assert_eq!(opened.body, body_of(&text));
    assert_eq!(opened.verified_by, ["astra"]);

    // With both keys known, both verify.
    let opened = open(&cosigned, &[verifier(), other_key().verifier()]).unwrap();
    assert_eq!(opened.verified_by, ["astra", "witness.example/w1"]);

    // An unknown signature placed first is ignored too.
    let parsed = Note::parse(&cosigned).unwrap();
    let reordered = Note {
        body: parsed.body.clone(),
        signatures: vec![parsed.signatures[1].clone(), parsed.signatures[0].clone()],
    };
    assert_eq!(
        open(&reordered.to_text(), &[verifier()])
            .unwrap()
            .verified_by,
        ["astra"]
    );
}

#[test]
fn same_name_other_key_id_is_unknown() {
    // The spec: signatures sharing a name (but not the id) with a known key
    // are from an unknown key and must be ignored, even if invalid.
    let text = checkpoint_file(4);
    let mut note = Note::parse(&text).unwrap();
    let mut impostor = note.signatures[0].clone();
    impostor.key_id = [0, 0, 0, 0];
    impostor.signature = vec![1; 64];
    note.signatures.insert(0, impostor);
    assert_eq!(
        open(&note.to_text(), &[verifier()]).unwrap().verified_by,
        ["astra"]
    );
}

#[test]
fn known_signer_with_bad_signature_is_an_error() {
    let text = checkpoint_file(6);
    let mut note = Note::parse(&text).unwrap();
    note.signatures[0].signature[10] ^= 0x01;
    let err = note_err(&note.to_text());
    assert_eq!(
        err,
        NoteError::BadSignature {
            name: "astra".to_owned(),
            key_id: [0xca, 0xd5, 0xa3, 0xd2]
        }
    );
    assert_eq!(
        err.to_string(),
        "signature by astra+cad5a3d2 does not verify"
    );

    // Even when another, good, signature by the same key is present.
    let good = Note::parse(&text).unwrap();
    note.signatures.insert(0, good.signatures[0].clone());
    assert!(matches!(
        note_err(&note.to_text()),
        NoteError::BadSignature { .. }
    ));

    // A signature of the wrong length by a known key is a bad signature too.
    let mut note = Note::parse(&text).unwrap();
    note.signatures[0].signature.truncate(63);
    assert!(matches!(
        note_err(&note.to_text()),
        NoteError::BadSignature { .. }
    ));
}

#[test]
fn no_known_signer_is_an_error() {
    let text = checkpoint_file(2);
    let err = open(&text, &[other_key().verifier()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "note has no signature by a known key (signed by: astra+cad5a3d2)"
    );
    let err = open(&text, &[]).unwrap_err();
    assert!(matches!(
        err,
        Error::Note(NoteError::NoKnownSignature { .. })
    ));
}

#[test]
fn tampered_body_is_an_error() {
    let text = checkpoint_file(9);
    let tampered = text.replacen("example.com", "example.org", 1);
    assert!(matches!(
        note_err(&tampered),
        NoteError::BadSignature { .. }
    ));
}

#[test]
fn malformed_notes_are_rejected() {
    let good = checkpoint_file(3);
    let body = body_of(&good).to_owned();
    let sig_line = good[body.len() + 1..].to_owned();
    let short = "\u{2014} astra yrWj0g==\n"; // 4 bytes: a key id and no signature
    let cases: Vec<(String, &str)> = vec![
        (
            body.clone(),
            "note has no empty line separating the text from the signatures",
        ),
        (
            format!("{body}{sig_line}"),
            "note has no empty line separating the text from the signatures",
        ),
        (
            good.trim_end_matches('\n').to_owned(),
            "note does not end with a newline",
        ),
        (
            format!("{body}\n"),
            "note has no signature lines after the empty line",
        ),
        (
            format!("{good}\n"),
            "note has no signature lines after the empty line",
        ),
        (
            String::new(),
            "note has no empty line separating the text from the signatures",
        ),
        (
            format!("{body}\n- astra AAAAAAA=\n"),
            "note line 5 is not a signature line: it must start with an em dash (U+2014) and a space",
        ),
        (
            format!("{body}\n\u{2014}astra AAAAAAA=\n"),
            "note line 5 is not a signature line: it must start with an em dash (U+2014) and a space",
        ),
        (
            format!("{body}\n\u{2014} astra\n"),
            "note line 5: signature by astra is not valid base64",
        ),
        (
            format!("{body}\n\u{2014} astra not*base64\n"),
            "note line 5: signature by astra is not valid base64",
        ),
        (
            format!("{body}\n\u{2014} astra AAAA AAAA\n"),
            "note line 5: signature by astra is not valid base64",
        ),
        (
            format!("{body}\n{short}"),
            "note line 5: signature by astra is 4 bytes, shorter than a 4-byte key id plus a signature",
        ),
        (
            format!("{body}\n\u{2014}  AAAAAAA=\n"),
            "note line 5: key name \"\" is invalid: it is empty",
        ),
        (
            format!("{body}\n\u{2014} a+b AAAAAAA=\n"),
            "note line 5: key name \"a+b\" is invalid: it contains '+'",
        ),
        (
            format!("{body}\n\u{2014} a\u{a0}b AAAAAAA=\n"),
            "note line 5: key name \"a\\u{a0}b\" is invalid: it contains white space",
        ),
        (
            good.replace('\n', "\r\n"),
            "note line 1 contains control character U+000D",
        ),
        (
            good.replacen("testdata", "test\tdata", 1),
            "note line 1 contains control character U+0009",
        ),
    ];
    for (text, want) in &cases {
        let err = open(text, &[verifier()]).unwrap_err();
        assert_eq!(err.to_string(), *want, "{text:?}");
    }
}

#[test]
fn duplicate_signature_lines_verify() {
    // Extra copies of a valid signature change nothing (each is verified).
    let good = checkpoint_file(3);
    let body = body_of(&good);
    let sig_line = &good[body.len() + 1..];
    let doubled = format!("{good}{sig_line}");
    // Appending after the final newline keeps the signature block intact.
    let opened = open(&doubled, &[verifier()]).unwrap();
    assert_eq!(opened.verified_by, ["astra"]);
}

#[test]
fn signature_count_is_limited() {
    let good = checkpoint_file(1);
    let body = body_of(&good);
    let unknown = other_key().signature_line(body).unwrap();
    let at_limit = format!("{good}{}", unknown.repeat(MAX_SIGNATURES - 1));
    assert!(open(&at_limit, &[verifier()]).is_ok());
    let over = format!("{at_limit}{unknown}");
    assert_eq!(
        note_err(&over),
        NoteError::TooManySignatures {
            max: MAX_SIGNATURES
        }
    );
}

#[test]
fn body_may_contain_empty_lines() {
    let key = signer();
    let body = "first\n\nthird\n\n";
    let text = key.sign(body).unwrap();
    let opened = open(&text, &[verifier()]).unwrap();
    assert_eq!(opened.body, body);
}

#[test]
fn sign_rejects_unsignable_bodies() {
    let key = signer();
    assert_eq!(key.sign("").unwrap_err(), Error::Note(NoteError::EmptyText));
    assert_eq!(
        key.sign("no newline").unwrap_err(),
        Error::Note(NoteError::TextMissingNewline)
    );
    assert!(matches!(
        key.sign("a\rb\n").unwrap_err(),
        Error::Note(NoteError::ControlCharacter { line: 1, code: 13 })
    ));
}

#[test]
fn every_single_byte_deletion_is_rejected() {
    let good = checkpoint_file(5);
    for i in 0..good.len() {
        let mut bytes = good.as_bytes().to_vec();
        bytes.remove(i);
        if let Ok(text) = String::from_utf8(bytes) {
            assert!(open(&text, &[verifier()]).is_err(), "deleting byte {i}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic(s in "(\\PC|\n|\u{2014} |\n\n|astra|[A-Za-z0-9+/=]{4,12}){0,40}") {
        let _ = Note::parse(&s);
        let _ = open(&s, &[verifier()]);
        let _ = trailmark_log::Checkpoint::parse_body(&s);
        let _ = trailmark_log::TlogProof::parse(&s);
        let _ = trailmark_log::VerifierKey::parse(&s);
        let _ = trailmark_log::SignerKey::parse(&s);
    }

    #[test]
    fn appended_garbage_never_panics(tail in "\\PC{0,80}") {
        let text = format!("{}{tail}", checkpoint_file(4));
        let _ = open(&text, &[verifier()]);
        let _ = trailmark_log::verify_checkpoint(&text, &[verifier()], None);
    }
}
