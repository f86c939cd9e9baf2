//! Every endpoint × every role, allowed and denied, plus anonymous and cross-organisation
//! callers. The expectations are written out here from the role definitions in the issue, not
//! computed from the code under test.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use trailmark_access::Role;

use crate::{Env, Response};

/// The roles allowed to call each endpoint (tokens on organisation `acme`).
const ALL_READERS: &[&str] = &[
    "admin",
    "release-manager",
    "approver",
    "auditor",
    "developer",
];
const LOG_READERS: &[&str] = ALL_READERS;
const WRITERS: &[&str] = &["admin", "release-manager", "ingest"];
const EXPORTERS: &[&str] = &["admin", "release-manager", "auditor"];
const ADMINS: &[&str] = &["admin"];
const EVERYONE: &[&str] = &[
    "admin",
    "release-manager",
    "approver",
    "auditor",
    "developer",
    "ingest",
];

struct Case {
    method: Method,
    uri: String,
    body: Option<serde_json::Value>,
    allowed: &'static [&'static str],
}

fn case(
    method: Method,
    uri: impl Into<String>,
    body: Option<serde_json::Value>,
    allowed: &'static [&'static str],
) -> Case {
    Case {
        method,
        uri: uri.into(),
        body,
        allowed,
    }
}

async fn call(env: &Env, c: &Case, token: Option<&str>) -> Response {
    let mut req = Request::builder().method(c.method.clone()).uri(&c.uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match &c.body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    env.send(req.body(body).expect("request")).await
}

#[tokio::test]
async fn every_endpoint_checks_every_role() {
    let env = Env::new();
    // Evidence to read: a delivery with a raw input, in acme/payments.
    let push = crate::fixture("github/push/payload.json");
    let d = env.github("push", "matrix-1", &push).await;
    assert_eq!(d.status, StatusCode::CREATED);
    let index = d.json()["indices"][0].as_u64().expect("index");
    let digest = trailmark_model::Digest::of(&push);
    let size = env.size();
    // A user to grant roles to.
    trailmark_server::governance::create_user(
        env.store.as_ref(),
        &env.access,
        "test",
        &crate::org("acme"),
        "bob",
        "a long enough password",
    )
    .expect("user");
    let (_, victim) = trailmark_server::governance::create_token(
        env.store.as_ref(),
        &env.access,
        "test",
        trailmark_server::governance::NewToken {
            name: "victim".into(),
            grant: trailmark_access::Grant {
                role: Role::Ingest,
                scope: crate::scope("acme/web"),
            },
            owner: None,
            expires_at: None,
        },
    )
    .expect("token");

    let cases = vec![
        case(
            Method::POST,
            "/api/v1/records?scope=acme",
            Some(json!({"kind": "custom.note", "subjects": [{"type": "ticket", "id": "M-1"}]})),
            WRITERS,
        ),
        case(
            Method::GET,
            "/api/v1/records?kind=github.push",
            None,
            ALL_READERS,
        ),
        case(
            Method::GET,
            format!("/api/v1/records/{index}"),
            None,
            ALL_READERS,
        ),
        case(
            Method::GET,
            "/api/v1/graph?subject=ticket:M-1",
            None,
            ALL_READERS,
        ),
        case(
            Method::GET,
            "/api/v1/metrics?env=*&bucket=week",
            None,
            ALL_READERS,
        ),
        case(
            Method::GET,
            format!("/api/v1/blobs/{digest}"),
            None,
            EXPORTERS,
        ),
        case(Method::GET, "/api/v1/checkpoints/latest", None, LOG_READERS),
        case(
            Method::GET,
            format!("/api/v1/checkpoints/{size}"),
            None,
            LOG_READERS,
        ),
        case(
            Method::GET,
            format!("/api/v1/proofs/inclusion?index={index}"),
            None,
            LOG_READERS,
        ),
        case(
            Method::GET,
            "/api/v1/proofs/consistency?old=1",
            None,
            LOG_READERS,
        ),
        case(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "role": "ingest", "scope": "acme/payments"})),
            ADMINS,
        ),
        case(Method::GET, "/api/v1/tokens?org=acme", None, ADMINS),
        case(
            Method::DELETE,
            format!("/api/v1/tokens/{}", victim.id),
            None,
            ADMINS,
        ),
        case(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "u", "password": "another long password", "org": "acme"})),
            ADMINS,
        ),
        case(
            Method::POST,
            "/api/v1/users/bob/grants",
            Some(json!({"role": "approver", "scope": "acme/web"})),
            ADMINS,
        ),
        case(
            Method::DELETE,
            "/api/v1/users/bob/grants?role=approver&scope=acme/web",
            None,
            ADMINS,
        ),
        case(
            Method::POST,
            "/api/v1/orgs/acme/projects",
            Some(json!({"name": "p"})),
            ADMINS,
        ),
        case(Method::GET, "/api/v1/whoami", None, EVERYONE),
    ];

    let mut checked = 0;
    for c in &cases {
        // Anonymous: always 401.
        call(&env, c, None).await.problem(401, "unauthenticated");
        for role in Role::ALL {
            let name = role.to_string();
            let token = env.tokens[&name].clone();
            let r = call(&env, c, Some(&token)).await;
            if c.allowed.contains(&name.as_str()) {
                assert!(
                    r.status.is_success(),
                    "{} {} as {name}: expected success, got {} {}",
                    c.method,
                    c.uri,
                    r.status,
                    String::from_utf8_lossy(&r.body)
                );
            } else {
                let detail = r.problem(403, "forbidden");
                assert!(detail.contains("token:"), "names the caller: {detail}");
            }
            checked += 1;
        }
        // Another organisation's admin is denied everything in acme (or sees nothing of it).
        let beta = env.tokens["admin-beta"].clone();
        let r = call(&env, c, Some(&beta)).await;
        match (c.method.clone(), c.uri.as_str()) {
            (Method::GET, u) if u.starts_with("/api/v1/records?") => {
                assert!(
                    r.json()["records"].as_array().expect("records").is_empty(),
                    "{u}: beta sees none of acme"
                );
            }
            (Method::GET, u) if u.starts_with("/api/v1/graph") => {
                assert!(r.json()["records"].as_array().expect("records").is_empty());
            }
            // Metrics over beta's own records only (acme's scoping: `records.rs`).
            (Method::GET, u) if u.starts_with("/api/v1/metrics") => {
                assert!(r.status.is_success(), "{u}: {}", r.status);
                assert_eq!(r.json()["metrics"]["deployment_frequency"]["total"], 0);
            }
            // Checkpoints and proofs are one log's hashes: no tenant's evidence.
            (Method::GET, u)
                if u.contains("/checkpoints") || u.contains("/proofs") || u.contains("whoami") =>
            {
                assert!(r.status.is_success());
            }
            _ => {
                r.problem(403, "forbidden");
            }
        }
    }
    assert_eq!(checked, cases.len() * Role::ALL.len());
}

