//! The SQLite access store: orgs, projects, users, grants, tokens, and secrets at rest.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use trailmark_access::{
    AccessError, AccessStore, Decision, Grant, OrgName, Permission, PrincipalKind, ProjectName,
    Role, Scope, TokenId,
};

const PASSWORD: &str = "correct horse battery staple";

fn t0() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

fn org(name: &str) -> OrgName {
    name.parse().unwrap()
}

fn scope(text: &str) -> Scope {
    text.parse().unwrap()
}

fn grant(text: &str) -> Grant {
    text.parse().unwrap()
}

/// A store with orgs acme (projects payments, web) and globex (project app).
fn seeded() -> AccessStore {
    let store = AccessStore::open_in_memory().unwrap();
    seed(&store);
    store
}

fn seed(store: &AccessStore) {
    for o in ["acme", "globex"] {
        store.create_org(&org(o)).unwrap();
    }
    for (o, p) in [("acme", "payments"), ("acme", "web"), ("globex", "app")] {
        store
            .create_project(&org(o), &ProjectName::parse(p).unwrap())
            .unwrap();
    }
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<AccessStore>();
    check::<trailmark_access::OidcVerifier>();
}

fn orgs_and_projects(store: AccessStore) {
    seed(&store);
    assert_eq!(store.orgs().unwrap(), [org("acme"), org("globex")]);
    let projects: Vec<String> = store
        .projects(&org("acme"))
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(projects, ["payments", "web"]);

    assert_eq!(
        store.create_org(&org("acme")),
        Err(AccessError::Duplicate {
            what: "org",
            name: "acme".to_owned()
        })
    );
    let pay = ProjectName::parse("payments").unwrap();
    assert!(matches!(
        store.create_project(&org("acme"), &pay),
        Err(AccessError::Duplicate {
            what: "project",
            ..
        })
    ));
    // The same project name in another org is a different project.
    store.create_project(&org("globex"), &pay).unwrap();
    assert!(matches!(
        store.create_project(&org("initech"), &pay),
        Err(AccessError::UnknownOrg { .. })
    ));
    assert!(matches!(
        store.projects(&org("initech")),
        Err(AccessError::UnknownOrg { .. })
    ));
}

fn users_and_passwords(store: AccessStore) {
    seed(&store);
    store.create_user("alice", PASSWORD).unwrap();
    store.create_user("bob.b", PASSWORD).unwrap();
    assert_eq!(store.users().unwrap(), ["alice", "bob.b"]);

    assert!(matches!(
        store.create_user("alice", PASSWORD),
        Err(AccessError::Duplicate { what: "user", .. })
    ));
    let short = store.create_user("carol", "elevenchars").unwrap_err();
    assert_eq!(short, AccessError::PasswordTooShort { min: 12 });
    assert!(
        short.to_string().contains("at least 12 characters"),
        "{short}"
    );
    assert!(matches!(
        store.create_user("Carol", PASSWORD),
        Err(AccessError::InvalidName {
            what: "user name",
            ..
        })
    ));

    let alice = store.authenticate_user("alice", PASSWORD).unwrap();
    assert_eq!(alice.id, "user:alice");
    assert_eq!(alice.kind, PrincipalKind::User);
    assert_eq!(alice.person.as_deref(), Some("alice"));
    assert!(alice.is_person());
    assert!(alice.grants.is_empty());

    // Unknown user, wrong password, invalid name: one uniform error.
    for (user, password) in [
        ("alice", "correct horse battery stapler"),
        ("alice", ""),
        ("mallory", PASSWORD),
        ("Not A Name", PASSWORD),
    ] {
        let err = store.authenticate_user(user, password).unwrap_err();
        assert_eq!(err, AccessError::BadCredentials, "{user}");
        assert!(err.is_client_error());
        assert!(!err.to_string().contains(password) || password.is_empty());
    }

    store
        .set_password("alice", "a brand new passphrase")
        .unwrap();
    assert_eq!(
        store.authenticate_user("alice", PASSWORD).unwrap_err(),
        AccessError::BadCredentials
    );
    store
        .authenticate_user("alice", "a brand new passphrase")
        .unwrap();
    assert!(matches!(
        store.set_password("mallory", "a brand new passphrase"),
        Err(AccessError::UnknownUser { .. })
    ));
}

