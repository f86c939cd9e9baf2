//! What auditors already hold: dossiers (one per format) and a certification exported by an
//! earlier Trailmark, kept byte for byte in `tests/data` (see its README), must keep verifying.
//!
//! The verifier recomputes the dossier's view from its records. A change to that computation,
//! to the file's format or to how a certification is checked would make an honest dossier
//! issued before it read as tampered. That must be a deliberate new format, with the old one
//! still verified (or refused by name), never a side effect: these tests make it visible.

use std::path::{Path, PathBuf};

use trailmark_dossier::{cert, verify};
use trailmark_log::{SignerKey, VerifierKey};
use trailmark_model::Digest;

/// A dossier as `trailmark dossier` (JSON, raw inputs included) wrote it.
struct Pinned {
    file: &'static str,
    sha256: &'static str,
    format: &'static str,
    /// The records it carries, its own export record included.
    records: usize,
}

/// One dossier per format this build exports or once exported, all of the release
/// `build_verify::World` certifies, deploys and exports (see `tests/data/README.md`).
const DOSSIERS: [Pinned; 3] = [
    Pinned {
        file: "dossier-v1-2026-11-25.json",
        sha256: "sha256:246d816e97775504b258e7e4b2d23d29382bd35e83bbd5903e54013aed77148f",
        format: "trailmark.dossier/v1",
        records: 17,
    },
    // Its identity map was set by alice, who approved the release: the gap v2 adds.
    Pinned {
        file: "dossier-v2-2026-11-25.json",
        sha256: "sha256:a48efe1034447a6cfa673a6cf76de17cb294f14fad51b2731f20e6a44759919f",
        format: "trailmark.dossier/v2",
        records: 17,
    },
    // The same release as v2's, its proofs as positions in one table of hashes.
    Pinned {
        file: "dossier-v3-2026-11-25.json",
        sha256: "sha256:2ac7308c2689070b318c8ad8749e8ef98f6689d4d83c629f4475fd9c30762191",
        format: "trailmark.dossier/v3",
        records: 17,
    },
];
/// Written by `trailmark certify` for the v1 dossier's release, the same day.
const CERTIFICATION_V1: &str = "certification-v1-2026-11-25.json";
const CERTIFICATION_V1_SHA256: &str =
    "sha256:8baa8ece19f1e01c1e7bcec0f99d66c6af8895f1b982444e3ef466f9dfafc004";
const CERTIFIED_RELEASE: &str = "acme/hello/hello@1.0.0";

/// The pinned file `name`, checked to be the one `tests/data/README.md` describes.
fn pinned(name: &str, sha256: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        Digest::of(&bytes).to_string(),
        sha256,
        "{name} is not the file its README describes: it must never be edited or regenerated"
    );
    bytes
}

/// The key of the test log the files come from (`build_verify::World`).
fn key() -> VerifierKey {
    SignerKey::from_seed("test.example/log", [5u8; 32])
        .unwrap()
        .verifier()
}

#[test]
fn dossiers_exported_by_an_earlier_trailmark_still_verify() {
    for p in &DOSSIERS {
        let bytes = pinned(p.file, p.sha256);
        let rep = verify::verify(&bytes, &key()).unwrap();
        assert!(
            rep.ok(),
            "{}: a dossier issued by an earlier Trailmark no longer verifies. If the view \
             computation or the format changed on purpose, give the new one a new format and keep \
             verifying this one (or refuse it by name); do not regenerate this file. Failures: {:#?}",
            p.file,
            rep.failures
        );
        assert_eq!(rep.format, p.format, "{}", p.file);
        assert_eq!(rep.records, p.records, "{}: {rep:?}", p.file);
        assert_eq!(rep.certifications, 1, "{}: {rep:?}", p.file);
        assert_eq!(rep.gate_decisions_recomputed, 1, "{}: {rep:?}", p.file);
        assert!(rep.consistency_proofs >= 1, "{}: {rep:?}", p.file);
    }
}

#[test]
fn the_earlier_dossiers_are_still_refused_when_changed() {
    // So the test above passes because the files are sound, not because anything would: each
    // file with one answer of the view changed, and with one record's leaf changed.
    for p in &DOSSIERS {
        let text = String::from_utf8(pinned(p.file, p.sha256)).unwrap();
        let answered = text.replacen("\"answer\": \"yes\"", "\"answer\": \"no\"", 1);
        assert_ne!(answered, text, "{} has an answer to change", p.file);
        let rep = verify::verify(answered.as_bytes(), &key()).unwrap();
        assert!(
            rep.failures.iter().any(|f| f.contains("the view")),
            "{}: {:#?}",
            p.file,
            rep.failures
        );

        let mut d: serde_json::Value = serde_json::from_str(&text).unwrap();
        let leaf = d["records"][0]["leaf"].as_str().unwrap().to_owned();
        let flipped = if leaf.starts_with('A') { "B" } else { "A" };
        d["records"][0]["leaf"] = serde_json::Value::String(format!("{flipped}{}", &leaf[1..]));
        let rep = verify::verify(&serde_json::to_vec(&d).unwrap(), &key()).unwrap();
        assert!(!rep.ok(), "{}: a changed leaf must fail: {rep:?}", p.file);
    }
}

#[test]
fn a_certification_issued_by_an_earlier_trailmark_still_verifies() {
    let bytes = pinned(CERTIFICATION_V1, CERTIFICATION_V1_SHA256);
    let envelope: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let statement = cert::verify_envelope(&envelope, &key(), CERTIFIED_RELEASE)
        .unwrap_or_else(|e| panic!("a certification issued earlier no longer verifies: {e}"));
    assert_eq!(
        statement["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    assert_eq!(statement["predicate"]["verificationResult"], "PASSED");
    // Another key does not verify it.
    let other = SignerKey::from_seed("test.example/log", [6u8; 32])
        .unwrap()
        .verifier();
    assert!(cert::verify_envelope(&envelope, &other, CERTIFIED_RELEASE).is_err());
}
