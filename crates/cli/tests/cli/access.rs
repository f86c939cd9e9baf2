//! `trailmark org|user|token`: access managed from the command line, with every change in the log.

use crate::{Env, code, stderr};

#[test]
fn tokens_users_and_orgs_are_managed_and_logged() {
    let env = Env::new();
    env.init();
    env.ok(&["org", "create", "acme"]);
    env.ok(&["org", "project", "acme/payments"]);
    let dup = env.run(&["org", "create", "acme"]);
    assert_eq!(code(&dup), 2, "a duplicate is the user's mistake");
    assert!(stderr(&dup).contains("acme"), "{}", stderr(&dup));
    let bad = env.run(&["org", "project", "nosuch/payments"]);
    assert_eq!(code(&bad), 2);
    let orgs = env.ok(&["org", "list"]);
    assert!(orgs.contains(r#""projects":["payments"]"#), "{orgs}");

    // A token: printed once on stdout, listed without its secret, hashed at rest.
    let token = env.ok(&[
        "token",
        "create",
        "--name",
        "payments CI",
        "--role",
        "ingest",
        "--scope",
        "acme/payments",
        "--expires",
        "30d",
    ]);
    let token = token.trim();
    assert!(token.starts_with("tmk_"), "{token}");
    let id = token.split('_').nth(1).expect("tmk_<id>_<secret>");
    let listed = env.ok(&["token", "list", "--org", "acme"]);
    assert!(listed.contains(id) && !listed.contains(token), "{listed}");
    assert!(
        listed.contains(r#""expires_at":"2"#),
        "an expiry 30 days out: {listed}"
    );
    let db = std::fs::read(env.dir.join("access.db")).expect("access db");
    // The whole secret: it is URL-safe base64, which may itself contain '_'.
    let secret = token.splitn(3, '_').nth(2).expect("secret part");
    assert_eq!(secret.len(), 43, "{token}");
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "only the token's hash is stored"
    );
    for (args, what) in [
        (
            vec![
                "token", "create", "--name", "x", "--role", "root", "--scope", "acme",
            ],
            "root",
        ),
        (
            vec![
                "token", "create", "--name", "x", "--role", "ingest", "--scope", "Acme!",
            ],
            "Acme!",
        ),
        (
            vec![
                "token",
                "create",
                "--name",
                "x",
                "--role",
                "ingest",
                "--scope",
                "acme",
                "--expires",
                "soon",
            ],
            "soon",
        ),
        (
            vec![
                "token", "create", "--name", "x", "--role", "ingest", "--scope", "ghost",
            ],
            "ghost",
        ),
    ] {
        let out = env.run(&args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(stderr(&out).contains(what), "{args:?}: {}", stderr(&out));
    }
    env.ok(&["token", "revoke", id]);
    let again = env.run(&["token", "revoke", id]);
    assert_eq!(code(&again), 2, "{}", stderr(&again));
    assert!(stderr(&again).contains("revoked"), "{}", stderr(&again));

    // A user: the password from stdin, hashed; grants and revocations.
    let short = env.run_stdin(
        &["user", "create", "alice", "--org", "acme"],
        Some("short\n"),
    );
    assert_eq!(code(&short), 2);
    let out = env.run_stdin(
        &["user", "create", "alice", "--org", "acme"],
        Some("correct horse battery staple\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let db = std::fs::read(env.dir.join("access.db")).expect("access db");
    assert!(
        !db.windows(12).any(|w| w == b"correct hors"),
        "passwords are hashed"
    );
    env.ok(&[
        "user", "grant", "alice", "--role", "auditor", "--scope", "acme",
    ]);
    let users = env.ok(&["user", "list"]);
    assert!(
        users.contains(r#""role":"auditor","scope":"acme""#),
        "{users}"
    );
    env.ok(&[
        "user", "revoke", "alice", "--role", "auditor", "--scope", "acme",
    ]);
    let none = env.run(&[
        "user", "revoke", "alice", "--role", "auditor", "--scope", "acme",
    ]);
    assert_eq!(code(&none), 2);

    // Every change is evidence, and the log still verifies.
    for kind in [
        "access.org_created",
        "access.project_created",
        "access.token_created",
        "access.token_revoked",
        "access.user_created",
        "access.role_granted",
        "access.role_revoked",
    ] {
        let lines = env.ok(&["log", "--kind", kind]);
        assert_eq!(lines.lines().count(), 1, "{kind}: {lines}");
        assert!(
            lines.contains(r#""actor":"local:"#),
            "{kind} names the operator"
        );
    }
    env.ok(&["verify"]);
}
