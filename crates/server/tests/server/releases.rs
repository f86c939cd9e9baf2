//! Governance over HTTP: who may create, link, read, approve and gate a release, and
//! separation of duties enforced on approvals made with a person's credentials.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use trailmark_access::{Grant, Role};
use trailmark_ingest::identity::IdentityMap;

use crate::Env;

const POLICY: &str = r#"
name = "acme"
[approvals.release]
roles = ["approver"]
min = 1
[gates.production]
checks = ["approvals", "separation_of_duties"]
"#;

/// A local user with `role` on `acme` and a person token `<name>-person` for them.
pub fn person(env: &mut Env, name: &str, role: Role) -> String {
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
    assert_eq!(
        put_policy(&env, "admin", POLICY).await.status,
        StatusCode::CREATED
    );
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

async fn put_policy(env: &Env, token: &str, toml: &str) -> crate::Response {
    let req = Request::put("/api/v1/orgs/acme/policy")
        .header("content-type", "application/toml")
        .header("authorization", env.bearer(token))
        .body(Body::from(toml.to_owned()))
        .expect("request");
    env.send(req).await
}

#[tokio::test]
async fn policies_exceptions_rollbacks_checks_and_replay_over_http() {
    let mut env = Env::new();
    let alice = person(&mut env, "alice", Role::Approver);
    let bob = person(&mut env, "bob", Role::Admin);
    // Each organisation's policy is its own; only its admins change it.
    let toml = format!(
        "{POLICY}\n[approvals.policy]\nroles = [\"admin\"]\n[approvals.exception]\nroles = [\"approver\"]\n"
    );
    put_policy(&env, "release-manager", &toml)
        .await
        .problem(403, "forbidden");
    put_policy(&env, "admin-beta", &toml)
        .await
        .problem(403, "forbidden");
    put_policy(
        &env,
        "admin",
        "name = \"acme\"\n[gates.p]\nchecks = [\"nope\"]",
    )
    .await
    .problem(422, "unprocessable");
    put_policy(
        &env,
        "admin",
        &toml.replace("name = \"acme\"", "name = \"beta\""),
    )
    .await
    .problem(422, "unprocessable");
    let r = put_policy(&env, "admin", &toml).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["active"], true);
    // A change now waits for a person's approval (not the proposer's).
    let r = put_policy(&env, &bob, &toml.replace("min = 1", "min = 2")).await;
    assert_eq!(
        r.json()["active"],
        false,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    env.post_json(
        "/api/v1/orgs/acme/policy/approvals",
        &bob,
        json!({"decision": "approve"}),
    )
    .await
    .problem(403, "forbidden");
    let shown = env.get("/api/v1/orgs/acme/policy", "auditor").await.json();
    assert_eq!(shown["versions"].as_array().expect("versions").len(), 2);
    assert_eq!(shown["active"]["policy"]["approvals"]["release"]["min"], 1);
    let admin2 = person(&mut env, "carol", Role::Admin);
    assert_eq!(
        env.post_json(
            "/api/v1/orgs/acme/policy/approvals",
            &admin2,
            json!({"decision": "approve"})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        env.get("/api/v1/orgs/acme/policy", "auditor").await.json()["active"]["policy"]["approvals"]
            ["release"]["min"],
        2
    );

    let created = env
        .post_json(
            "/api/v1/releases/acme/web",
            "release-manager",
            json!({"name": "web", "version": "3", "environments": ["production"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let base = "/api/v1/releases/acme/web/web@3";
    let g = env
        .post_json(
            &format!("{base}/gate"),
            "ingest",
            json!({"environment": "production"}),
        )
        .await
        .json();
    assert_eq!(g["decision"], "deny");
    let decision = g["record"].as_u64().expect("record");

    // Break glass.
    let raise =
        json!({"reason": "outage", "valid_for": "4h", "compensating_controls": ["pairing"]});
    env.post_json(&format!("{base}/exceptions"), "approver", raise.clone())
        .await
        .problem(403, "forbidden");
    env.post_json(
        &format!("{base}/exceptions"),
        "release-manager",
        json!({"reason": "x", "valid_for": "4y", "compensating_controls": ["p"]}),
    )
    .await
    .problem(400, "bad-request");
    let exc = env
        .post_json(&format!("{base}/exceptions"), "release-manager", raise)
        .await;
    assert_eq!(
        exc.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&exc.body)
    );
    let exc_id = exc.json()["exception"].as_str().expect("id").to_owned();
    let g = env
        .post_json(
            &format!("{base}/gate"),
            "ingest",
            json!({"environment": "production"}),
        )
        .await
        .json();
    assert_eq!(g["decision"], "allow_with_exception");
    let list = env
        .get("/api/v1/exceptions/acme/web", "developer-web")
        .await
        .json();
    assert_eq!(list[0]["state"], "awaiting_approval");
    let short = exc_id.rsplit('/').next().expect("id");
    env.post_json(
        &format!("/api/v1/exceptions/acme/web/{short}/approvals"),
        "approver",
        json!({"decision": "approve"}),
    )
    .await
    .problem(403, "forbidden");
    assert_eq!(
        env.post_json(
            &format!("/api/v1/exceptions/acme/web/{short}/approvals"),
            &alice,
            json!({"decision": "approve"})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        env.get("/api/v1/exceptions/acme/web", "auditor")
            .await
            .json()[0]["state"],
        "approved"
    );

    // The checks list puts failures first; replay reproduces the first decision.
    let checks = env.get(&format!("{base}/checks"), "auditor").await.json();
    assert_eq!(checks[0]["status"], "failing", "{checks}");
    env.get(&format!("{base}/checks"), "auditor-beta")
        .await
        .problem(403, "forbidden");
    let replay = env
        .get(
            &format!("/api/v1/gate-decisions/{decision}/replay"),
            "auditor",
        )
        .await
        .json();
    assert_eq!(replay["reproduced"], true, "{replay}");
    env.get(
        &format!("/api/v1/gate-decisions/{decision}/replay"),
        "auditor-beta",
    )
    .await
    .problem(403, "forbidden");
    env.get("/api/v1/gate-decisions/0/replay", "auditor")
        .await
        .problem(404, "not-found");

    // A rollback to an artifact no release ships cannot be approved.
    let rb = env.post_json(&format!("{base}/rollbacks"), "release-manager", json!({"environment": "production", "reason": "errors", "plan": "redeploy",
        "target_artifact": "sha256:1111111111111111111111111111111111111111111111111111111111111111"})).await;
    assert_eq!(
        rb.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&rb.body)
    );
    env.post_json(
        &format!("{base}/rollbacks/1"),
        "release-manager",
        json!({"status": "approved"}),
    )
    .await
    .problem(403, "forbidden");
    env.post_json(
        &format!("{base}/rollbacks/1"),
        "release-manager",
        json!({"status": "executed"}),
    )
    .await
    .problem(422, "unprocessable");
    assert_eq!(
        env.post_json(
            &format!("{base}/rollbacks/1"),
            "release-manager",
            json!({"status": "cancelled"})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let rb = env.post_json(&format!("{base}/rollbacks"), "release-manager", json!({"environment": "production", "reason": "errors", "plan": "redeploy",
        "target_artifact": "sha256:2222222222222222222222222222222222222222222222222222222222222222"})).await;
    assert_eq!(rb.json()["rollback"], "acme/web/web@3/rollback-2");
    let monitoring = |v: serde_json::Value| v["monitoring"].as_bool().expect("monitoring");
    assert!(
        monitoring(env.get(base, "auditor").await.json()),
        "an open rollback decision puts the release under monitoring"
    );
    env.post_json(
        &format!("{base}/clear"),
        "approver",
        json!({"note": "stable"}),
    )
    .await
    .problem(403, "forbidden");
    assert_eq!(
        env.post_json(
            &format!("{base}/clear"),
            "release-manager",
            json!({"note": "stable for 24h"})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert!(!monitoring(env.get(base, "auditor").await.json()));
}

/// The identity map in force is the latest version in the log, picked up by a running server
/// as soon as it is recorded (by `trailmark people set` beside it, say), without a restart; a
/// map given at start-up serves only while the log holds no version.
#[tokio::test]
async fn the_server_resolves_people_with_the_latest_map_version_in_the_log() {
    let env = Env::new();
    env.state.set_people(
        IdentityMap::from_json(r#"{"people": [{"id": "given", "identities": ["github:octo"]}]}"#)
            .expect("people"),
    );
    let person = |env: &Env| {
        env.state
            .people()
            .resolve("github:octo")
            .map(|r| r.person)
            .unwrap_or_default()
    };
    assert_eq!(person(&env), "given");
    for who in ["first", "second"] {
        let map = IdentityMap::from_json(&format!(
            r#"{{"people": [{{"id": "{who}", "identities": ["github:octo"]}}]}}"#
        ))
        .expect("people");
        trailmark_policy::people::record(env.state.store.as_ref(), &map, "person:admin")
            .expect("recorded");
        assert_eq!(person(&env), who);
    }
    assert_eq!(
        trailmark_policy::people::history(env.state.store.as_ref())
            .expect("history")
            .len(),
        2
    );
}