#[tokio::test]
async fn a_developer_reads_only_its_own_projects() {
    let env = Env::new();
    let mk = |ticket: &str| json!({"kind": "custom.note", "subjects": [{"type": "ticket", "id": ticket}]});
    let pay = env
        .post_json("/api/v1/records?scope=acme/payments", "admin", mk("PAY-1"))
        .await;
    let web = env
        .post_json("/api/v1/records?scope=acme/web", "admin", mk("WEB-1"))
        .await;
    let pay = pay.json()["records"][0]["index"].as_u64().expect("index");
    let web = web.json()["records"][0]["index"].as_u64().expect("index");
    assert_eq!(
        env.get(&format!("/api/v1/records/{web}"), "developer-web")
            .await
            .status,
        StatusCode::OK
    );
    let d = env
        .get(&format!("/api/v1/records/{pay}"), "developer-web")
        .await
        .problem(403, "forbidden");
    assert!(d.contains("acme/payments"), "{d}");
    // A project-scoped ingest token writes only into its project.
    env.post_json(
        "/api/v1/records?scope=acme/web",
        "ingest-payments",
        mk("X-1"),
    )
    .await
    .problem(403, "forbidden");
    env.post_json("/api/v1/records?scope=acme", "ingest-payments", mk("X-1"))
        .await
        .problem(403, "forbidden");
    // And an org admin cannot reach into the other organisation.
    env.get("/api/v1/tokens?org=beta", "admin")
        .await
        .problem(403, "forbidden");
    let t = env
        .post_json(
            "/api/v1/tokens",
            "admin",
            json!({"name": "x", "role": "admin", "scope": "beta"}),
        )
        .await;
    t.problem(403, "forbidden");
}
