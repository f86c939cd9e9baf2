//! The web UI driven through `trailmark_web::app(state)` without a socket, on a real SQLite
//! store and access database: sign-in, sessions and CSRF, every page per role, approvals with
//! separation of duties, search, the record page's proof check, the log page.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use trailmark_access::{AccessStore, Grant, OrgName, ProjectName, Role, Scope};
use trailmark_ingest::identity::IdentityMap;
use trailmark_log::SignerKey;
use trailmark_model::{Kind, LogIndex};
use trailmark_policy::Governance;
use trailmark_server::governance;
use trailmark_server::{AppState, Config};
use trailmark_store::{Query, SqliteStore, Store};

const PASSWORD: &str = "a long enough password";
const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const RELEASE: &str = "/ui/releases/acme/payments/pay@1.0";
const POLICY: &str = r#"
name = "acme"
[approvals.release]
roles = ["approver"]
min = 1
[gates.production]
checks = ["approvals", "separation_of_duties"]
"#;

#[allow(missing_debug_implementations)]
struct Ui {
    _dir: tempfile::TempDir,
    state: AppState,
    app: Router,
}

#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The evidence digest a release page shows.
    fn digest(&self) -> String {
        let at = self
            .body
            .find("id=\"evidence-digest\">")
            .expect("digest shown")
            + 21;
        self.body[at..at + self.body[at..].find('<').expect("end")].to_owned()
    }

    /// The value of `name="csrf" value="..."` in a page.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a csrf token");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').expect("closing quote")].to_owned()
    }
}

fn org(s: &str) -> OrgName {
    s.parse().expect("org")
}

fn scope(s: &str) -> Scope {
    s.parse().expect("scope")
}

impl Ui {
    /// Organisations `acme` (projects payments, web) and `beta`; people with roles: alice and
    /// carol approve on acme (carol wrote the commit), rita manages releases, audra audits,
    /// dave develops on acme/web only, bea administers beta. A policy, carol's commit and the
    /// release `acme/payments/pay@1.0` linking it.
    fn new() -> Ui {
        Ui::with_config("")
    }

