//! Governance over HTTP: who may create, link, read, approve and gate a release, and
//! separation of duties enforced on approvals made with a person's credentials.

use axum::http::StatusCode;
use serde_json::json;
use trailmark_access::{Grant, Role};
use trailmark_ingest::identity::IdentityMap;
use trailmark_policy::{Governance, Policy};

use crate::Env;

const POLICY: &str = r#"
name = "default"
[approvals.release]
roles = ["approver"]
min = 1
[gates.production]
checks = ["approvals", "separation_of_duties"]
"#;

fn person(env: &mut Env, name: &str, role: Role) -> String {
    let s = env.store.as_ref();
    trailmark_server::governance::create_user(
        s,
        &env.access,
        "test",
        &crate::org("acme"),
        name,
        "a long enough password",
    )
    .expect("user");
    trailmark_server::governance::grant(
        s,
        &env.access,
        "test",
        name,
        &Grant {
            role,
            scope: crate::scope("acme"),
        },
    )
    .expect("grant");
    let token_name = format!("{name}-person");
    env.token(&token_name, role, "acme", Some(name));
    token_name
}

#[tokio::test]
async fn releases_are_created_linked_approved_and_gated_with_roles_and_separation_of_duties() {
    let mut env = Env::new();
    let (_, json) = Policy::from_toml(POLICY, &|_| Err("none".into())).expect("policy");
    Governance::new(env.store.as_ref(), &IdentityMap::default())
        .apply_policy(&json, "person:admin")
        .expect("apply");
    // The pull request's author is codertocat on GitHub and "codertocat" here.
    env.state.set_people(IdentityMap::from_json(r#"{"people": [{"id": "codertocat", "identities": ["github:Codertocat", "person:codertocat"]}]}"#).expect("people"));
    let pr = crate::fixture("github/pull_request/opened.payload.json");
    assert_eq!(
        env.github("pull_request", "rel-1", &pr).await.status,
        StatusCode::CREATED
    );
    let author = person(&mut env, "codertocat", Role::Approver);
    let alice = person(&mut env, "alice", Role::Approver);

    let body = json!({"name": "pay", "version": "1.0", "environments": ["production"]});
    env.post_json("/api/v1/releases/acme/payments", "developer", body.clone())
        .await
        .problem(403, "forbidden");
    let r = env
        .post_json(
            "/api/v1/releases/acme/payments",
            "release-manager",
            body.clone(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["release"], "acme/payments/pay@1.0");
    env.post_json("/api/v1/releases/acme/payments", "release-manager", body)
        .await
        .problem(422, "unprocessable");
    env.post_json(
        "/api/v1/releases/acme/payments",
        "admin-beta",
        json!({"name": "x", "version": "1", "environments": ["p"]}),
    )
    .await
    .problem(403, "forbidden");

    let base = "/api/v1/releases/acme/payments/pay@1.0";
    let link = json!({"commits": ["ec26c3e57ca3a959ca5aad62de7213c562f8c821"], "documents": [{"type": "runbook", "id": "wiki/pay", "version": "2"}]});
    env.post_json(&format!("{base}/links"), "ingest", link.clone())
        .await
        .problem(403, "forbidden");
    assert_eq!(
        env.post_json(&format!("{base}/links"), "release-manager", link)
            .await
            .status,
        StatusCode::CREATED
    );
    env.post_json(
        &format!("{base}/links"),
        "release-manager",
        json!({"commits": ["XYZ"]}),
    )
    .await
    .problem(422, "unprocessable");

    let show = env.get(base, "auditor").await;
    assert_eq!(show.status, StatusCode::OK);
    let digest = show.json()["evidence_digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    env.get(base, "admin-beta").await.problem(403, "forbidden");

    // Approvals: a machine token cannot approve; the author cannot; a stale digest is refused.
    let approve = json!({"decision": "approve", "evidence_digest": digest});
    let d = env
        .post_json(&format!("{base}/approvals"), "approver", approve.clone())
        .await
        .problem(403, "forbidden");
    assert!(d.contains("person"), "{d}");
    let d = env
        .post_json(&format!("{base}/approvals"), &author, approve.clone())
        .await
        .problem(403, "forbidden");
    assert!(d.contains("separation of duties"), "{d}");
    env.post_json(
        &format!("{base}/approvals"),
        &alice,
        json!({"decision": "approve", "evidence_digest": "sha256:00"}),
    )
    .await
    .problem(422, "unprocessable");
    env.post_json(&format!("{base}/approvals"), "developer", approve.clone())
        .await
        .problem(403, "forbidden");

    // Before approval the gate denies (200: the evaluation worked); after, it allows.
    let gate = json!({"environment": "production", "deployer": "person:bob"});
    env.post_json(&format!("{base}/gate"), "developer", gate.clone())
        .await
        .problem(403, "forbidden");
    let g = env
        .post_json(&format!("{base}/gate"), "ingest", gate.clone())
        .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.json()["decision"], "deny");
    let pending = env
        .get("/api/v1/approvals/pending", "approver")
        .await
        .json();
    assert_eq!(pending[0]["subject"], "release:acme/payments/pay@1.0");
    assert!(
        env.get("/api/v1/approvals/pending", "admin-beta")
            .await
            .json()
            .as_array()
            .expect("list")
            .is_empty()
    );

    let ok = env
        .post_json(&format!("{base}/approvals"), &alice, approve)
        .await;
    assert_eq!(
        ok.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&ok.body)
    );
    let g = env
        .post_json(&format!("{base}/gate"), "ingest", gate)
        .await
        .json();
    assert_eq!(g["decision"], "allow", "{g}");
    assert_eq!(
        g["approval"]["counted"],
        json!(["person:alice"]),
        "unmapped: the canonical identity stands for the person"
    );
    let rec = env.record(g["record"].as_u64().expect("record"));
    assert_eq!(rec.record.kind.as_str(), "gate.decided");
}