fn grants_and_decisions(store: AccessStore) {
    seed(&store);
    store.create_user("alice", PASSWORD).unwrap();
    store
        .grant("alice", grant("developer@acme/payments"))
        .unwrap();
    store.grant("alice", grant("approver@acme")).unwrap();
    // Granting twice is harmless.
    store.grant("alice", grant("approver@acme")).unwrap();
    assert_eq!(
        store.grants("alice").unwrap(),
        [grant("approver@acme"), grant("developer@acme/payments")]
    );

    let alice = store.authenticate_user("alice", PASSWORD).unwrap();
    assert_eq!(
        alice.decide(Permission::Approve, &scope("acme/web")),
        Decision::Allow
    );
    assert_eq!(
        alice.decide(Permission::ReadEvidence, &scope("globex/app")),
        Decision::Deny
    );
    assert_eq!(
        alice.decide(Permission::ManageAccess, &scope("acme")),
        Decision::Deny
    );

    assert!(
        store
            .revoke_grant("alice", &grant("approver@acme"))
            .unwrap()
    );
    assert!(
        !store
            .revoke_grant("alice", &grant("approver@acme"))
            .unwrap()
    );
    assert_eq!(
        store.grants("alice").unwrap(),
        [grant("developer@acme/payments")]
    );
    let alice = store.user_principal("alice").unwrap();
    assert_eq!(
        alice.decide(Permission::Approve, &scope("acme/web")),
        Decision::Deny
    );

    assert!(matches!(
        store.grant("mallory", grant("admin@acme")),
        Err(AccessError::UnknownUser { .. })
    ));
    assert!(matches!(
        store.grant("alice", grant("admin@initech")),
        Err(AccessError::UnknownOrg { .. })
    ));
    assert!(matches!(
        store.grant("alice", grant("admin@acme/nope")),
        Err(AccessError::UnknownProject { .. })
    ));
    assert!(matches!(
        store.grants("mallory"),
        Err(AccessError::UnknownUser { .. })
    ));
    assert!(matches!(
        store.revoke_grant("mallory", &grant("admin@acme")),
        Err(AccessError::UnknownUser { .. })
    ));
}

fn machine_token_lifecycle(store: AccessStore) {
    seed(&store);
    let later = t0() + SignedDuration::from_hours(24);
    let (secret, info) = store
        .create_token(
            "ci payments",
            grant("ingest@acme/payments"),
            None,
            Some(later),
            "user:root",
            t0(),
        )
        .unwrap();
    let text = secret.expose().to_owned();
    assert!(
        text.starts_with(&format!("tmk_{}_", info.id)),
        "token shape"
    );
    assert_eq!(text.len(), 4 + 8 + 1 + 43);
    assert_eq!(format!("{secret:?}"), "TokenSecret(<redacted>)");
    assert!(!format!("{info:?}").contains(&text[13..]));
    assert_eq!(info.name, "ci payments");
    assert_eq!(info.owner, None);
    assert!(!info.is_person());
    assert_eq!(info.created_at, t0());
    assert_eq!(info.expires_at, Some(later));
    assert_eq!(info.created_by, "user:root");
    assert!(info.is_active(t0()));

    let p = store.authenticate_token(&text, t0()).unwrap();
    assert_eq!(p.id, format!("token:{}", info.id));
    assert_eq!(p.kind, PrincipalKind::Token);
    assert!(!p.is_person());
    assert_eq!(p.grants, [grant("ingest@acme/payments")]);
    assert!(
        p.decide(Permission::WriteEvidence, &scope("acme/payments"))
            .is_allow()
    );
    assert!(
        !p.decide(Permission::WriteEvidence, &scope("acme/web"))
            .is_allow()
    );
    assert!(
        !p.decide(Permission::ReadEvidence, &scope("acme/payments"))
            .is_allow()
    );

    // Listing, by org and in total.
    assert_eq!(store.tokens(None).unwrap(), std::slice::from_ref(&info));
    assert_eq!(
        store.tokens(Some(&org("acme"))).unwrap(),
        std::slice::from_ref(&info)
    );
    assert!(store.tokens(Some(&org("globex"))).unwrap().is_empty());
    assert_eq!(store.token(&info.id).unwrap(), info);

    // Expiry: valid until just before `expires_at`.
    let just_before = later - SignedDuration::from_nanos(1);
    store.authenticate_token(&text, just_before).unwrap();
    assert_eq!(
        store.authenticate_token(&text, later).unwrap_err(),
        AccessError::ExpiredToken {
            id: info.id.clone(),
            expired_at: later
        }
    );

    // Revocation.
    let revoked_at = t0() + SignedDuration::from_mins(5);
    let revoked = store.revoke_token(&info.id, revoked_at).unwrap();
    assert_eq!(revoked.revoked_at, Some(revoked_at));
    assert!(!revoked.is_active(revoked_at));
    assert_eq!(store.token(&info.id).unwrap(), revoked);
    assert_eq!(
        store.authenticate_token(&text, revoked_at).unwrap_err(),
        AccessError::RevokedToken {
            id: info.id.clone(),
            revoked_at
        }
    );
    assert_eq!(
        store.revoke_token(&info.id, later).unwrap_err(),
        AccessError::AlreadyRevoked {
            id: info.id.clone(),
            revoked_at
        }
    );
    // Listed with its revocation.
    assert_eq!(store.tokens(None).unwrap(), [revoked]);
}

