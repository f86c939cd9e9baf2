//! Signer and verifier key texts.

use trailmark_log::{Error, KeyError, SignerKey, VerifierKey, ed25519_key_id};

use crate::common::{SIGNER, VERIFIER, signer, verifier};

fn key_err(r: Result<impl std::fmt::Debug, Error>) -> KeyError {
    match r {
        Err(Error::Key(e)) => e,
        other => panic!("expected a key error, got {other:?}"),
    }
}

#[test]
fn signer_round_trip() {
    let key = signer();
    assert_eq!(key.to_string(), SIGNER);
    assert_eq!(key.name(), "astra");
    assert_eq!(key.key_id(), [0xca, 0xd5, 0xa3, 0xd2]);
    let again: SignerKey = SIGNER.parse().unwrap();
    assert_eq!(again.to_string(), SIGNER);
    // A key file's trailing newline is tolerated.
    assert_eq!(
        SignerKey::parse(&format!("{SIGNER}\n"))
            .unwrap()
            .to_string(),
        SIGNER
    );
}

#[test]
fn verifier_derived_from_signer_is_the_published_one() {
    let derived = signer().verifier();
    assert_eq!(derived, verifier());
    assert_eq!(derived.to_string(), VERIFIER);
    let parsed: VerifierKey = VERIFIER.parse().unwrap();
    assert_eq!(parsed, derived);
    assert_eq!(parsed.name(), "astra");
    assert_eq!(parsed.key_id(), [0xca, 0xd5, 0xa3, 0xd2]);
    assert_eq!(
        ed25519_key_id("astra", parsed.public_key()),
        parsed.key_id()
    );
}

#[test]
fn key_id_is_hash_of_name_type_and_key() {
    // SHA-256("astra" || 0x0A || 0x01 || pubkey)[:4], spelled out.
    use sha2::{Digest, Sha256};
    let public = *verifier().public_key();
    let mut input = b"astra\n\x01".to_vec();
    input.extend_from_slice(&public);
    assert_eq!(Sha256::digest(&input)[..4], verifier().key_id());
    assert_eq!(verifier().key_id(), [0xca, 0xd5, 0xa3, 0xd2]);
}

#[test]
fn signer_debug_redacts_the_seed() {
    let debug = format!("{:?}", signer());
    assert!(debug.contains("astra"), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
    assert!(!debug.contains("ASgwwenlc0uu"), "{debug}");
    assert!(!debug.contains("28c0c1e9"), "{debug}"); // hex of the seed's start
    let debug = format!("{:?}", verifier());
    assert_eq!(debug, format!("VerifierKey({VERIFIER})"));
}

#[test]
fn from_seed_validates_names() {
    for (name, reason) in [
        ("", "it is empty"),
        ("a b", "it contains white space"),
        ("a\u{2003}b", "it contains white space"),
        ("a+b", "it contains '+'"),
    ] {
        let err = key_err(SignerKey::from_seed(name, [1; 32]));
        assert_eq!(
            err,
            KeyError::InvalidName {
                name: name.to_owned(),
                reason
            }
        );
    }
    let key = SignerKey::from_seed("example.com/log", [1; 32]).unwrap();
    let back = SignerKey::parse(&key.to_string()).unwrap();
    assert_eq!(back.verifier(), key.verifier());
    assert_eq!(
        VerifierKey::parse(&key.verifier().to_string()).unwrap(),
        key.verifier()
    );
}

#[test]
fn uppercase_key_id_accepted_like_go() {
    let upper = VERIFIER.replace("cad5a3d2", "CAD5A3D2");
    assert_eq!(VerifierKey::parse(&upper).unwrap(), verifier());
}

#[test]
fn bad_verifier_keys_rejected_with_clear_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "astra",
            "verifier key must have 3 '+'-separated fields, found 1",
        ),
        (
            "astra+cad5a3d2",
            "verifier key must have 3 '+'-separated fields, found 2",
        ),
        (
            "astra+cad5a3d3+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b",
            "key astra: key id cad5a3d3 does not match the id cad5a3d2 computed from the key",
        ),
        (
            "astro+cad5a3d2+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b",
            "key astro: key id cad5a3d2 does not match the id",
        ),
        (
            "astra+cad5a3+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b",
            "key id \"cad5a3\" is not 8 hexadecimal digits",
        ),
        (
            "astra+cad5a3zz+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b",
            "key id \"cad5a3zz\" is not 8 hexadecimal digits",
        ),
        (
            "astra+cad5a3d2+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4",
            "key material of astra is not valid base64",
        ),
        (
            "astra+cad5a3d2+ApJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b",
            "key astra has algorithm byte 0x02; only Ed25519 (0x01) is supported",
        ),
        (
            "astra+cad5a3d2+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jg==",
            "key astra: expected 33 bytes of key material (algorithm byte and key), got 31",
        ),
        (
            "astra+cad5a3d2+",
            "key astra: expected 33 bytes of key material (algorithm byte and key), got 0",
        ),
        (
            "+cad5a3d2+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b",
            "key name \"\" is invalid: it is empty",
        ),
        (
            "as tra+cad5a3d2+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b",
            "key name \"as tra\" is invalid: it contains white space",
        ),
    ];
    for (text, want) in cases {
        let err = key_err(VerifierKey::parse(text)).to_string();
        assert!(err.starts_with(want), "{text}: {err}");
    }
}

#[test]
fn invalid_public_key_point_rejected() {
    // Not every 32-byte string is a point; find some that are not and check
    // that they are refused before any key id comparison.
    let mut invalid = 0;
    for b in 0..=255u8 {
        let mut material = vec![1u8];
        material.extend_from_slice(&[b; 32]);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&material);
        let text = format!("k+00000000+{b64}");
        match key_err(VerifierKey::parse(&text)) {
            KeyError::InvalidPublicKey { .. } => invalid += 1,
            KeyError::KeyIdMismatch { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(invalid > 0);
}

#[test]
fn bad_signer_keys_rejected_with_clear_errors() {
    let cases: &[(&str, &str)] = &[
        (VERIFIER, "signer key must start with \"PRIVATE+KEY+\""),
        (
            "PRIVATE+KEY+astra",
            "signer key must have 5 '+'-separated fields, found 3",
        ),
        (
            "PRIVATE+KEY+astra+cad5a3d3+ASgwwenlc0uuYcdy7kI44pQvuz1fw8cS5NqS8RkZBXoy",
            "key astra: key id cad5a3d3 does not match the id cad5a3d2 computed from the key",
        ),
        (
            "PRIVATE+KEY+astra+cad5a3d2+Aigwwenlc0uuYcdy7kI44pQvuz1fw8cS5NqS8RkZBXoy",
            "key astra has algorithm byte 0x02",
        ),
        (
            "PRIVATE+KEY+astra+cad5a3d2+ASgwwenlc0uuYcdy7kI44pQv",
            "key astra: expected 33 bytes",
        ),
        (
            "PRIVATE+KEY+astra+cad5a3d2+ASgwwenlc0uuYcdy7kI44pQvuz1fw8cS5NqS8RkZBXo",
            "key material of astra is not valid base64",
        ),
    ];
    for (text, want) in cases {
        let err = key_err(SignerKey::parse(text)).to_string();
        assert!(err.starts_with(want), "{text}: {err}");
        // Error messages never contain the secret material.
        assert!(!err.contains("ASgwwenlc0uu"), "{err}");
    }
}
