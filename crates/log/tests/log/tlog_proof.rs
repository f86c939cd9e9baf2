//! `c2sp.org/tlog-proof@v1` files over the serverless-log fixtures.

use trailmark_log::{
    CheckpointError, Error, Hash, NoteError, ProofFileError, TlogProof, VerifyError,
    inclusion_proof, leaf_hash, verify_tlog_proof,
};

use crate::common::{
    MemTree, ORIGIN, checkpoint_file, flip, verifier, word_checkpoint, word_leaves,
};

/// Proof of leaf `index` at the checkpoint of size `size`.
fn proof_for(index: u64, size: u64) -> TlogProof {
    let tree = MemTree::new(&word_leaves());
    TlogProof {
        index,
        proof: inclusion_proof(index, size, &mut tree.source(size)).unwrap(),
        checkpoint: checkpoint_file(size as usize),
    }
}

#[test]
fn leaf_3_at_checkpoint_15() {
    let p = proof_for(3, 15);
    let text = p.to_text();
    assert!(
        text.starts_with("c2sp.org/tlog-proof@v1\nindex 3\n"),
        "{text}"
    );
    assert!(text.ends_with(&format!("\n\n{}", checkpoint_file(15))));
    assert_eq!(text.lines().count(), 2 + p.proof.len() + 1 + 5);
    let parsed = TlogProof::parse(&text).unwrap();
    assert_eq!(parsed, p);
    let cp = verify_tlog_proof(&parsed, &leaf_hash(b"four"), &[verifier()], Some(ORIGIN)).unwrap();
    assert_eq!(cp, word_checkpoint(15));
}

#[test]
fn every_leaf_at_every_checkpoint() {
    for size in 1..=15u64 {
        for index in 0..size {
            let p = TlogProof::parse(&proof_for(index, size).to_text()).unwrap();
            let leaf = leaf_hash(crate::common::WORDS[index as usize].as_bytes());
            let cp = verify_tlog_proof(&p, &leaf, &[verifier()], Some(ORIGIN)).unwrap();
            assert_eq!(cp.size, size);
        }
    }
}

#[test]
fn altered_proofs_fail() {
    let p = proof_for(3, 15);
    let leaf = leaf_hash(b"four");
    let v = [verifier()];
    let verify = |p: &TlogProof, leaf: &Hash| verify_tlog_proof(p, leaf, &v, Some(ORIGIN));

    let mut q = p.clone();
    q.index = 4;
    assert!(matches!(
        verify(&q, &leaf),
        Err(Error::Verify(VerifyError::RootMismatch { .. }))
    ));
    q.index = 15;
    assert!(matches!(
        verify(&q, &leaf),
        Err(Error::Verify(VerifyError::IndexOutOfRange {
            index: 15,
            size: 15
        }))
    ));

    for j in 0..p.proof.len() {
        let mut q = p.clone();
        q.proof[j] = flip(&q.proof[j], j * 11);
        assert!(verify(&q, &leaf).is_err());
    }
    let mut q = p.clone();
    q.proof.pop();
    assert!(matches!(
        verify(&q, &leaf),
        Err(Error::Verify(VerifyError::WrongProofSize { .. }))
    ));

    assert!(verify(&p, &leaf_hash(b"five")).is_err());
    assert!(verify(&p, &leaf_hash(b"four\n")).is_err());

    // Another (genuine) checkpoint, of a different size.
    let mut q = p.clone();
    q.checkpoint = checkpoint_file(14);
    assert!(verify(&q, &leaf).is_err());
    // A tampered checkpoint.
    let mut q = p.clone();
    q.checkpoint = q.checkpoint.replacen("\n15\n", "\n14\n", 1);
    assert!(matches!(
        verify(&q, &leaf),
        Err(Error::Note(NoteError::BadSignature { .. }))
    ));
    // Wrong origin expected.
    assert!(matches!(
        verify_tlog_proof(&p, &leaf, &v, Some("example.com/other")),
        Err(Error::Checkpoint(CheckpointError::OriginMismatch { .. }))
    ));
    // Unknown key only.
    let other = trailmark_log::SignerKey::from_seed("x", [3; 32])
        .unwrap()
        .verifier();
    assert!(matches!(
        verify_tlog_proof(&p, &leaf, &[other], None),
        Err(Error::Note(NoteError::NoKnownSignature { .. }))
    ));
}

#[test]
fn extra_data_round_trips_and_is_not_trusted() {
    let p = proof_for(0, 7);
    let text = p.to_text_with_extra(Some(b"age-v1.2.1-darwin-arm64.tar.gz"));
    assert!(text.starts_with(
        "c2sp.org/tlog-proof@v1\nextra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6\nindex 0\n"
    ));
    let (q, extra) = TlogProof::parse_with_extra(&text).unwrap();
    assert_eq!(q, p);
    assert_eq!(
        extra.as_deref(),
        Some(&b"age-v1.2.1-darwin-arm64.tar.gz"[..])
    );
    // parse() accepts the line and drops it.
    assert_eq!(TlogProof::parse(&text).unwrap(), p);
    assert_eq!(TlogProof::parse_with_extra(&p.to_text()).unwrap().1, None);
    // The spec's own example extra line (unpadded, 52 characters) decodes.
    let spec_extra = "YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ";
    let text = p
        .to_text()
        .replacen("index 0\n", &format!("extra {spec_extra}\nindex 0\n"), 1);
    let (q, extra) = TlogProof::parse_with_extra(&text).unwrap();
    assert_eq!(q, p);
    assert_eq!(extra.map(|e| e.len()), Some(39));
}