fn token_authentication_errors(store: AccessStore) {
    seed(&store);
    let (secret, info) = store
        .create_token("t", grant("auditor@acme"), None, None, "user:root", t0())
        .unwrap();
    let text = secret.expose();

    // Wrong secret for a real id: indistinguishable from an unknown id. (A middle character
    // of the secret is changed, so the text stays canonical base64.)
    let flipped = if &text[20..21] == "x" { "y" } else { "x" };
    let wrong_secret = format!("{}{flipped}{}", &text[..20], &text[21..]);
    let err = store.authenticate_token(&wrong_secret, t0()).unwrap_err();
    assert_eq!(
        err,
        AccessError::UnknownToken {
            id: info.id.clone()
        }
    );
    assert!(!err.to_string().contains(&wrong_secret[13..]));

    let unknown = format!("tmk_aaaaaaaa_{}", &text[13..]);
    assert!(matches!(
        store.authenticate_token(&unknown, t0()),
        Err(AccessError::UnknownToken { .. })
    ));

    for malformed in [
        "",
        "Bearer tmk",
        &text[..text.len() - 1],
        &format!("{text}x"),
        &text.replace("tmk_", "tmq_"),
        &text.to_uppercase(),
    ] {
        let err = store.authenticate_token(malformed, t0()).unwrap_err();
        assert!(
            matches!(err, AccessError::MalformedToken { .. }),
            "{malformed}: {err}"
        );
        assert!(err.is_client_error());
        let message = format!("{err} {err:?}");
        assert!(
            !message.contains(&text[13..30]),
            "echoes the secret: {message}"
        );
    }

    // A revoked or expired token whose secret is not presented says only "unknown".
    store.revoke_token(&info.id, t0()).unwrap();
    assert!(matches!(
        store.authenticate_token(&wrong_secret, t0()),
        Err(AccessError::UnknownToken { .. })
    ));
    assert!(matches!(
        store.revoke_token(&TokenId::parse("zzzzzzzz").unwrap(), t0()),
        Err(AccessError::UnknownToken { .. })
    ));
}

