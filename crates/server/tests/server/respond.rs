//! Deployment protection responders against a forge API served on loopback: GitHub (App JWT,
//! installation token, callback) and GitLab (deployment approval API). The gate's decision
//! is what is sent back, with its reasons; callbacks never leave the configured API.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use trailmark_access::Role;

use crate::Env;

const KEY_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../access/tests/data/test-only-rsa-a.key.pem"
);
const PUB: &[u8] = include_bytes!("../../../access/tests/data/test-only-rsa-a.pub.pem");
const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const GITLAB_SHA: &str = "279484c09fbe69ededfced8c1bb6e6d24616b468";

#[derive(Clone, Default)]
struct Forge {
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn access_token(
    State(f): State<Forge>,
    Path(inst): Path<u64>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let jwt = headers["authorization"]
        .to_str()
        .unwrap_or("")
        .trim_start_matches("Bearer ");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_required_spec_claims(&["exp", "iss"]);
    v.set_issuer(&["4242"]);
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUB).expect("public key");
    if jsonwebtoken::decode::<Value>(jwt, &key, &v).is_err() {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    f.calls
        .lock()
        .expect("lock")
        .push((format!("token:{inst}"), json!({})));
    (
        StatusCode::CREATED,
        json!({"token": "ghs_installation"}).to_string(),
    )
}

async fn github_callback(State(f): State<Forge>, headers: HeaderMap, body: String) -> StatusCode {
    if headers["authorization"] != "Bearer ghs_installation" {
        return StatusCode::UNAUTHORIZED;
    }
    f.calls.lock().expect("lock").push((
        "github".into(),
        serde_json::from_str(&body).unwrap_or_default(),
    ));
    StatusCode::NO_CONTENT
}

async fn gitlab_approval(
    State(f): State<Forge>,
    Path((p, d)): Path<(u64, u64)>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    if headers["private-token"] != "glpat-test-token" {
        return StatusCode::UNAUTHORIZED;
    }
    f.calls.lock().expect("lock").push((
        format!("gitlab:{p}:{d}"),
        serde_json::from_str(&body).unwrap_or_default(),
    ));
    StatusCode::CREATED
}

async fn forge() -> (String, Forge) {
    let f = Forge::default();
    let app = Router::new()
        .route("/app/installations/{id}/access_tokens", post(access_token))
        .route(
            "/repos/Codertocat/Hello-World/actions/runs/1/deployment_protection_rule",
            post(github_callback),
        )
        .route(
            "/api/v4/projects/{p}/deployments/{d}/approval",
            post(gitlab_approval),
        )
        .with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), f)
}

fn protection_request(api: &str, sha: &str, callback: &str) -> Vec<u8> {
    let pr: Value =
        serde_json::from_slice(&crate::fixture("github/pull_request/opened.payload.json"))
            .expect("fixture");
    serde_json::to_vec(&json!({
        "action": "requested",
        "environment": "production",
        "event": "deployment",
        "deployment_callback_url": format!("{api}{callback}"),
        "deployment": {"id": 1, "sha": sha, "ref": "main", "environment": "production", "creator": {"login": "hubot"}},
        "repository": pr["repository"],
        "installation": {"id": 77},
        "sender": {"login": "hubot"},
    }))
    .expect("json")
}

