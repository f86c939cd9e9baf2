//! CI identity tokens over HTTP: a GitHub Actions-style RS256 JWT, checked against a JWKS file,
//! mapped by claim rules to a role, and refused when expired, for another audience, or unsigned.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tower::ServiceExt;
use trailmark_access::AccessStore;
use trailmark_log::SignerKey;
use trailmark_server::{AppState, Config, app};
use trailmark_store::SqliteStore;

const KEY: &[u8] = include_bytes!("../../../access/tests/data/test-only-rsa-a.key.pem");
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn key() -> EncodingKey {
    EncodingKey::from_rsa_pem(KEY).expect("test key")
}

fn jwt(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, claims, &key()).expect("sign")
}

fn claims(repo: &str, aud: &str, exp_offset: i64) -> Value {
    let now = jiff::Timestamp::now().as_second();
    json!({"iss": ISSUER, "aud": aud, "sub": format!("repo:{repo}:ref:refs/heads/main"),
        "repository": repo, "iat": now - 5, "nbf": now - 5, "exp": now + exp_offset})
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_ci_identity_token_records_evidence_in_its_mapped_scope_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut jwk = Jwk::from_encoding_key(&key(), Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some("k1".into());
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("json"),
    )
    .expect("write jwks");
    let config = format!(
        r#"
[[oidc]]
issuer = "{ISSUER}"
audience = "trailmark"
jwks_file = "{}"
rules = [{{ claim = "repository", equals = "acme/payments", role = "ingest", scope = "acme/payments" }}]
"#,
        jwks.display()
    );
    let config = Config::from_toml(&config, &BTreeMap::new()).expect("config");
    let signer = SignerKey::from_seed("test.example/log", [9; 32]).expect("key");
    let store = Arc::new(
        SqliteStore::create(&dir.path().join("t.db"), "test.example/log", signer).expect("store"),
    );
    let access = Arc::new(AccessStore::open(&dir.path().join("a.db")).expect("access"));
    access
        .create_org(&"acme".parse().expect("org"))
        .expect("org");
    let app = app(AppState::new(store.clone(), access, config).expect("state"));

    let post = |token: String| {
        Request::post("/api/v1/records")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"kind": "ci.build", "subjects": [{"type": "build", "id": "gha/1"}]})
                    .to_string(),
            ))
            .expect("request")
    };
    let (status, body) = send(&app, post(jwt(&claims("acme/payments", "trailmark", 300)))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["scope"], "acme/payments");

    // Ingest only: it may not read.
    let read = Request::get("/api/v1/records")
        .header(
            "authorization",
            format!("Bearer {}", jwt(&claims("acme/payments", "trailmark", 300))),
        )
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app, read).await.0, StatusCode::FORBIDDEN);

    for (what, token) in [
        ("expired", jwt(&claims("acme/payments", "trailmark", -3600))),
        (
            "other audience",
            jwt(&claims("acme/payments", "someone-else", 300)),
        ),
        (
            "no rule matches",
            jwt(&claims("evil/repo", "trailmark", 300)),
        ),
    ] {
        let (status, body) = send(&app, post(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(
            body["type"], "urn:trailmark:problem:unauthenticated",
            "{what}"
        );
    }
    // A token with its signature cut off.
    let good = jwt(&claims("acme/payments", "trailmark", 300));
    let unsigned = format!("{}.", good.rsplit_once('.').expect("three parts").0);
    assert_eq!(send(&app, post(unsigned)).await.0, StatusCode::UNAUTHORIZED);
}