fn token_creation_is_checked(store: AccessStore) {
    seed(&store);
    let create = |g: &str, owner: Option<&str>, expires: Option<Timestamp>| {
        store.create_token("t", grant(g), owner, expires, "user:root", t0())
    };
    assert!(matches!(
        create("ingest@initech", None, None),
        Err(AccessError::UnknownOrg { .. })
    ));
    assert!(matches!(
        create("ingest@acme/nope", None, None),
        Err(AccessError::UnknownProject { .. })
    ));
    assert!(matches!(
        create("developer@acme", Some("ghost"), None),
        Err(AccessError::UnknownUser { .. })
    ));
    assert!(matches!(
        create("developer@acme", None, Some(t0())),
        Err(AccessError::ExpiryNotInFuture { .. })
    ));
    for bad in ["", "   ", "a\nb", &"x".repeat(101)] {
        assert!(matches!(
            store.create_token(bad, grant("developer@acme"), None, None, "user:root", t0()),
            Err(AccessError::InvalidName {
                what: "token name",
                ..
            })
        ));
    }
    assert!(store.tokens(None).unwrap().is_empty());

    // Ids are distinct; listing keeps creation order and filters by the grant's org.
    let mut ids = Vec::new();
    for g in ["ingest@acme", "ingest@globex/app", "auditor@acme/web"] {
        ids.push(create(g, None, None).unwrap().1.id);
    }
    let all: Vec<TokenId> = store
        .tokens(None)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(all, ids);
    let acme: Vec<TokenId> = store
        .tokens(Some(&org("acme")))
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(acme, [ids[0].clone(), ids[2].clone()]);
}

fn person_token_is_limited_by_its_owner_current_grants(store: AccessStore) {
    seed(&store);
    store.create_user("alice", PASSWORD).unwrap();
    store
        .grant("alice", grant("release-manager@acme/payments"))
        .unwrap();
    store.grant("alice", grant("auditor@globex")).unwrap();

    // The token claims admin on all of acme; alice is only release manager on payments.
    let (secret, info) = store
        .create_token(
            "laptop",
            grant("admin@acme"),
            Some("alice"),
            None,
            "user:alice",
            t0(),
        )
        .unwrap();
    assert!(info.is_person());
    let p = store.authenticate_token(secret.expose(), t0()).unwrap();
    assert!(p.is_person());
    assert_eq!(p.person.as_deref(), Some("alice"));
    assert_eq!(p.grants, [grant("release-manager@acme/payments")]);

    let pay = scope("acme/payments");
    assert!(p.decide(Permission::ManageReleases, &pay).is_allow());
    assert!(
        !p.decide(Permission::ManageAccess, &pay).is_allow(),
        "owner cannot"
    );
    assert!(
        !p.decide(Permission::ReadEvidence, &scope("acme/web"))
            .is_allow(),
        "owner cannot"
    );
    assert!(
        !p.decide(Permission::ReadEvidence, &scope("globex/app"))
            .is_allow(),
        "token cannot"
    );

    // The token is narrower than the owner: its grant wins.
    let (secret2, _) = store
        .create_token(
            "ro",
            grant("developer@acme"),
            Some("alice"),
            None,
            "user:alice",
            t0(),
        )
        .unwrap();
    let p2 = store.authenticate_token(secret2.expose(), t0()).unwrap();
    assert_eq!(p2.grants, [grant("developer@acme/payments")]);
    assert!(p2.decide(Permission::ReadEvidence, &pay).is_allow());
    assert!(!p2.decide(Permission::WriteEvidence, &pay).is_allow());

    // Revoking the owner's grant takes effect at the token's next authentication.
    store
        .revoke_grant("alice", &grant("release-manager@acme/payments"))
        .unwrap();
    let p = store.authenticate_token(secret.expose(), t0()).unwrap();
    assert!(p.grants.is_empty());
    for perm in Permission::ALL {
        assert_eq!(p.decide(perm, &pay), Decision::Deny);
    }
}

#[test]
fn errors_classify_client_versus_environment() {
    let client = [
        AccessError::BadCredentials,
        AccessError::PasswordTooShort { min: 12 },
        AccessError::MalformedToken { reason: "x" },
        AccessError::Oidc(trailmark_access::OidcError::NoRuleMatched {
            issuer: "i".into(),
            subject: "s".into(),
        }),
    ];
    for e in client {
        assert!(e.is_client_error(), "{e}");
    }
    let environment = [
        AccessError::Storage {
            op: "x",
            message: "disk".into(),
        },
        AccessError::Incompatible("x".into()),
        AccessError::Oidc(trailmark_access::OidcError::Jwks {
            issuer: "i".into(),
            source_name: "u".into(),
            reason: "down".into(),
        }),
    ];
    for e in environment {
        assert!(!e.is_client_error(), "{e}");
    }
}

