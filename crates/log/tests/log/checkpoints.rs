//! The serverless-log checkpoints: rebuilt byte for byte from the leaves and
//! the published signing key, and verified with the published verifier.

use trailmark_log::{
    Checkpoint, CheckpointError, Error, Frontier, NoteError, consistency_proof, verify_checkpoint,
    verify_consistency,
};

use crate::common::{
    MemTree, ORIGIN, checkpoint_file, signer, verifier, word_checkpoint, word_leaves,
};

#[test]
fn signature_lines_use_em_dash() {
    // U+2014 EM DASH is E2 80 94 in UTF-8; a hyphen or en dash would not verify.
    for n in 0..=15 {
        let text = checkpoint_file(n);
        let sig_line = text.lines().last().unwrap();
        assert!(
            sig_line.as_bytes().starts_with(b"\xE2\x80\x94 astra "),
            "{n}"
        );
    }
}

#[test]
fn checkpoints_reproduced_byte_for_byte() {
    let key = signer();
    for n in 0..=15 {
        let checkpoint = word_checkpoint(n);
        let text = checkpoint.sign(&key).unwrap();
        assert_eq!(text, checkpoint_file(n), "checkpoint.{n}");
        // SignerKey::sign over the body is the same thing.
        assert_eq!(key.sign(&checkpoint.body()).unwrap(), text);
    }
}

#[test]
fn checkpoints_verify() {
    let v = [verifier()];
    for n in 0..=15 {
        let text = checkpoint_file(n);
        let cp = verify_checkpoint(&text, &v, Some(ORIGIN)).unwrap();
        assert_eq!(cp, word_checkpoint(n));
        assert_eq!(cp.size, n as u64);
        assert!(cp.extensions.is_empty());
        // No origin check requested: still verifies.
        assert_eq!(verify_checkpoint(&text, &v, None).unwrap(), cp);
    }
}

#[test]
fn checkpoint_wrong_origin_rejected() {
    let err = verify_checkpoint(
        &checkpoint_file(3),
        &[verifier()],
        Some("example.com/other"),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::Checkpoint(CheckpointError::OriginMismatch { .. })
    ));
    assert_eq!(
        err.to_string(),
        "checkpoint origin \"example.com/testdata\" is not the expected origin \"example.com/other\""
    );
}

#[test]
fn checkpoint_tampered_size_rejected() {
    let text = checkpoint_file(15).replacen("\n15\n", "\n16\n", 1);
    let err = verify_checkpoint(&text, &[verifier()], Some(ORIGIN)).unwrap_err();
    assert!(matches!(err, Error::Note(NoteError::BadSignature { .. })));
    assert_eq!(
        err.to_string(),
        "signature by astra+cad5a3d2 does not verify"
    );
}

#[test]
fn checkpoints_are_consistent_with_each_other() {
    let leaves = word_leaves();
    let tree = MemTree::new(&leaves);
    let v = [verifier()];
    for old in 1..=15u64 {
        for new in old..=15u64 {
            let cp_old = verify_checkpoint(&checkpoint_file(old as usize), &v, None).unwrap();
            let cp_new = verify_checkpoint(&checkpoint_file(new as usize), &v, None).unwrap();
            let proof = consistency_proof(old, new, &mut tree.source(new)).unwrap();
            verify_consistency(old, new, &cp_old.root, &cp_new.root, &proof).unwrap();
        }
    }
}

#[test]
fn frontier_restored_from_parts_continues_the_log() {
    let leaves = word_leaves();
    let tree = MemTree::new(&leaves);
    for n in 0..=15usize {
        let ids = Frontier::ids(n as u64);
        let hashes = ids.iter().map(|id| tree.node(*id).unwrap()).collect();
        let mut f = Frontier::from_parts(n as u64, hashes).unwrap();
        for leaf in &leaves[n..] {
            f.append(*leaf, |_, _| {});
        }
        assert_eq!(f.root(), word_checkpoint(15).root);
    }
}

