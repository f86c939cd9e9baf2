//! What the offline verifier is built from. An auditor who checks a dossier "trusting nothing
//! of ours" builds this crate and reads what it compiles, so its dependency tree is part of what
//! they must trust. These tests read the tree cargo resolves for the crate on its own (as a
//! project vendoring it would get) and hold it free of database clients, network and TLS stacks
//! and git: the backends are features of the crates that have them, and only the crates that
//! open stores, serve HTTP or import repositories turn them on.

use std::collections::BTreeSet;
use std::process::Command;

/// The crates in `package`'s normal (non-dev, non-build) dependency tree, by name.
fn tree(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "--manifest-path", manifest])
        .args(["-p", package, "-e", "normal", "--prefix", "none"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Crates an offline verifier has no use for: SQLite's C library and its binding, PostgreSQL
/// clients, HTTP clients and servers, TLS and sockets, JWT and password hashing, git.
const NOT_IN_THE_VERIFIER: &[&str] = &[
    "libsqlite3-sys",
    "rusqlite",
    "postgres",
    "tokio-postgres",
    "deadpool-postgres",
    "ureq",
    "hyper",
    "rustls",
    "ring",
    "aws-lc-rs",
    "mio",
    "socket2",
    "jsonwebtoken",
    "argon2",
    "gix",
];

#[test]
fn the_verifier_builds_without_a_database_a_network_stack_or_git() {
    let crates = tree("trailmark-dossier");
    // What it does need is there: the log's proofs and signatures, the records, the policy
    // engine that recomputes gate decisions.
    for needed in [
        "trailmark-log",
        "trailmark-model",
        "trailmark-policy",
        "ed25519-dalek",
        "regorus",
    ] {
        assert!(crates.contains(needed), "{needed} missing from {crates:?}");
    }
    let found: Vec<&str> = NOT_IN_THE_VERIFIER
        .iter()
        .copied()
        .filter(|c| crates.contains(*c))
        .collect();
    assert!(
        found.is_empty(),
        "trailmark-dossier now depends on {found:?}; `cargo tree -p trailmark-dossier -e normal -i {}` shows through which crate. Backends belong behind the features of the crates that have them.",
        found[0]
    );
}

#[test]
fn the_cli_that_opens_stores_and_imports_git_brings_them() {
    // The same reading of the tree sees these crates where they are used, so the test above
    // would notice them too.
    let crates = tree("trailmark-cli");
    for used in ["libsqlite3-sys", "tokio-postgres", "gix", "ureq", "argon2"] {
        assert!(crates.contains(used), "{used} missing from the CLI's tree");
    }
}

/// Runs the standalone verifier binary (built from this crate alone) with `args`.
fn verifier(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trailmark-verify-dossier"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_standalone_verifier_reports_as_the_cli_does_with_its_exit_codes() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    let w = crate::build_verify::World::new();
    let id = w.release();
    let d = w.export(&id);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, serde_json::to_vec(&d).unwrap()).unwrap();
    let vkey = dir.path().join("log.vkey");
    std::fs::write(&vkey, format!("{}\n", w.signer.verifier())).unwrap();
    let key_text = w.signer.verifier().to_string();

    // Verified, with the key given as a file or as text: the report on stdout, exit 0.
    for key in [vkey.as_os_str(), key_text.as_ref()] {
        let (code, out, err) = verifier(&[good.as_os_str(), "--vkey".as_ref(), key]);
        assert_eq!(code, 0, "{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["records"], d.records.len());
        assert_eq!(report["failures"], serde_json::json!([]));
        assert!(err.starts_with("verified ("), "{err}");
    }

    // A record changed: exit 1, the failure named on stderr and in the report.
    let mut t = d.clone();
    let leaf = String::from_utf8(B64.decode(&t.records[1].leaf).unwrap()).unwrap();
    t.records[1].leaf = B64.encode(leaf.replacen("\"kind\":\"", "\"kind\":\"x", 1));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&t).unwrap()).unwrap();
    let (code, out, err) = verifier(&[bad.as_os_str(), "--vkey".as_ref(), vkey.as_os_str()]);
    assert_eq!(code, 1, "{err}");
    let what = format!("record {}: not in the log", t.records[1].index);
    assert!(err.contains(&what), "{err}");
    assert!(out.contains(&what), "{out}");

    // Another log's key: exit 1 (the checkpoint's signature does not verify).
    let other = trailmark_log::SignerKey::from_seed("test.example/log", [9u8; 32])
        .unwrap()
        .verifier()
        .to_string();
    let (code, _, err) = verifier(&[good.as_os_str(), "--vkey".as_ref(), other.as_ref()]);
    assert_eq!(code, 1, "{err}");

    // Bad usage and unreadable input: exit 2 with a message naming the problem.
    let not_json = dir.path().join("not.json");
    std::fs::write(&not_json, "{\"format\": ").unwrap();
    let missing = dir.path().join("missing.json");
    for (args, says) in [
        (vec![good.as_os_str()], "--vkey is required"),
        (vec!["--vkey".as_ref(), vkey.as_os_str()], "no dossier FILE"),
        (
            vec![
                good.as_os_str(),
                "--vkey".as_ref(),
                vkey.as_os_str(),
                "--fast".as_ref(),
            ],
            "unknown option \"--fast\"",
        ),
        (
            vec![good.as_os_str(), "--vkey".as_ref(), "nonsense".as_ref()],
            "neither a verifier key",
        ),
        (
            vec![missing.as_os_str(), "--vkey".as_ref(), vkey.as_os_str()],
            "missing.json",
        ),
        (
            vec![not_json.as_os_str(), "--vkey".as_ref(), vkey.as_os_str()],
            "not.json",
        ),
    ] {
        let (code, out, err) = verifier(&args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