/// Every file SQLite may keep for the database: the main file, its WAL and shared memory.
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_secret_or_password_is_stored_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.db");
    let passwords = ["alice's very secret passphrase", "bob-password-0123456789"];
    let mut secrets = Vec::new();
    {
        let store = AccessStore::open(&path).unwrap();
        seed(&store);
        store.create_user("alice", passwords[0]).unwrap();
        store.create_user("bob", passwords[1]).unwrap();
        store.grant("alice", grant("admin@acme")).unwrap();
        for owner in [None, Some("alice")] {
            let (secret, _) = store
                .create_token(
                    "t",
                    grant("developer@acme"),
                    owner,
                    None,
                    "user:alice",
                    t0(),
                )
                .unwrap();
            secrets.push(secret.expose().to_owned());
        }
        // Scan while open (WAL not yet checkpointed) ...
        check_no_secrets(dir.path(), &passwords, &secrets);
    }
    // ... and after close, when SQLite has folded the WAL into the database.
    check_no_secrets(dir.path(), &passwords, &secrets);

    // Reopening works and the tokens still authenticate (the schema is not re-applied).
    let store = AccessStore::open(&path).unwrap();
    for s in &secrets {
        store.authenticate_token(s, t0()).unwrap();
    }
    store.authenticate_user("bob", passwords[1]).unwrap();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "access database is readable by others: {mode:o}"
        );
    }
}

fn check_no_secrets(dir: &Path, passwords: &[&str], secrets: &[String]) {
    let bytes = database_bytes(dir);
    assert!(
        contains(&bytes, b"$argon2id$"),
        "the scan sees the database contents"
    );
    for p in passwords {
        assert!(
            !contains(&bytes, p.as_bytes()),
            "password {p:?} stored in clear"
        );
    }
    for s in secrets {
        assert!(!contains(&bytes, s.as_bytes()), "token stored in clear");
        // The secret part alone (after `tmk_<id>_`), and a long piece of it.
        assert!(
            !contains(&bytes, &s.as_bytes()[13..]),
            "token secret stored in clear"
        );
        assert!(
            !contains(&bytes, &s.as_bytes()[13..29]),
            "part of a token secret stored"
        );
    }
}

#[test]
fn altered_schema_history_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.db");
    drop(AccessStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE schema_migrations SET sha256 = 'x' WHERE version = 1",
        [],
    )
    .unwrap();
    drop(conn);
    let err = AccessStore::open(&path).unwrap_err();
    assert!(matches!(err, AccessError::Incompatible(_)), "{err}");
    assert!(!err.is_client_error());
}

fn roles_round_trip_through_the_store(store: AccessStore) {
    seed(&store);
    store.create_user("u", PASSWORD).unwrap();
    for role in Role::ALL {
        for s in ["acme", "acme/web"] {
            store.grant("u", Grant::new(role, scope(s))).unwrap();
            let (_, info) = store
                .create_token("t", Grant::new(role, scope(s)), None, None, "x", t0())
                .unwrap();
            assert_eq!(
                store.token(&info.id).unwrap().grant,
                Grant::new(role, scope(s))
            );
        }
    }
    assert_eq!(store.grants("u").unwrap().len(), Role::ALL.len() * 2);
}

/// Unknown users cost one argon2 verification too. Without the dummy verification an unknown
/// user would answer hundreds of times faster than a wrong password; the bound here is loose
/// (a quarter) so a busy machine cannot make it flaky.
#[test]
fn unknown_user_takes_as_long_as_a_wrong_password() {
    let store = seeded();
    store.create_user("alice", PASSWORD).unwrap();
    let fastest = |user: &str| {
        (0..3)
            .map(|_| {
                let start = std::time::Instant::now();
                let err = store
                    .authenticate_user(user, "not the password")
                    .unwrap_err();
                assert_eq!(err, AccessError::BadCredentials);
                start.elapsed()
            })
            .min()
            .unwrap()
    };
    let wrong_password = fastest("alice");
    let unknown_user = fastest("nobody");
    assert!(
        unknown_user * 4 >= wrong_password,
        "unknown user {unknown_user:?} vs wrong password {wrong_password:?}"
    );
}