#[test]
fn checkpoint_body_parse_strict() {
    let good = word_checkpoint(7).body();
    assert_eq!(Checkpoint::parse_body(&good).unwrap(), word_checkpoint(7));

    let root = word_checkpoint(7).root.to_base64();
    let cases: &[(&str, &str)] = &[
        ("", "checkpoint does not end with a newline"),
        (
            "a\n1\n",
            "checkpoint has 2 lines, needs at least 3 (origin, size, root hash)",
        ),
        ("\n1\nROOT\n", "checkpoint line 1: origin is empty"),
        (
            "o\n01\nROOT\n",
            "checkpoint line 2: size '01' has a leading zero",
        ),
        (
            "o\n00\nROOT\n",
            "checkpoint line 2: size '00' has a leading zero",
        ),
        (
            "o\n+1\nROOT\n",
            "checkpoint line 2: size '+1' is not a decimal number",
        ),
        (
            "o\n-1\nROOT\n",
            "checkpoint line 2: size '-1' is not a decimal number",
        ),
        (
            "o\n\nROOT\n",
            "checkpoint line 2: size '' is not a decimal number",
        ),
        (
            "o\n1 \nROOT\n",
            "checkpoint line 2: size '1 ' is not a decimal number",
        ),
        (
            "o\n18446744073709551616\nROOT\n",
            "checkpoint line 2: size '18446744073709551616' does not fit in 64 bits",
        ),
        ("o\n1\nROOT", "checkpoint does not end with a newline"),
        (
            "o\n1\nROOT\n\n",
            "checkpoint line 4: extension lines must not be empty",
        ),
        (
            "o\n1\nROOT\next\n\n",
            "checkpoint line 5: extension lines must not be empty",
        ),
        (
            "o\r\n1\nROOT\n",
            "checkpoint line 1 contains control character U+000D",
        ),
        (
            "o\n1\nAAAA\n",
            "checkpoint line 3: root hash 'AAAA' is invalid: hash must be 32 bytes, got 3",
        ),
    ];
    for (body, want) in cases {
        let body = body.replace("ROOT", &root);
        let err = Checkpoint::parse_body(&body).unwrap_err();
        assert_eq!(err.to_string(), *want, "{body:?}");
    }
    // Not canonical base64: the last character carries non-zero padding bits.
    let mut bad_root = root.clone();
    let c = if &root[42..43] == "B" { "V" } else { "B" };
    bad_root.replace_range(42..43, c);
    assert!(Checkpoint::parse_body(&format!("o\n1\n{bad_root}\n")).is_err());

    // Size 0 and u64::MAX are fine; extensions round-trip.
    let body = format!("o\n0\n{root}\n");
    assert_eq!(Checkpoint::parse_body(&body).unwrap().size, 0);
    let body = format!("o\n18446744073709551615\n{root}\next one\nx\n");
    let cp = Checkpoint::parse_body(&body).unwrap();
    assert_eq!(cp.size, u64::MAX);
    assert_eq!(cp.extensions, ["ext one", "x"]);
    assert_eq!(cp.body(), body);
}

#[test]
fn checkpoint_sign_refuses_unparseable_fields() {
    let mut cp = word_checkpoint(2);
    cp.origin = "a\nb".to_owned();
    assert!(cp.sign(&signer()).is_err());
    let mut cp = word_checkpoint(2);
    cp.extensions = vec!["x\ny".to_owned()];
    assert!(cp.sign(&signer()).is_err());
    let mut cp = word_checkpoint(2);
    cp.extensions = vec![String::new()];
    assert!(cp.sign(&signer()).is_err());
    let mut cp = word_checkpoint(2);
    cp.extensions = vec!["ok".to_owned()];
    let text = cp.sign(&signer()).unwrap();
    assert_eq!(
        verify_checkpoint(&text, &[verifier()], Some(ORIGIN)).unwrap(),
        cp
    );
}