    /// [`Ui::new`] with more server configuration (TOML).
    fn with_config(extra: &str) -> Ui {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = SignerKey::from_seed("test.example/log", [7; 32]).expect("key");
        let store = Arc::new(
            SqliteStore::create(&dir.path().join("trailmark.db"), "test.example/log", signer)
                .expect("store"),
        );
        let access = Arc::new(AccessStore::open(&dir.path().join("access.db")).expect("access"));
        let s: &dyn Store = store.as_ref();
        for o in ["acme", "beta"] {
            governance::create_org(s, &access, "test", &org(o)).expect("org");
        }
        for p in ["payments", "web"] {
            let project: ProjectName = p.parse().expect("project");
            governance::create_project(s, &access, "test", &org("acme"), &project)
                .expect("project");
        }
        for (name, role, on) in [
            ("alice", Role::Approver, "acme"),
            ("carol", Role::Approver, "acme"),
            ("rita", Role::ReleaseManager, "acme"),
            ("audra", Role::Auditor, "acme"),
            ("dave", Role::Developer, "acme/web"),
            ("bea", Role::Admin, "beta"),
        ] {
            let o = org(on.split('/').next().unwrap_or(on));
            governance::create_user(s, &access, "test", &o, name, PASSWORD).expect("user");
            governance::grant(
                s,
                &access,
                "test",
                name,
                &Grant {
                    role,
                    scope: scope(on),
                },
            )
            .expect("grant");
        }
        let config = Config::from_toml(
            &format!("default_org = \"acme\"\nlisten = \"127.0.0.1:8080\"\n{extra}"),
            &BTreeMap::new(),
        )
        .expect("config");
        let state = AppState::new(store.clone(), access, config).expect("state");
        let people = IdentityMap::from_json(
            r#"{"people": [{"id": "carol", "identities": ["email:carol@example.com", "person:carol"]}]}"#,
        )
        .expect("people");
        state.set_people(people.clone());

        let commit = trailmark_model::input::from_value(&json!({
            "kind": "git.commit",
            "subjects": [{"type": "commit", "id": SHA}, {"type": "project", "id": "acme/payments"}],
            "actor": "email:carol@example.com",
            "links": [{"rel": "references", "to": {"type": "ticket", "id": "PAY-7"}}],
            "payload": {"author": {"name": "Carol", "email": "carol@example.com"},
                        "committer": {"name": "Carol", "email": "carol@example.com"},
                        "message": "PAY-7: lower the fee <script>alert(1)</script>"}
        }))
        .expect("commit record");
        s.append(vec![commit]).expect("append commit");
        let mut g = Governance::new(s, &people);
        g.policy_name = "acme".into();
        let (_, json) = trailmark_policy::Policy::from_toml(POLICY, &|_| Err("no files".into()))
            .expect("policy");
        g.apply_policy(&json, "person:rita").expect("apply policy");
        g.create_release(
            "acme/payments",
            "pay",
            "1.0",
            &["production".to_owned()],
            None,
            "person:rita",
        )
        .expect("release");
        g.link(
            "acme/payments/pay@1.0",
            &[
                ("commit".to_owned(), SHA.to_owned()),
                ("ticket".to_owned(), "PAY-7".to_owned()),
            ],
            &[],
            "explicit",
            "person:rita",
        )
        .expect("link");
        let app = trailmark_web::app(state.clone());
        Ui {
            _dir: dir,
            state,
            app,
        }
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Resp {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::empty()).expect("request")).await
    }

    async fn post_form(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Resp {
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let body = serde_urlencoded::to_string(fields).expect("form");
        self.send(req.body(Body::from(body)).expect("request"))
            .await
    }

    /// Signs in through the form; returns the `Cookie` header value of the session.
    async fn login(&self, user: &str) -> String {
        let form = self.get("/ui/login?next=%2Fui%2Fapprovals", None).await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        let set = form
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("login csrf cookie");
        assert!(
            set.starts_with(&format!("trailmark_login_csrf={csrf};")),
            "{set}"
        );
        let res = self
            .post_form(
                "/ui/login",
                Some(&format!("trailmark_login_csrf={csrf}")),
                &[
                    ("username", user),
                    ("password", PASSWORD),
                    ("csrf", &csrf),
                    ("next", "/ui/"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert_eq!(res.location(), "/ui/");
        let session = res
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("trailmark_session="))
            .expect("session cookie")
            .to_owned();
        assert!(
            session.contains("HttpOnly") && session.contains("SameSite=Strict"),
            "{session}"
        );
        // Loopback listener: a local plain-HTTP setup, so no `Secure` (the browser would drop it).
        assert!(!session.contains("Secure"), "{session}");
        session.split(';').next().expect("pair").to_owned()
    }

    fn records(&self, kind: &str) -> Vec<trailmark_store::StoredRecord> {
        self.state
            .store
            .query(&Query {
                kind: Some(Kind::parse(kind).expect("kind")),
                limit: 1000,
                ..Query::default()
            })
            .expect("query")
    }
}

fn payload(r: &trailmark_store::StoredRecord) -> Value {
    match &r.record.payload {
        trailmark_model::Payload::Inline(v) => v.clone(),
        trailmark_model::Payload::Blob { .. } => Value::Null,
    }
}

#[tokio::test]
async fn sign_in_sessions_and_csrf() {
    let ui = Ui::new();
    // Not signed in: every page sends you to sign in, and back afterwards.
    let r = ui.get("/ui/approvals", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/ui/login?next=%2Fui%2Fapprovals");
    let r = ui.get("/", None).await;
    assert_eq!(r.location(), "/ui/");

    // A wrong password: refused, recorded as a security event naming the user tried.
    let form = ui.get("/ui/login", None).await;
    let csrf = form.csrf();
    assert!(
        form.body.contains("<label for=\"username\">"),
        "labelled fields"
    );
    let cookie = format!("trailmark_login_csrf={csrf}");
    let r = ui
        .post_form(
            "/ui/login",
            Some(&cookie),
            &[
                ("username", "alice"),
                ("password", "wrong password!"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body.contains("Unknown user name or wrong password."),
        "{}",
        r.body
    );
    assert!(!r.headers.get_all(header::SET_COOKIE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.starts_with("trailmark_session="))
    }));
    let failed = ui.records("security.login_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(payload(&failed[0])["username"], "alice");
    assert!(
        !failed[0].leaf.windows(14).any(|w| w == b"wrong password"),
        "password never stored"
    );

    // Online guessing: after ten failures for one user name, attempts are not even checked.
    for i in 0..12 {
        let form = ui.get("/ui/login", None).await;
        let csrf = form.csrf();
        let r = ui
            .post_form(
                "/ui/login",
                Some(&format!("trailmark_login_csrf={csrf}")),
                &[
                    ("username", "carol"),
                    (
                        "password",
                        if i < 11 {
                            "guess guess guess"
                        } else {
                            PASSWORD
                        },
                    ),
                    ("csrf", &csrf),
                ],
            )
            .await;
        let expected = if i < 10 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(r.status, expected, "attempt {i}");
    }
    assert_eq!(ui.records("security.login_failed").len(), 11);

    // Without the form's token (a cross-site post): refused before any password check.
    let r = ui
        .post_form(
            "/ui/login",
            None,
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(ui.records("security.login_failed").len(), 11);

    // An open redirect is not followed: `next` must stay inside the UI.
    let form = ui.get("/ui/login", None).await;
    let csrf = form.csrf();
    let r = ui
        .post_form(
            "/ui/login",
            Some(&format!("trailmark_login_csrf={csrf}")),
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf", &csrf),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/ui/");

    let session = ui.login("alice").await;
    let logins = ui.records("access.login");
    assert_eq!(logins.len(), 2);
    assert_eq!(logins[1].record.actor.as_deref(), Some("user:alice"));

    // Signed in: pages render, with the security headers.
    let page = ui.get("/ui/approvals", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(
        page.headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );

    // Sign-out needs the session's token; then the session is gone.
    let csrf = page.csrf();
    let r = ui
        .post_form("/ui/logout", Some(&session), &[("csrf", "forged")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ui
        .post_form("/ui/logout", Some(&session), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = ui.get("/ui/approvals", Some(&session)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/ui/login"));
}

#[tokio::test]
async fn pages_enforce_the_same_roles_as_the_api() {
    let ui = Ui::new();
    let rita = ui.login("rita").await;
    let audra = ui.login("audra").await;
    let dave = ui.login("dave").await;
    let bea = ui.login("bea").await;

    // The dashboard lists the release for those who may read acme/payments, not for others.
    let d = ui.get("/ui/", Some(&rita)).await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(
        d.body.contains("data-release=\"acme/payments/pay@1.0\""),
        "{}",
        d.body
    );
    // The gate would deny now (no approval yet): blocked, with the pending approval counted.
    assert!(d.body.contains("status bad\">blocked"), "{}", d.body);
    assert!(
        d.body.contains("1 pending"),
        "an approval is pending: {}",
        d.body
    );
    // Role-aware navigation: a release manager does not approve.
    assert!(!d.body.contains("href=\"/ui/approvals\""));
    for who in [&dave, &bea] {
        let d = ui.get("/ui/", Some(who)).await;
        assert_eq!(d.status, StatusCode::OK);
        assert!(!d.body.contains("pay@1.0"), "{}", d.body);
    }

    // The release page: readable by the auditor, refused (403) to dave and bea.
    let page = ui.get(RELEASE, Some(&audra)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for needle in [
        "The five questions",
        "Traceability matrix",
        "Control mapping",
        "Gaps",
        "<svg",
        "PAY-7",
        "/dossier?format=pdf",
        "/dossier?format=oscal",
    ] {
        assert!(page.body.contains(needle), "release page lacks {needle}");
    }
    // An auditor cannot approve: no decision form.
    assert!(!page.body.contains("name=\"decision\""));
    for who in [&dave, &bea] {
        let r = ui.get(RELEASE, Some(who)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(
            r.body.contains("may not read evidence in acme/payments"),
            "{}",
            r.body
        );
    }
    // Evidence text is escaped everywhere.
    let search = ui
        .get(
            &format!("/ui/search?field=commit&value={SHA}"),
            Some(&audra),
        )
        .await;
    assert!(!search.body.contains("<script>"));

    // Approvals queue: only for approvers.
    let r = ui.get("/ui/approvals", Some(&audra)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Reads by people are recorded, page by page.
    let reads = ui.records("access.read");
    assert!(
        reads
            .iter()
            .any(|r| r.record.actor.as_deref() == Some("user:audra")
                && payload(r)["detail"]["release"] == "acme/payments/pay@1.0")
    );
    // The audit trail section is for auditors; developers see only the log status.
    let log = ui.get("/ui/log", Some(&audra)).await;
    assert!(log.body.contains("Audit trail") && log.body.contains("access.login"));
    let log = ui.get("/ui/log", Some(&dave)).await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(!log.body.contains("Audit trail"));
}

#[tokio::test]
async fn approvals_enforce_separation_of_duties_and_the_evidence_digest() {
    let ui = Ui::new();
    let carol = ui.login("carol").await;
    let alice = ui.login("alice").await;

    let page = ui.get(RELEASE, Some(&alice)).await;
    assert!(page.body.contains("name=\"decision\" value=\"approve\""));
    let digest = page.digest();
    assert!(digest.starts_with("sha256:"), "{digest}");

    // The queue lists it for both approvers, and tells the author she cannot decide.
    let q = ui.get("/ui/approvals", Some(&alice)).await;
    assert!(
        q.body.contains("release:acme/payments/pay@1.0"),
        "{}",
        q.body
    );
    assert!(q.body.contains("can decide</span>") && !q.body.contains("cannot decide"));
    let q = ui.get("/ui/approvals", Some(&carol)).await;
    assert!(
        q.body
            .contains("cannot decide</span> <span class=\"muted\">separation of duties"),
        "{}",
        q.body
    );

    // The author is not offered the decision, is told why, and a forged post is refused with
    // nothing recorded.
    let carol_page = ui.get(RELEASE, Some(&carol)).await;
    assert!(!carol_page.body.contains("name=\"decision\""));
    assert!(
        carol_page.body.contains(
            "You cannot decide on this release: separation of duties: carol may not approve"
        ),
        "{}",
        carol_page.body
    );
    let r = ui
        .post_form(
            &format!("{RELEASE}/decision"),
            Some(&carol),
            &[
                ("csrf", &carol_page.csrf()),
                ("decision", "approve"),
                ("evidence_digest", &digest),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(
        r.body
            .contains("separation of duties: carol may not approve"),
        "{}",
        r.body
    );
    assert!(ui.records("approval.decided").is_empty());

    // A forged form (no session token) is refused.
    let r = ui
        .post_form(
            &format!("{RELEASE}/decision"),
            Some(&alice),
            &[
                ("csrf", "x"),
                ("decision", "approve"),
                ("evidence_digest", &digest),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A stale digest is refused.
    let r = ui
        .post_form(
            &format!("{RELEASE}/decision"),
            Some(&alice),
            &[
                ("csrf", &page.csrf()),
                ("decision", "approve"),
                (
                    "evidence_digest",
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                ),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(ui.records("approval.decided").is_empty());

    // An eligible approver's decision is recorded, over that digest.
    let r = ui
        .post_form(
            &format!("{RELEASE}/decision"),
            Some(&alice),
            &[
                ("csrf", &page.csrf()),
                ("decision", "approve"),
                ("evidence_digest", &digest),
                ("comment", "looks right"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), format!("{RELEASE}?done=approve"));
    let decided = ui.records("approval.decided");
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].record.actor.as_deref(), Some("person:alice"));
    let after = ui.get(r.location(), Some(&alice)).await;
    assert!(after.body.contains("Your approval was recorded."));
    assert!(after.body.contains("approved</span>"), "{}", after.body);
    // Nothing is waiting any more.
    let q = ui.get("/ui/approvals", Some(&alice)).await;
    assert!(!q.body.contains("release:acme/payments/pay@1.0"));
}

#[tokio::test]
async fn the_session_reads_the_api_but_never_writes_it() {
    let ui = Ui::new();
    let audra = ui.login("audra").await;
    // Export links reuse the API's handlers and role checks.
    let r = ui
        .get(
            "/api/v1/releases/acme/payments/pay@1.0/dossier?format=json",
            Some(&audra),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(d["format"], "trailmark.dossier/v3");
    assert_eq!(ui.records("dossier.exported").len(), 1);
    let dave = ui.login("dave").await;
    let r = ui
        .get(
            "/api/v1/releases/acme/payments/pay@1.0/dossier?format=json",
            Some(&dave),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A write with only the cookie is unauthenticated.
    let req = Request::post("/api/v1/records")
        .header(header::COOKIE, &audra)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"kind": "custom.note", "subjects": [{"type": "ticket", "id": "PAY-7"}], "payload": {}}"#))
        .expect("request");
    let r = ui.send(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn search_and_the_record_page_prove_inclusion() {
    let ui = Ui::new();
    let audra = ui.login("audra").await;
    let r = ui
        .get("/ui/search?field=ticket&value=PAY-7", Some(&audra))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("release.linked"), "{}", r.body);
    let r = ui
        .get("/ui/search?field=person&value=carol", Some(&audra))
        .await;
    assert!(
        r.body.contains("git.commit"),
        "carol found through her email identity: {}",
        r.body
    );
    assert!(!r.body.contains("release.created"));
    let r = ui
        .get(
            "/ui/search?field=ticket&value=PAY-7&from=yesterday",
            Some(&audra),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("is not a date (2026-11-01)"), "{}", r.body);
    let r = ui
        .get(
            "/ui/search?kind=git.commit&from=2000-01-01&to=2001-01-01",
            Some(&audra),
        )
        .await;
    assert!(r.body.contains("No records you can see match."));

    let commit = &ui.records("git.commit")[0];
    let idx = commit.record.index.0;
    let page = ui.get(&format!("/ui/records/{idx}"), Some(&audra)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("✔ Verified"), "{}", page.body);
    assert!(page.body.contains("alert(1)"), "the payload is shown");
    assert!(!page.body.contains("<script>"), "and escaped");
    let r = ui.get("/ui/records/999999", Some(&audra)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The check names what failed when the bytes are not what the log committed to.
    let mut tampered = ui
        .state
        .store
        .record(LogIndex(idx))
        .expect("read")
        .expect("exists");
    tampered.leaf[10] ^= 1;
    let proof = trailmark_web::pages::search::check(&ui.state, &tampered).expect("check");
    assert!(!proof.verified);
    assert!(
        proof
            .failures
            .iter()
            .any(|f| f.contains("is not the hash of the stored leaf bytes")),
        "{:?}",
        proof.failures
    );
    assert!(
        proof
            .failures
            .iter()
            .any(|f| f.contains("inclusion proof does not verify")),
        "{:?}",
        proof.failures
    );
}

#[tokio::test]
async fn the_log_page_runs_and_records_a_full_verification() {
    let ui = Ui::new();
    let audra = ui.login("audra").await;
    let page = ui.get("/ui/log", Some(&audra)).await;
    assert!(page.body.contains("never run from here"));
    let r = ui
        .post_form("/ui/log/verify", Some(&audra), &[("csrf", &page.csrf())])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/ui/log?verified=ok");
    let v = ui.records("security.log_verified");
    assert_eq!(v.len(), 1);
    assert_eq!(payload(&v[0])["ok"], true);
    let page = ui.get("/ui/log?verified=ok", Some(&audra)).await;
    assert!(page.body.contains("Full verification passed."));
    assert!(page.body.contains("passed</span>"));
    // Developers may not run it.
    let dave = ui.login("dave").await;
    let p = ui.get("/ui/log", Some(&dave)).await;
    let r = ui
        .post_form("/ui/log/verify", Some(&dave), &[("csrf", &p.csrf())])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Filters are checked.
    let r = ui.get("/ui/log?kind=custom.note", Some(&audra)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn policies_and_exceptions_pages() {
    let ui = Ui::new();
    let rita = ui.login("rita").await;
    let p = ui.get("/ui/policies", Some(&rita)).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("In force"), "{}", p.body);
    assert!(p.body.contains("separation_of_duties"));
    let e = ui.get("/ui/exceptions", Some(&rita)).await;
    assert_eq!(e.status, StatusCode::OK);
    assert!(e.body.contains("No exceptions"));
}

#[tokio::test]
async fn metrics_page_shows_dora_and_approval_bottlenecks_with_charts() {
    let ui = Ui::new();
    let alice = ui.login("alice").await;
    let page = ui.get(RELEASE, Some(&alice)).await;
    let digest = page.digest();
    let r = ui
        .post_form(
            &format!("{RELEASE}/decision"),
            Some(&alice),
            &[
                ("csrf", &page.csrf()),
                ("decision", "approve"),
                ("evidence_digest", &digest),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let deploy = trailmark_model::input::from_value(&json!({
        "kind": "github.deployment_status",
        "subjects": [{"type": "deployment", "id": "4711"}, {"type": "environment", "id": "production"},
                     {"type": "project", "id": "acme/payments"}],
        "links": [{"rel": "deploys", "to": {"type": "commit", "id": SHA}}],
        "payload": {"state": "success", "environment": "production"}
    }))
    .expect("deploy record");
    ui.state.store.append(vec![deploy]).expect("append");

    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let from = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(72))
        .expect("time")
        .strftime("%Y-%m-%d")
        .to_string();
    let tomorrow = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .expect("time")
        .strftime("%Y-%m-%d")
        .to_string();
    assert_ne!(today, tomorrow);
    let m = ui
        .get(
            &format!("/ui/metrics?env=production&from={from}&to={tomorrow}&bucket=day"),
            Some(&alice),
        )
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    assert!(
        m.body
            .contains("<td id=\"m-deploys\">1 successful deployments</td>"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("1 decisions (1 approved, 0 rejected)"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("<th scope=\"row\">person:alice</th>")
            || m.body.contains("<th scope=\"row\">alice</th>"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("100.0 % (1 of 1)"),
        "alice made every decision: {}",
        m.body
    );
    assert!(
        m.body.contains("id=\"chart-deployment_frequency\"><svg"),
        "{}",
        m.body
    );
    // A deployment to another environment is not counted for production.
    let m = ui
        .get(
            &format!("/ui/metrics?env=staging&from={from}&to={tomorrow}&bucket=day"),
            Some(&alice),
        )
        .await;
    assert!(
        m.body
            .contains("<td id=\"m-deploys\">0 successful deployments</td>"),
        "{}",
        m.body
    );
    // Bad parameters are named.
    let r = ui.get("/ui/metrics?bucket=fortnight", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = ui
        .get(
            &format!("/ui/metrics?from={tomorrow}&to={from}"),
            Some(&alice),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Developers on another project see none of acme/payments' deployments.
    let dave = ui.login("dave").await;
    let m = ui
        .get(
            &format!("/ui/metrics?env=production&from={from}&to={tomorrow}&bucket=day"),
            Some(&dave),
        )
        .await;
    assert!(
        m.body
            .contains("<td id=\"m-deploys\">0 successful deployments</td>"),
        "{}",
        m.body
    );
}

/// Accessibility basics on every main page: a language, one `h1`, a label for every visible
/// form field, a skip link, and the current section marked for assistive technology.
#[tokio::test]
async fn pages_have_labels_headings_and_landmarks() {
    let ui = Ui::new();
    let alice = ui.login("alice").await;
    for path in [
        "/ui/",
        RELEASE,
        "/ui/approvals",
        "/ui/search?field=ticket&value=PAY-7",
        &format!("/ui/records/{}", ui.records("git.commit")[0].record.index.0),
        "/ui/log",
        "/ui/policies",
        "/ui/exceptions",
        "/ui/metrics",
    ] {
        let page = ui.get(path, Some(&alice)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let b = &page.body;
        assert!(b.contains("<html lang=\"en\">"), "{path}: no language");
        assert_eq!(b.matches("<h1").count(), 1, "{path}: one h1");
        assert!(
            b.contains("href=\"#main\"") && b.contains("<main id=\"main\""),
            "{path}: skip link"
        );
        for (at, _) in b
            .match_indices("<input")
            .chain(b.match_indices("<select"))
            .chain(b.match_indices("<textarea"))
        {
            let tag = &b[at..at + b[at..].find('>').expect("tag end")];
            if tag.contains("type=\"hidden\"") {
                continue;
            }
            let id_at = tag
                .find(" id=\"")
                .unwrap_or_else(|| panic!("{path}: field without id: {tag}"))
                + 5;
            let id = &tag[id_at..id_at + tag[id_at..].find('"').expect("id end")];
            assert!(
                b.contains(&format!("<label for=\"{id}\">")),
                "{path}: field {id} has no label"
            );
        }
    }
}

#[cfg(feature = "oidc-login")]
mod oidc {
    //! Sign-in through an OpenID Connect provider: a provider served on loopback redeems the
    //! code (checking the PKCE verifier) for an RS256 ID token.
    use std::sync::Mutex;

    use axum::extract::State;
    use base64::Engine as _;
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use sha2::{Digest as _, Sha256};

    use super::*;

    const KEY: &[u8] = include_bytes!("../../access/tests/data/test-only-rsa-a.key.pem");
    const ISSUER: &str = "https://sso.acme.example";

    /// What the provider will answer: the expected PKCE challenge, and the claims to sign.
    #[derive(Default)]
    struct Idp {
        challenge: String,
        claims: Value,
    }

    async fn token(
        State(idp): State<Arc<Mutex<Idp>>>,
        body: String,
    ) -> (StatusCode, axum::Json<Value>) {
        let form: BTreeMap<String, String> = serde_urlencoded::from_str(&body).expect("form");
        let idp = idp.lock().expect("lock");
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        if form.get("code").map(String::as_str) != Some("the-code")
            || challenge != idp.challenge
            || form.get("client_secret").map(String::as_str) != Some("client-secret-0123456789")
        {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "invalid_grant"})),
            );
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        let key = EncodingKey::from_rsa_pem(KEY).expect("key");
        let jwt = jsonwebtoken::encode(&header, &idp.claims, &key).expect("sign");
        (
            StatusCode::OK,
            axum::Json(json!({"id_token": jwt, "token_type": "Bearer"})),
        )
    }

    fn query_param(url: &str, name: &str) -> String {
        let q = url.split_once('?').expect("query").1;
        let map: BTreeMap<String, String> = serde_urlencoded::from_str(q).expect("query");
        map.get(name).cloned().unwrap_or_default()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn people_sign_in_through_the_provider_as_their_local_user() {
        let idp = Arc::new(Mutex::new(Idp::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });

        let keys = tempfile::tempdir().expect("tempdir");
        let mut jwk = Jwk::from_encoding_key(
            &EncodingKey::from_rsa_pem(KEY).expect("key"),
            Algorithm::RS256,
        )
        .expect("jwk");
        jwk.common.key_id = Some("k1".into());
        let jwks = keys.path().join("jwks.json");
        std::fs::write(
            &jwks,
            serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("json"),
        )
        .expect("write");
        let ui = Ui::with_config(&format!(
            r#"
[login_oidc]
name = "Acme SSO"
issuer = "{ISSUER}"
client_id = "trailmark"
client_secret = "client-secret-0123456789"
authorization_endpoint = "http://{addr}/authorize"
token_endpoint = "http://{addr}/token"
jwks_file = "{}"
redirect_url = "http://127.0.0.1:8080/ui/login/oidc/callback"
"#,
            jwks.display()
        ));
        let form = ui.get("/ui/login", None).await;
        assert!(
            form.body.contains(">Sign in with Acme SSO</a>"),
            "{}",
            form.body
        );

        // Start: to the provider, with state, nonce and an S256 PKCE challenge.
        let start = |ui: &Ui| {
            let ui = ui.app.clone();
            async move {
                let res = ui
                    .oneshot(
                        Request::get("/ui/login/oidc?next=%2Fui%2Fapprovals")
                            .body(Body::empty())
                            .expect("req"),
                    )
                    .await
                    .expect("infallible");
                assert_eq!(res.status(), StatusCode::SEE_OTHER);
                let to = res.headers()[header::LOCATION]
                    .to_str()
                    .expect("text")
                    .to_owned();
                let cookie = res.headers()[header::SET_COOKIE]
                    .to_str()
                    .expect("text")
                    .to_owned();
                (to, cookie)
            }
        };
        let (to, set) = start(&ui).await;
        assert!(
            to.starts_with(&format!(
                "http://{addr}/authorize?response_type=code&client_id=trailmark"
            )),
            "{to}"
        );
        assert_eq!(query_param(&to, "code_challenge_method"), "S256");
        let st = query_param(&to, "state");
        assert!(
            set.starts_with(&format!("trailmark_oidc_state={st};")) && set.contains("SameSite=Lax"),
            "{set}"
        );
        let now = jiff::Timestamp::now().as_second();
        let claims = |nonce: &str, user: &str| {
            json!({"iss": ISSUER, "aud": "trailmark", "sub": "0042", "preferred_username": user,
                   "nonce": nonce, "iat": now - 5, "exp": now + 300})
        };
        {
            let mut i = idp.lock().expect("lock");
            i.challenge = query_param(&to, "code_challenge");
            i.claims = claims(&query_param(&to, "nonce"), "alice");
        }
        let cookie = format!("trailmark_oidc_state={st}");
        let callback = format!("/ui/login/oidc/callback?code=the-code&state={st}");

        // From another browser (no state cookie): refused.
        let r = ui.get(&callback, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("not started in this browser"));

        let r = ui.get(&callback, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location(), "/ui/approvals");
        let session = r
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("trailmark_session="))
            .expect("session")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();
        let page = ui.get("/ui/approvals", Some(&session)).await;
        assert!(
            page.body.contains("Signed in as <strong>alice</strong>"),
            "{}",
            page.body
        );
        let logins = ui.records("access.login");
        let last = logins.last().expect("login recorded");
        assert_eq!(payload(last)["method"], "oidc");
        assert_eq!(last.record.actor.as_deref(), Some("user:alice"));

        // The same answer again (a replayed redirect): refused.
        let r = ui.get(&callback, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("expired or was already used"));

        // A whole sign-in whose provider answers with `user` in a token carrying `nonce`
        // (this sign-in's own when `None`); `challenge` overrides the PKCE challenge expected.
        let attempt =
            |nonce: Option<&'static str>, user: &'static str, challenge: Option<&'static str>| {
                let (ui, idp) = (&ui, idp.clone());
                async move {
                    let (to, _) = start(ui).await;
                    let st = query_param(&to, "state");
                    {
                        let mut i = idp.lock().expect("lock");
                        i.challenge = challenge
                            .map_or_else(|| query_param(&to, "code_challenge"), str::to_owned);
                        let own = query_param(&to, "nonce");
                        i.claims = claims(nonce.unwrap_or(&own), user);
                    }
                    ui.get(
                        &format!("/ui/login/oidc/callback?code=the-code&state={st}"),
                        Some(&format!("trailmark_oidc_state={st}")),
                    )
                    .await
                }
            };
        // An ID token minted for another sign-in (wrong nonce): refused.
        let r = attempt(Some("someone else's nonce"), "alice", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(
            r.body.contains("not the answer to this sign-in"),
            "{}",
            r.body
        );
        // A person the provider knows but Trailmark does not: refused, roles come from us.
        let r = attempt(None, "mallory", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(
            r.body.contains("mallory has no Trailmark account"),
            "{}",
            r.body
        );
        // A code the provider will not redeem (a PKCE verifier that does not match).
        let r = attempt(None, "alice", Some("not-this")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(
            r.body.contains("refused the code (400: invalid_grant)"),
            "{}",
            r.body
        );

        // The provider says no.
        let r = ui
            .get("/ui/login/oidc/callback?error=access_denied", None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("access_denied"));
        assert_eq!(
            ui.records("access.login").len(),
            logins.len(),
            "no other sign-in recorded"
        );
    }
}