/// A fresh PostgreSQL database per test, dropped afterwards. PostgreSQL must be reachable at
/// 127.0.0.1:5432 (`.ci/run` starts it): if it is not, these tests fail, they never skip.
struct PgDatabase {
    name: String,
}

impl PgDatabase {
    fn create() -> PgDatabase {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("trailmark_access_{}_{n}", std::process::id());
        let mut admin = admin();
        // One statement per call: DROP/CREATE DATABASE cannot share an implicit transaction.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        PgDatabase { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

fn admin() -> postgres::Client {
    postgres::Client::connect("postgres://postgres@127.0.0.1:5432/test", postgres::NoTls)
        .expect("PostgreSQL must be running at 127.0.0.1:5432 (trust auth, database `test`)")
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Web sessions: known by their hash only, to every handle on the store; they lapse when idle
/// or too old (and are then removed), end on sign-out, and all of a user's end with a new
/// password; an unknown user gets none.
fn web_sessions(store: AccessStore) {
    use std::time::Duration;
    seed(&store);
    store
        .create_user("alice", "a long enough password")
        .unwrap();
    let (idle, max) = (Duration::from_secs(30 * 60), Duration::from_secs(12 * 3600));
    let at = |secs: i64| Timestamp::from_second(t0().as_second() + secs).unwrap();
    let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    assert!(matches!(
        store.start_session(&a, "nobody", at(0), max),
        Err(AccessError::UnknownUser { .. })
    ));
    store.start_session(&a, "alice", at(0), max).unwrap();
    store.start_session(&b, "alice", at(0), max).unwrap();
    assert_eq!(store.session_user(&c, at(1), idle, max).unwrap(), None);
    // Used every 20 minutes, the session stays alive past its idle limit from the start ...
    for k in 1..=3 {
        assert_eq!(
            store
                .session_user(&a, at(k * 20 * 60), idle, max)
                .unwrap()
                .as_deref(),
            Some("alice")
        );
    }
    // ... while the unused one lapsed, and is gone even for a generous limit afterwards.
    assert_eq!(
        store.session_user(&b, at(31 * 60), idle, max).unwrap(),
        None
    );
    assert_eq!(store.session_user(&b, at(31 * 60), max, max).unwrap(), None);
    // No session outlives its absolute limit, however busy.
    assert_eq!(
        store.session_user(&a, at(12 * 3600), max, max).unwrap(),
        None
    );
    // Sign-out ends one session; a new password ends them all.
    store.start_session(&a, "alice", at(0), max).unwrap();
    store.start_session(&b, "alice", at(0), max).unwrap();
    store.end_session(&a).unwrap();
    assert_eq!(store.session_user(&a, at(1), idle, max).unwrap(), None);
    assert_eq!(
        store.session_user(&b, at(1), idle, max).unwrap().as_deref(),
        Some("alice")
    );
    store
        .set_password("alice", "another long password")
        .unwrap();
    assert_eq!(store.session_user(&b, at(1), idle, max).unwrap(), None);
    store.start_session(&c, "alice", at(0), max).unwrap();
    assert_eq!(store.end_sessions_of("alice").unwrap(), 1);
}

/// Sign-ins through the identity provider: finished once, within their lifetime, and no more
/// under way than the cap.
fn pending_logins(store: AccessStore) {
    use std::time::Duration;
    let ten = Duration::from_secs(600);
    let at = |secs: i64| Timestamp::from_second(t0().as_second() + secs).unwrap();
    let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    assert!(
        store
            .start_pending_login(&a, "n1", "v1", "/ui/", at(0), ten, 2)
            .unwrap()
    );
    assert!(
        store
            .start_pending_login(&b, "n2", "v2", "/ui/x", at(0), ten, 2)
            .unwrap()
    );
    // The cap: a third is refused while two are under way.
    assert!(
        !store
            .start_pending_login(&c, "n3", "v3", "/ui/", at(1), ten, 2)
            .unwrap()
    );
    assert_eq!(
        store.take_pending_login(&a, at(599), ten).unwrap(),
        Some(("n1".into(), "v1".into(), "/ui/".into()))
    );
    // Once only.
    assert_eq!(store.take_pending_login(&a, at(599), ten).unwrap(), None);
    // Too late: refused, and gone.
    assert_eq!(store.take_pending_login(&b, at(600), ten).unwrap(), None);
    assert_eq!(store.take_pending_login(&b, at(1), ten).unwrap(), None);
    // Expired ones do not count against the cap.
    assert!(
        store
            .start_pending_login(&a, "n1", "v1", "/ui/", at(0), ten, 1)
            .unwrap()
    );
    assert!(
        store
            .start_pending_login(&c, "n3", "v3", "/ui/", at(601), ten, 1)
            .unwrap()
    );
}

/// Failed sign-ins per user name: counted in a window that starts at the first failure,
/// case-insensitively, cleared by a success, forgotten when the window is over.
fn login_failures(store: AccessStore) {
    use std::time::Duration;
    let w = Duration::from_secs(900);
    let at = |secs: i64| Timestamp::from_second(t0().as_second() + secs).unwrap();
    assert_eq!(store.login_failures("alice", at(0), w).unwrap(), 0);
    assert_eq!(store.record_login_failure("Alice", at(0), w).unwrap(), 1);
    assert_eq!(store.record_login_failure("alice", at(10), w).unwrap(), 2);
    assert_eq!(store.record_login_failure("bob", at(10), w).unwrap(), 1);
    assert_eq!(store.login_failures("ALICE", at(899), w).unwrap(), 2);
    // The window started at the first failure: at 900 s it is over, and a new one begins.
    assert_eq!(store.login_failures("alice", at(900), w).unwrap(), 0);
    assert_eq!(store.record_login_failure("alice", at(900), w).unwrap(), 1);
    store.clear_login_failures("ALICE").unwrap();
    assert_eq!(store.login_failures("alice", at(901), w).unwrap(), 0);
    // Bob's window started at his first failure, at 10 s.
    assert_eq!(store.login_failures("bob", at(909), w).unwrap(), 1);
    assert_eq!(store.login_failures("bob", at(910), w).unwrap(), 0);
}

/// The backend-neutral store tests, once per backend.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test]
            fn $name() {
                super::$name(super::AccessStore::open_in_memory().unwrap());
            })*
        }
        mod on_postgres {
            $(#[test]
            fn $name() {
                let db = super::PgDatabase::create();
                super::$name(super::AccessStore::open_postgres(&db.url()).unwrap());
            })*
        }
    };
}