const POLICY: &str = "name = \"acme\"\n[approvals.release]\nroles = [\"approver\"]\n[gates.production]\nchecks = [\"approvals\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_answers_github_and_gitlab_deployment_requests() {
    let (api, forge) = forge().await;
    let dir = tempfile::tempdir().expect("tmp");
    let token = dir.path().join("gitlab-token");
    std::fs::write(&token, "glpat-test-token\n").expect("token");
    let config = crate::CONFIG
        .replace(
            "scope = \"acme/payments\"\n\n[[hooks]]\nsource = \"gitlab\"",
            &format!("scope = \"acme/payments\"\n[hooks.respond]\napi_url = \"{api}\"\napp_id = 4242\nprivate_key_file = \"{KEY_FILE}\"\n\n[[hooks]]\nsource = \"gitlab\""),
        )
        .replace(
            "scope = \"acme/web\"\n",
            &format!("scope = \"acme/web\"\n[hooks.respond]\napi_url = \"{api}\"\ntoken_file = \"{}\"\n", token.display()),
        );
    assert!(
        config.contains("app_id") && config.contains("token_file"),
        "{config}"
    );
    let mut env = Env::with_config(&config);
    let req = axum::http::Request::put("/api/v1/orgs/acme/policy")
        .header("content-type", "application/toml")
        .header("authorization", env.bearer("admin"))
        .body(axum::body::Body::from(POLICY))
        .expect("request");
    assert_eq!(env.send(req).await.status, StatusCode::CREATED);
    for (name, version, project, sha) in [
        ("pay", "1", "payments", HEAD),
        ("web", "1", "web", GITLAB_SHA),
    ] {
        let r = env.post_json(&format!("/api/v1/releases/acme/{project}"), "release-manager", json!({"name": name, "version": version, "environments": ["production", "staging"]})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = env
            .post_json(
                &format!("/api/v1/releases/acme/{project}/{name}@{version}/links"),
                "release-manager",
                json!({"commits": [sha]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }

    // GitHub: not approved yet → rejected, with the reason.
    let callback = "/repos/Codertocat/Hello-World/actions/runs/1/deployment_protection_rule";
    // The event is GitHub's header, not the body's shape: the same body delivered as another
    // event is recorded and not answered, and the forge is not called.
    let r = env
        .github(
            "deployment",
            "dpr-0",
            &protection_request(&api, HEAD, callback),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.json()["gate"].is_null(), "{}", r.json());
    assert!(forge.calls.lock().expect("lock").is_empty());
    let r = env
        .github(
            "deployment_protection_rule",
            "dpr-1",
            &protection_request(&api, HEAD, callback),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let gate = &r.json()["gate"];
    assert_eq!(gate["release"], "acme/payments/pay@1");
    assert_eq!(
        (gate["state"].as_str(), gate["callback"].as_str()),
        (Some("rejected"), Some("sent")),
        "{gate}"
    );
    {
        let calls = forge.calls.lock().expect("lock");
        assert_eq!(calls[0].0, "token:77");
        assert_eq!(calls[1].1["state"], "rejected");
        assert_eq!(calls[1].1["environment_name"], "production");
        assert!(
            calls[1].1["comment"]
                .as_str()
                .expect("comment")
                .contains("0 of 1 required approval"),
            "{:?}",
            calls[1]
        );
    }
    // Approved by a person → the same request (a re-delivery) is now approved.
    crate::releases::person(&mut env, "alice", Role::Approver);
    let digest = env
        .get("/api/v1/releases/acme/payments/pay@1", "auditor")
        .await
        .json()["evidence_digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    let a = env
        .post_json(
            "/api/v1/releases/acme/payments/pay@1/approvals",
            "alice-person",
            json!({"decision": "approve", "evidence_digest": digest}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let r = env
        .github(
            "deployment_protection_rule",
            "dpr-1",
            &protection_request(&api, HEAD, callback),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a re-delivery is a duplicate, and is answered again"
    );
    assert_eq!(r.json()["gate"]["state"], "approved");
    assert_eq!(
        forge.calls.lock().expect("lock").last().expect("call").1["state"],
        "approved"
    );

    // A commit no release includes: rejected. A callback URL elsewhere: never called.
    let other = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";
    let r = env
        .github(
            "deployment_protection_rule",
            "dpr-2",
            &protection_request(&api, other, callback),
        )
        .await
        .json();
    assert_eq!(r["gate"]["state"], "rejected");
    assert!(
        r["gate"]["comment"]
            .as_str()
            .expect("comment")
            .contains("no release in acme/payments includes"),
        "{r}"
    );
    let n = forge.calls.lock().expect("lock").len();
    let evil = protection_request("http://127.0.0.1:9", HEAD, callback);
    let r = env
        .github("deployment_protection_rule", "dpr-3", &evil)
        .await
        .json();
    assert!(
        r["gate"]["callback"]
            .as_str()
            .expect("callback")
            .contains("not under the configured api_url"),
        "{r}"
    );
    assert_eq!(
        forge.calls.lock().expect("lock").len(),
        n,
        "nothing was sent anywhere"
    );

    // GitLab: a blocked deployment of the web release is answered through the approval API.
    let mut dep: Value =
        serde_json::from_slice(&crate::fixture("gitlab/deployment.json")).expect("fixture");
    dep["status"] = json!("blocked");
    dep["environment"] = json!("production");
    let body = serde_json::to_vec(&dep).expect("json");
    let req = axum::http::Request::post("/hooks/gitlab")
        .header("content-type", "application/json")
        .header("x-gitlab-event", "Deployment Hook")
        .header("x-gitlab-token", crate::GITLAB_SECRET)
        .body(axum::body::Body::from(body))
        .expect("request");
    let r = env.send(req).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["gate"]["release"], "acme/web/web@1");
    let calls = forge.calls.lock().expect("lock");
    let (target, body) = calls.last().expect("call");
    assert_eq!(target, &format!("gitlab:{}:15", dep["project"]["id"]));
    assert_eq!(body["status"], "rejected");
}

#[test]
fn responder_configuration_is_checked() {
    let base = "[[hooks]]\nsource = \"SRC\"\nsecret = \"0123456789abcdef0123\"\n[hooks.respond]\n";
    let bad = |src: &str, extra: &str| {
        trailmark_server::config::Config::from_toml(
            &(base.replace("SRC", src) + extra),
            &Default::default(),
        )
        .expect_err("refused")
        .to_string()
    };
    assert!(bad("jira", "api_url = \"https://x.example\"\n").contains("only github and gitlab"));
    assert!(bad("github", "api_url = \"ftp://x\"\n").contains("api_url"));
    assert!(
        bad(
            "github",
            "api_url = \"https://api.github.com\"\napp_id = 1\n"
        )
        .contains("private_key_file")
    );
    assert!(bad("github", "api_url = \"https://api.github.com\"\napp_id = 1\nprivate_key_file = \"/nonexistent.pem\"\n").contains("/nonexistent.pem"));
    assert!(bad("gitlab", "api_url = \"https://gitlab.example\"\n").contains("token_file"));
}
