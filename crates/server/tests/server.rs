//! The HTTP surface, driven through `app(state)` without a socket, on a real SQLite store and a
//! real access database in a temporary directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::Sha256;
use tower::ServiceExt;
use trailmark_access::{AccessStore, Grant, OrgName, ProjectName, Role, Scope};
use trailmark_log::SignerKey;
use trailmark_model::{LogIndex, Subject};
use trailmark_server::governance::{self, NewToken};
use trailmark_server::{AppState, Config, app};
use trailmark_store::{Query, SqliteStore, Store};

#[path = "server/dossier.rs"]
mod dossier;
#[path = "server/hooks.rs"]
mod hooks;
#[path = "server/matrix.rs"]
mod matrix;
#[path = "server/oidc.rs"]
mod oidc;
#[path = "server/records.rs"]
mod records;
#[path = "server/releases.rs"]
mod releases;
#[path = "server/respond.rs"]
mod respond;

pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/ingest"
);
pub const GITHUB_SECRET: &str = "github-secret-0123456789";
pub const GITLAB_SECRET: &str = "gitlab-secret-0123456789";
pub const JIRA_SECRET: &str = "jira-secret-0123456789ab";
pub const JENKINS_SECRET: &str = "jenkins-secret-012345678";
pub const CDEVENTS_SECRET: &str = "cdevents-secret-01234567";

pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{path}")).expect("fixture exists")
}

pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A running app over a fresh store: organisations `acme` (projects `payments`, `web`) and
/// `beta`, and one token per role.
#[allow(missing_debug_implementations)]
pub struct Env {
    _dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub access: Arc<AccessStore>,
    pub app: Router,
    pub state: AppState,
    pub tokens: BTreeMap<String, String>,
}

pub fn org(s: &str) -> OrgName {
    s.parse().expect("valid org")
}

pub fn scope(s: &str) -> Scope {
    s.parse().expect("valid scope")
}

pub const CONFIG: &str = r#"
default_org = "acme"
max_body_bytes = 1048576

[[hooks]]
source = "github"
secret = "github-secret-0123456789"
scope = "acme/payments"

[[hooks]]
source = "gitlab"
secret = "gitlab-secret-0123456789"
scope = "acme/web"

[[hooks]]
source = "jira"
secret = "jira-secret-0123456789ab"
scope = "acme"

[[hooks]]
source = "jenkins"
secret = "jenkins-secret-012345678"
scope = "acme/payments"

[[hooks]]
source = "cdevents"
secret = "cdevents-secret-01234567"
scope = "beta"
"#;

impl Env {
    #[allow(clippy::new_without_default)] // a test fixture, built explicitly
    pub fn new() -> Env {
        Env::with_config(CONFIG)
    }

    /// An environment whose server runs with this configuration (TOML).
    pub fn with_config(config: &str) -> Env {
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
        let config = Config::from_toml(config, &BTreeMap::new()).expect("config");
        let state = AppState::new(store.clone(), access.clone(), config).expect("state");
        let mut env = Env {
            _dir: dir,
            store,
            access,
            app: app(state.clone()),
            state,
            tokens: BTreeMap::new(),
        };
        for role in Role::ALL {
            env.token(&role.to_string(), role, "acme", None);
        }
        env.token("developer-web", Role::Developer, "acme/web", None);
        env.token("ingest-payments", Role::Ingest, "acme/payments", None);
        env.token("auditor-beta", Role::Auditor, "beta", None);
        env.token("admin-beta", Role::Admin, "beta", None);
        env
    }

    /// Creates a token named `name` and remembers it.
    pub fn token(&mut self, name: &str, role: Role, on: &str, owner: Option<&str>) -> String {
        let (secret, _) = governance::create_token(
            self.store.as_ref(),
            &self.access,
            "test",
            NewToken {
                name: name.into(),
                grant: Grant {
                    role,
                    scope: scope(on),
                },
                owner: owner.map(str::to_owned),
                expires_at: None,
            },
        )
        .expect("token");
        let t = secret.expose().to_owned();
        self.tokens.insert(name.to_owned(), t.clone());
        t
    }