#[test]
fn size_one_proof_has_no_hash_lines() {
    let p = proof_for(0, 1);
    assert!(p.proof.is_empty());
    let text = p.to_text();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 0\n\nexample.com/testdata\n1\n"));
    assert_eq!(TlogProof::parse(&text).unwrap(), p);
    verify_tlog_proof(&p, &leaf_hash(b"one"), &[verifier()], Some(ORIGIN)).unwrap();
}

#[test]
fn malformed_proof_files_rejected() {
    let good = proof_for(3, 15).to_text();
    let hash_line = proof_for(3, 15).proof[0].to_base64();
    let cp = checkpoint_file(15);
    let cases: Vec<(String, &str)> = vec![
        (
            String::new(),
            "tlog-proof line 1: expected \"c2sp.org/tlog-proof@v1\", got \"\"",
        ),
        (
            good.replacen("@v1", "@v2", 1),
            "tlog-proof line 1: expected \"c2sp.org/tlog-proof@v1\", got \"c2sp.org/tlog-proof@v2\"",
        ),
        (
            good.replacen("index 3", "index 03", 1),
            "tlog-proof line 2: index '03' has a leading zero",
        ),
        (
            good.replacen("index 3", "index -3", 1),
            "tlog-proof line 2: index '-3' is not a decimal number that fits in 64 bits",
        ),
        (
            good.replacen("index 3", "index 18446744073709551616", 1),
            "tlog-proof line 2: index '18446744073709551616' is not a decimal number that fits in 64 bits",
        ),
        (
            good.replacen("index 3", "index  3", 1),
            "tlog-proof line 2: index ' 3' is not a decimal number that fits in 64 bits",
        ),
        (
            good.replacen("index 3", "Index 3", 1),
            "tlog-proof line 2: expected \"index <N>\"",
        ),
        (
            good.replacen("index 3\n", "extra !!\nindex 3\n", 1),
            "tlog-proof line 2: extra data is not valid base64",
        ),
        (
            good.replacen("index 3\n", "extra AAAA\nextra AAAA\nindex 3\n", 1),
            "tlog-proof line 3: expected \"index <N>\"",
        ),
        (
            "c2sp.org/tlog-proof@v1\n".to_owned(),
            "tlog-proof line 2: expected \"index <N>\"",
        ),
        (
            good.replacen(&hash_line, "AAAA", 1),
            "tlog-proof line 3: proof hash is invalid: hash must be 32 bytes, got 3",
        ),
        (
            good.replacen(&hash_line, &format!("{hash_line} "), 1),
            "tlog-proof line 3: proof hash is invalid: hash is not valid base64",
        ),
        (
            good.replace('\n', "\r\n"),
            "tlog-proof line 1 contains control character U+000D",
        ),
        (
            format!("c2sp.org/tlog-proof@v1\nindex 3\n{hash_line}\n"),
            "tlog-proof ends before the empty line that precedes the checkpoint",
        ),
        (
            format!("c2sp.org/tlog-proof@v1\nindex 3\n{hash_line}"),
            "tlog-proof ends before the empty line that precedes the checkpoint",
        ),
        (
            "c2sp.org/tlog-proof@v1\nindex 3\n\n".to_owned(),
            "tlog-proof checkpoint is not a signed note: note has no empty line separating the text from the signatures",
        ),
        (
            format!(
                "c2sp.org/tlog-proof@v1\nindex 3\n{}\n{cp}",
                format!("{hash_line}\n").repeat(65)
            ),
            "tlog-proof has more than 64 proof hashes",
        ),
    ];
    for (text, want) in &cases {
        let err = TlogProof::parse(text).unwrap_err();
        assert!(matches!(err, Error::ProofFile(_)), "{text:?}: {err:?}");
        assert!(
            err.to_string().starts_with(want),
            "{text:?}:\n got {err}\nwant {want}"
        );
    }
    // A second empty line becomes part of the "verbatim" checkpoint: the
    // file parses, but the checkpoint then starts with an empty line, which
    // is not what was signed.
    let doubled = format!("{}\n\n{cp}", &good[..good.len() - cp.len() - 1]);
    let p = TlogProof::parse(&doubled).unwrap();
    assert!(verify_tlog_proof(&p, &leaf_hash(b"four"), &[verifier()], None).is_err());
    // Trailing garbage after the checkpoint makes the note malformed.
    let err = TlogProof::parse(&format!("{good}x")).unwrap_err();
    assert!(matches!(
        err,
        Error::ProofFile(ProofFileError::CheckpointNote { .. })
    ));
}