per_backend!(
    orgs_and_projects,
    users_and_passwords,
    grants_and_decisions,
    machine_token_lifecycle,
    token_authentication_errors,
    token_creation_is_checked,
    person_token_is_limited_by_its_owner_current_grants,
    roles_round_trip_through_the_store,
    web_sessions,
    pending_logins,
    login_failures,
);

/// Two handles on one PostgreSQL database see each other's changes at once: a token created or
/// revoked through one instance is known to the other (what makes instances stateless).
#[test]
fn postgres_instances_share_access_state() {
    let db = PgDatabase::create();
    let a = AccessStore::open_postgres(&db.url()).unwrap();
    let b = AccessStore::open_postgres(&db.url()).unwrap();
    assert!(a.is_postgres());
    seed(&a);
    let (secret, info) = a
        .create_token(
            "ci",
            grant("ingest@acme/payments"),
            None,
            None,
            "test",
            t0(),
        )
        .unwrap();
    let p = b.authenticate_token(secret.expose(), t0()).unwrap();
    assert_eq!(p.grants, vec![grant("ingest@acme/payments")]);
    b.revoke_token(&info.id, t0()).unwrap();
    assert!(matches!(
        a.authenticate_token(secret.expose(), t0()),
        Err(AccessError::RevokedToken { .. })
    ));
    // Reopening checks the applied migration instead of re-applying it.
    drop(AccessStore::open_postgres(&db.url()).unwrap());

    // A session the server drops (restart, failover) is replaced at the next call, once the
    // old one is seen closed.
    let mut admin = admin();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .unwrap();
    let mut recovered = false;
    for _ in 0..3 {
        if a.orgs().is_ok() {
            recovered = true;
            break;
        }
    }
    assert!(
        recovered,
        "the access store reconnects after its session was terminated"
    );
    assert!(a.tokens(None).unwrap().iter().any(|t| t.id == info.id));
}