    pub fn bearer(&self, name: &str) -> String {
        format!("Bearer {}", self.tokens[name])
    }

    pub async fn send(&self, req: Request<Body>) -> Response {
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str, token: &str) -> Response {
        let mut req = Request::get(uri);
        if !token.is_empty() {
            req = req.header("authorization", self.bearer(token));
        }
        self.send(req.body(Body::empty()).expect("request")).await
    }

    pub async fn post_json(&self, uri: &str, token: &str, body: Value) -> Response {
        let mut req = Request::post(uri).header("content-type", "application/json");
        if !token.is_empty() {
            req = req.header("authorization", self.bearer(token));
        }
        self.send(req.body(Body::from(body.to_string())).expect("request"))
            .await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> Response {
        let mut req = Request::delete(uri);
        if !token.is_empty() {
            req = req.header("authorization", self.bearer(token));
        }
        self.send(req.body(Body::empty()).expect("request")).await
    }

    /// Posts a GitHub delivery signed with the configured secret.
    pub async fn github(&self, event: &str, delivery: &str, body: &[u8]) -> Response {
        let req = Request::post("/hooks/github")
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", hmac_hex(GITHUB_SECRET, body))
            .body(Body::from(body.to_vec()))
            .expect("request");
        self.send(req).await
    }

    pub fn size(&self) -> u64 {
        self.store.size().expect("size")
    }

    /// Records of `kind`, in index order.
    pub fn records_of(&self, kind: &str) -> Vec<trailmark_store::StoredRecord> {
        self.store
            .query(&Query {
                kind: Some(trailmark_model::Kind::parse(kind).expect("kind")),
                limit: 10_000,
                ..Query::default()
            })
            .expect("query")
    }

    pub fn record(&self, i: u64) -> trailmark_store::StoredRecord {
        self.store
            .record(LogIndex(i))
            .expect("read")
            .expect("present")
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts a 201 Created and returns its JSON body.
    pub fn created(&self) -> Value {
        assert_eq!(
            self.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// Asserts a problem+json response of this status and type slug.
    pub fn problem(&self, status: u16, slug: &str) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "problem responses are problem+json"
        );
        let v = self.json();
        assert_eq!(v["type"], format!("urn:trailmark:problem:{slug}"));
        assert_eq!(v["status"], status);
        v["detail"].as_str().expect("detail").to_owned()
    }
}

pub fn subject(ty: &str, id: &str) -> Subject {
    Subject::parse(ty, id).expect("subject")
}

#[tokio::test]
async fn health_and_readiness_answer_without_credentials() {
    let env = Env::new();
    let r = env.get("/healthz", "").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = env.get("/readyz", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers.contains_key("x-request-id"),
        "every response carries a request id"
    );
}

#[tokio::test]
async fn a_draining_server_is_not_ready() {
    let env = Env::new();
    env.state.start_draining();
    env.get("/readyz", "").await.problem(503, "unavailable");
    assert_eq!(
        env.get("/healthz", "").await.status,
        StatusCode::OK,
        "still alive"
    );
}

#[tokio::test]
async fn unknown_endpoints_and_methods_are_problems() {
    let env = Env::new();
    env.get("/api/v1/nothing", "admin")
        .await
        .problem(404, "not-found");
    let r = env.delete("/api/v1/records", "admin").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// The served OpenAPI document is reviewed: it must match the checked-in snapshot. After an
/// intended API change, regenerate with `UPDATE_SNAPSHOTS=1 cargo test -p trailmark-server`.
#[tokio::test]
async fn openapi_document_matches_the_reviewed_snapshot() {
    let env = Env::new();
    let r = env.get("/api/openapi.json", "").await;
    assert_eq!(r.status, StatusCode::OK);
    let served = String::from_utf8(r.body).expect("utf-8");
    let doc: Value = serde_json::from_str(&served).expect("json");
    assert!(
        doc["openapi"].as_str().expect("version").starts_with("3.1"),
        "OpenAPI 3.1"
    );
    for path in [
        "/api/v1/records",
        "/api/v1/records/{index}",
        "/api/v1/graph",
        "/api/v1/blobs/{digest}",
        "/api/v1/checkpoints/latest",
        "/api/v1/checkpoints/{size}",
        "/api/v1/proofs/inclusion",
        "/api/v1/proofs/consistency",
        "/api/v1/tokens",
        "/hooks/{source}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let snapshot = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(snapshot, format!("{served}\n")).expect("write snapshot");
    }
    let reviewed = std::fs::read_to_string(snapshot).expect("snapshot exists");
    assert_eq!(
        reviewed.trim_end(),
        served.trim_end(),
        "the API changed: review it and run with UPDATE_SNAPSHOTS=1"
    );
}

#[tokio::test]
async fn configuration_errors_name_the_setting() {
    let env = BTreeMap::new();
    let e = Config::from_toml("listen = \"nowhere\"", &env).expect_err("bad listen");
    assert_eq!(e.setting, "listen");
    let e = Config::from_toml("[[hooks]]\nsource = \"github\"\nsecret = \"short\"", &env)
        .expect_err("short secret");
    assert!(e.setting.contains("hooks[0]"), "{e}");
    let e = Config::from_toml(
        "[[hooks]]\nsource = \"bitbucket\"\nsecret = \"0123456789abcdef0\"",
        &env,
    )
    .expect_err("unknown source");
    assert!(e.to_string().contains("bitbucket"), "{e}");
    // Web sessions: Secure cookies unless on loopback; sign-in providers over https only.
    assert!(!Config::from_toml("", &env).expect("default").secure_cookies);
    assert!(
        Config::from_toml("listen = \"0.0.0.0:8080\"", &env)
            .expect("any address")
            .secure_cookies
    );
    let oidc = |endpoint: &str| {
        format!(
            "[login_oidc]\nissuer = \"https://sso\"\nclient_id = \"t\"\nclient_secret = \"s\"\nauthorization_endpoint = \"https://sso/a\"\ntoken_endpoint = \"{endpoint}\"\njwks_url = \"https://sso/k\"\nredirect_url = \"https://tm/ui/login/oidc/callback\"\n"
        )
    };
    let e = Config::from_toml(&oidc("http://sso.example/token"), &env).expect_err("plain http");
    assert_eq!(e.setting, "login_oidc.token_endpoint");
    let c = Config::from_toml(&oidc("https://sso/token"), &env).expect("https");
    let l = c.login_oidc.expect("configured");
    assert_eq!(l.user_claim, "preferred_username");
    assert!(
        !format!("{l:?}").contains("\"s\""),
        "the client secret is redacted"
    );
    let e = Config::from_toml("session_idle_minutes = 0", &env).expect_err("zero");
    assert_eq!(e.setting, "session_idle_minutes");
    let e = Config::from_toml("lisen = \"127.0.0.1:1\"", &env).expect_err("typo");
    assert!(e.to_string().contains("lisen"), "{e}");
    let e = Config::from_toml("[[hooks]]\nsource = \"github\"", &env).expect_err("no secret");
    assert!(
        e.to_string().contains("TRAILMARK_HOOK_GITHUB_SECRET"),
        "{e}"
    );
    // The environment supplies a secret (and overrides the listen address).
    let env: BTreeMap<String, String> = [
        (
            "TRAILMARK_HOOK_GITHUB_SECRET".to_owned(),
            "from-the-environment-123".to_owned(),
        ),
        ("TRAILMARK_LISTEN".to_owned(), "127.0.0.1:9999".to_owned()),
    ]
    .into();
    let c = Config::from_toml("[[hooks]]\nsource = \"github\"", &env).expect("env secret");
    assert_eq!(c.hooks[0].secret.expose(), b"from-the-environment-123");
    assert_eq!(c.listen.port(), 9999);
    assert!(
        !format!("{:?}", c.hooks[0]).contains("from-the-environment"),
        "secrets are redacted in Debug"
    );
}
