//! Recording and reading evidence over the API: validation, tenancy, pagination, proofs, the
//! access trail of people's reads, and token lifecycle.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use serde_json::json;
use trailmark_access::Role;
use trailmark_log::{Hash, TlogProof, leaf_hash, verify_tlog_proof};
use trailmark_store::Store;

use crate::{Env, subject};

fn rec(kind: &str, ticket: &str) -> serde_json::Value {
    json!({"kind": kind, "subjects": [{"type": "ticket", "id": ticket}], "payload": {"n": 1}})
}

#[tokio::test]
async fn records_single_and_batch_are_durable_and_filed_under_the_scope() {
    let env = Env::new();
    let r = env
        .post_json(
            "/api/v1/records?scope=acme/payments",
            "release-manager",
            rec("custom.note", "PAY-1"),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = r.json();
    assert_eq!(v["scope"], "acme/payments");
    let i = v["records"][0]["index"].as_u64().expect("index");
    let stored = env.record(i);
    assert_eq!(stored.leaf_hash.to_base64(), v["records"][0]["leaf_hash"]);
    assert!(
        stored
            .record
            .subjects
            .contains(&subject("project", "acme/payments"))
    );

    // A batch, JSON Lines, with an idempotency key.
    let lines = format!(
        "{}\n{}\n",
        json!({"kind": "custom.note", "subjects": [{"type": "ticket", "id": "PAY-2"}], "idempotency_key": "k1"}),
        rec("custom.note", "PAY-3")
    );
    let req = Request::post("/api/v1/records")
        .header("content-type", "application/x-ndjson")
        .header("authorization", env.bearer("ingest-payments"))
        .body(Body::from(lines.clone()))
        .expect("request");
    let r = env.send(req).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.json()["scope"],
        "acme/payments",
        "the only scope the token may write"
    );
    assert_eq!(r.json()["records"].as_array().expect("array").len(), 2);

    // The same keyed record again is a duplicate; in another project the same key is not.
    let keyed = json!({"kind": "custom.note", "subjects": [{"type": "ticket", "id": "PAY-2"}], "idempotency_key": "k1"});
    let r = env
        .post_json(
            "/api/v1/records?scope=acme/payments",
            "admin",
            keyed.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["records"][0]["duplicate"], true);
    let r = env
        .post_json("/api/v1/records?scope=acme/web", "admin", keyed)
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "idempotency keys are per scope"
    );
}

#[tokio::test]
async fn bad_records_store_nothing_and_say_what_is_wrong() {
    let mut env = Env::new();
    // A caller that may write in several scopes must say which.
    let store = env.store.clone();
    trailmark_server::governance::create_user(
        store.as_ref(),
        &env.access,
        "test",
        &crate::org("acme"),
        "carol",
        "correct horse battery",
    )
    .expect("user");
    for s in ["acme/web", "acme/payments"] {
        let g = trailmark_access::Grant {
            role: Role::ReleaseManager,
            scope: crate::scope(s),
        };
        trailmark_server::governance::grant(store.as_ref(), &env.access, "test", "carol", &g)
            .expect("grant");
    }
    env.token("carol", Role::ReleaseManager, "acme", Some("carol"));
    let before = env.size();
    let d = env
        .post_json("/api/v1/records", "carol", rec("custom.note", "A-1"))
        .await
        .problem(400, "bad-request");
    assert!(d.contains("?scope=") && d.contains("acme/web"), "{d}");
    let batch = json!([rec("custom.note", "A-1"), {"kind": "Bad Kind!", "subjects": []}]);
    let d = env
        .post_json("/api/v1/records?scope=acme", "admin", batch)
        .await
        .problem(400, "bad-request");
    assert!(d.contains("record 2"), "{d}");
    let reserved =
        json!({"kind": "custom.note", "subjects": [{"type": "project", "id": "beta/x"}]});
    let d = env
        .post_json("/api/v1/records?scope=acme", "admin", reserved)
        .await
        .problem(400, "bad-request");
    assert!(d.contains("reserved"), "{d}");
    let forged = json!({"kind": "access.read", "subjects": [{"type": "ticket", "id": "A-1"}]});
    env.post_json("/api/v1/records?scope=acme", "admin", forged)
        .await
        .problem(400, "bad-request");
    // Nor may a client record a version of the identity map (who counts as whom), which would
    // then be in force for every separation-of-duties check.
    let map = json!({"kind": "identity.map", "subjects": [{"type": "identity_map", "id": "people"}],
        "payload": {"map": {"people": []}, "digest": "sha256:00"}});
    let d = env
        .post_json("/api/v1/records?scope=acme", "admin", map)
        .await
        .problem(400, "bad-request");
    assert!(d.contains("written by the server only"), "{d}");
    env.post_json(
        "/api/v1/records?scope=no/such/thing",
        "admin",
        rec("custom.note", "A-1"),
    )
    .await
    .problem(400, "bad-request");
    // Writing into another organisation is forbidden, not a bad request.
    env.post_json(
        "/api/v1/records?scope=beta",
        "admin",
        rec("custom.note", "A-1"),
    )
    .await
    .problem(403, "forbidden");
    let req = Request::post("/api/v1/records?scope=acme")
        .header("content-type", "text/plain")
        .header("authorization", env.bearer("admin"))
        .body(Body::from(rec("custom.note", "A-1").to_string()))
        .expect("request");
    env.send(req).await.problem(415, "unsupported-media-type");
    let req = Request::post("/api/v1/records?scope=acme")
        .header("content-type", "application/json")
        .header("authorization", env.bearer("admin"))
        .body(Body::from("{\"kind\": "))
        .expect("request");
    env.send(req).await.problem(400, "bad-request");
    assert_eq!(env.size(), before, "no refused request stored anything");
}

#[tokio::test]
async fn queries_filter_paginate_and_stay_inside_the_callers_scopes() {
    let env = Env::new();
    for (scope, ticket) in [
        ("acme/payments", "PAY-1"),
        ("acme/web", "WEB-1"),
        ("beta", "B-1"),
        ("acme/web", "WEB-2"),
    ] {
        let token = if scope == "beta" {
            "admin-beta"
        } else {
            "admin"
        };
        let r = env
            .post_json(
                &format!("/api/v1/records?scope={scope}"),
                token,
                rec("custom.note", ticket),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let tickets = |v: &serde_json::Value| -> Vec<String> {
        v["records"]
            .as_array()
            .expect("records")
            .iter()
            .flat_map(|r| r["subjects"].as_array().cloned().unwrap_or_default())
            .filter(|s| s["type"] == "ticket")
            .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let all = env
        .get("/api/v1/records?kind=custom.note", "auditor")
        .await
        .json();
    assert_eq!(
        tickets(&all),
        ["PAY-1", "WEB-1", "WEB-2"],
        "acme's auditor sees acme only"
    );
    let web = env
        .get("/api/v1/records?kind=custom.note", "developer-web")
        .await
        .json();
    assert_eq!(
        tickets(&web),
        ["WEB-1", "WEB-2"],
        "a project developer sees the project only"
    );
    let beta = env
        .get("/api/v1/records?kind=custom.note", "auditor-beta")
        .await
        .json();
    assert_eq!(tickets(&beta), ["B-1"]);

    // Pagination: one at a time, following next_after.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/records?kind=custom.note&limit=1".to_owned();
    loop {
        let page = env.get(&uri, "auditor").await.json();
        seen.extend(tickets(&page));
        match page["next_after"].as_u64() {
            Some(a) => uri = format!("/api/v1/records?kind=custom.note&limit=1&after={a}"),
            None => break,
        }
    }
    assert_eq!(seen, ["PAY-1", "WEB-1", "WEB-2"]);

    let by_subject = env
        .get("/api/v1/records?subject=ticket:WEB-2", "auditor")
        .await
        .json();
    assert_eq!(tickets(&by_subject), ["WEB-2"]);
    let by_actor = env
        .get("/api/v1/records?actor=test", "auditor")
        .await
        .json();
    assert!(
        by_actor["records"]
            .as_array()
            .expect("records")
            .iter()
            .all(|r| r["actor"] == "test"),
        "actor filter"
    );
    let future = env
        .get(
            "/api/v1/records?kind=custom.note&since=2999-01-01T00:00:00Z",
            "auditor",
        )
        .await
        .json();
    assert!(tickets(&future).is_empty());
    env.get("/api/v1/records?since=yesterday", "auditor")
        .await
        .problem(400, "bad-request");
    env.get("/api/v1/records?limit=0", "auditor")
        .await
        .problem(400, "bad-request");
    env.get("/api/v1/records?subject=nocolon", "auditor")
        .await
        .problem(400, "bad-request");
    env.get("/api/v1/records?after=-1", "auditor")
        .await
        .problem(400, "bad-request");
}

#[tokio::test]
async fn a_served_record_comes_with_a_proof_that_verifies_offline() {
    let env = Env::new();
    let r = env
        .post_json(
            "/api/v1/records?scope=acme/payments",
            "admin",
            rec("custom.note", "PAY-9"),
        )
        .await;
    let i = r.json()["records"][0]["index"].as_u64().expect("index");
    let v = env
        .get(&format!("/api/v1/records/{i}"), "auditor")
        .await
        .json();
    assert_eq!(v["record"]["index"], i);
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(v["leaf"].as_str().expect("leaf"))
        .expect("base64");
    let proof = TlogProof::parse(v["proof"].as_str().expect("proof")).expect("tlog-proof");
    let cp = verify_tlog_proof(
        &proof,
        &leaf_hash(&leaf),
        &[env.store.verifier().clone()],
        None,
    )
    .expect("the served proof verifies against the log's key");
    assert!(cp.size > i);

    // The same via the proof endpoints, and a consistency proof between two checkpoints.
    let inc = env
        .get(&format!("/api/v1/proofs/inclusion?index={i}"), "approver")
        .await
        .json();
    assert_eq!(inc["leaf_hash"], v["record"]["leaf_hash"]);
    let latest = env
        .get("/api/v1/checkpoints/latest", "developer")
        .await
        .json();
    let size = latest["size"].as_u64().expect("size");
    let at = env
        .get(&format!("/api/v1/checkpoints/{size}"), "developer")
        .await
        .json();
    assert_eq!(at["note"], latest["note"]);
    let cons = env
        .get(
            &format!("/api/v1/proofs/consistency?old={i}&new={size}"),
            "auditor",
        )
        .await
        .json();
    let hashes: Vec<Hash> = cons["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| Hash::from_base64(h.as_str().expect("b64")).expect("hash"))
        .collect();
    let old_root = Hash::from_base64(cons["old_root"].as_str().expect("root")).expect("hash");
    let new_root = Hash::from_base64(cons["new_root"].as_str().expect("root")).expect("hash");
    trailmark_log::verify_consistency(i, size, &old_root, &new_root, &hashes)
        .expect("consistency proof verifies");

    env.get("/api/v1/records/999999", "auditor")
        .await
        .problem(404, "not-found");
    env.get("/api/v1/checkpoints/999999", "auditor")
        .await
        .problem(404, "not-found");
    env.get(
        &format!("/api/v1/proofs/inclusion?index={}", size + 5),
        "auditor",
    )
    .await
    .problem(400, "bad-request");
    env.get("/api/v1/proofs/consistency?old=10&new=2", "auditor")
        .await
        .problem(400, "bad-request");
    env.get("/api/v1/records/abc", "auditor")
        .await
        .problem(400, "bad-request");
}

#[tokio::test]
async fn people_leave_an_access_trail_and_pipelines_do_not() {
    let mut env = Env::new();
    let store = env.store.clone();
    let s = store.as_ref();
    trailmark_server::governance::create_user(
        s,
        &env.access,
        "test",
        &crate::org("acme"),
        "alice",
        "correct horse battery",
    )
    .expect("user");
    let auditor = trailmark_access::Grant {
        role: Role::Auditor,
        scope: crate::scope("acme"),
    };
    trailmark_server::governance::grant(s, &env.access, "test", "alice", &auditor).expect("grant");
    env.token("alice", Role::Auditor, "acme", Some("alice"));
    let r = env
        .post_json(
            "/api/v1/records?scope=acme/payments",
            "admin",
            rec("custom.note", "PAY-7"),
        )
        .await;
    let i = r.json()["records"][0]["index"].as_u64().expect("index");

    let before = env.records_of("access.read").len();
    env.get("/api/v1/records?subject=ticket:PAY-7", "auditor")
        .await;
    assert_eq!(
        env.records_of("access.read").len(),
        before,
        "a service token is not a person"
    );

    let r = env.get(&format!("/api/v1/records/{i}"), "alice").await;
    assert_eq!(r.status, StatusCode::OK);
    env.get("/api/v1/records?subject=ticket:PAY-7", "alice")
        .await;
    env.get("/api/v1/graph?subject=ticket:PAY-7", "alice").await;
    let reads = env.records_of("access.read");
    assert_eq!(reads.len(), before + 3, "each of alice's reads is recorded");
    let last = trailmark_model::wire::to_json(&reads[before].record);
    assert_eq!(last["actor"], "user:alice");
    assert_eq!(last["payload"]["action"], "record");
    assert_eq!(last["payload"]["indices"], json!([i]));
    assert!(
        reads[before]
            .record
            .subjects
            .contains(&subject("principal", "user:alice"))
    );
    assert!(
        reads[before]
            .record
            .subjects
            .contains(&subject("org", "acme"))
    );

    // Alice's token can do no more than alice: once her grant is withdrawn, it reads nothing.
    trailmark_server::governance::revoke_grant(s, &env.access, "test", "alice", &auditor)
        .expect("revoke");
    env.get(&format!("/api/v1/records/{i}"), "alice")
        .await
        .problem(403, "forbidden");
    // Grants and revocations are themselves in the log.
    assert_eq!(env.records_of("access.role_granted").len(), 1);
    assert_eq!(env.records_of("access.role_revoked").len(), 1);
}

#[tokio::test]
async fn expired_revoked_and_malformed_tokens_are_401() {
    let env = Env::new();
    // Revoke over the API, as an admin; the revocation is logged.
    let created = env
        .post_json(
            "/api/v1/tokens",
            "admin",
            json!({"name": "short-lived", "role": "auditor", "scope": "acme"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let token = created.json()["token"].as_str().expect("token").to_owned();
    let id = created.json()["info"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let call = |t: String| {
        let req = Request::get("/api/v1/whoami")
            .header("authorization", format!("Bearer {t}"))
            .body(Body::empty())
            .expect("request");
        env.send(req)
    };
    assert_eq!(call(token.clone()).await.status, StatusCode::OK);
    let listed = env.get("/api/v1/tokens?org=acme", "admin").await;
    assert!(
        !String::from_utf8_lossy(&listed.body).contains(&token),
        "listing never shows a secret"
    );
    let r = env.delete(&format!("/api/v1/tokens/{id}"), "admin").await;
    assert_eq!(r.status, StatusCode::OK);
    let d = call(token).await.problem(401, "unauthenticated");
    assert!(d.contains("revoked"), "{d}");
    env.delete(&format!("/api/v1/tokens/{id}"), "admin")
        .await
        .problem(409, "conflict");
    assert_eq!(env.records_of("access.token_revoked").len(), 1);

    // An expiry in the past is refused at creation...
    env.post_json(
        "/api/v1/tokens",
        "admin",
        json!({"name": "old", "role": "auditor", "scope": "acme", "expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await
    .problem(400, "bad-request");
    // ...so make one that was created two hours ago and expired an hour ago.
    let now = jiff::Timestamp::now();
    let (expired, _) = env
        .access
        .create_token(
            "old",
            trailmark_access::Grant {
                role: Role::Auditor,
                scope: crate::scope("acme"),
            },
            None,
            Some(now - jiff::SignedDuration::from_hours(1)),
            "test",
            now - jiff::SignedDuration::from_hours(2),
        )
        .expect("token");
    let expired = expired.expose().to_owned();
    let d = call(expired).await.problem(401, "unauthenticated");
    assert!(d.contains("expired"), "{d}");

    let d = call("tmk_nonsense".into())
        .await
        .problem(401, "unauthenticated");
    assert!(
        !d.contains("nonsense"),
        "the presented token is not echoed: {d}"
    );
    call("tmk_abcdefgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into())
        .await
        .problem(401, "unauthenticated");
    call("not-a-token".into())
        .await
        .problem(401, "unauthenticated");
    let r = env.get("/api/v1/whoami", "").await;
    r.problem(401, "unauthenticated");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn the_graph_links_across_tools_and_hides_what_the_caller_may_not_read() {
    let env = Env::new();
    let commit = "a".repeat(40);
    let pay = json!({"kind": "custom.review", "subjects": [{"type": "commit", "id": commit}],
        "links": [{"rel": "implements", "to": {"type": "ticket", "id": "PAY-5"}}]});
    env.post_json("/api/v1/records?scope=acme/payments", "admin", pay)
        .await;
    let web = json!({"kind": "custom.deploy", "subjects": [{"type": "ticket", "id": "PAY-5"}]});
    env.post_json("/api/v1/records?scope=acme/web", "admin", web)
        .await;
    let full = env
        .get("/api/v1/graph?subject=ticket:PAY-5", "auditor")
        .await
        .json();
    assert_eq!(full["records"].as_array().expect("records").len(), 2);
    assert_eq!(full["hidden"], 0);
    assert!(
        full["subjects"]
            .as_array()
            .expect("subjects")
            .contains(&json!(format!("commit:{commit}")))
    );
    let part = env
        .get("/api/v1/graph?subject=ticket:PAY-5", "developer-web")
        .await
        .json();
    assert_eq!(part["records"].as_array().expect("records").len(), 1);
    assert_eq!(part["hidden"], 1);
    assert!(
        part["edges"].as_array().expect("edges").is_empty(),
        "no edge from a hidden record"
    );
    env.get("/api/v1/graph?subject=ticket:PAY-5&depth=99", "auditor")
        .await
        .problem(400, "bad-request");
}

#[tokio::test]
async fn metrics_count_only_what_the_caller_may_read_and_name_bad_parameters() {
    let env = Env::new();
    let deploy = |project: &str, id: &str| {
        trailmark_model::input::from_value(&json!({
            "kind": "github.deployment_status",
            "subjects": [{"type": "deployment", "id": id}, {"type": "environment", "id": "production"},
                         {"type": "project", "id": project}],
            "payload": {"state": "success", "environment": "production"}
        }))
        .expect("deploy record")
    };
    env.store
        .append(vec![
            deploy("acme/payments", "1"),
            deploy("acme/payments", "2"),
            deploy("acme/web", "3"),
        ])
        .expect("append");
    let day = |hours: i64| {
        jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(hours))
            .expect("time")
            .strftime("%Y-%m-%d")
            .to_string()
    };
    let (from, to) = (day(-72), day(24));
    let uri = format!("/api/v1/metrics?env=production&from={from}&to={to}&bucket=day");

    // The whole organisation: all three; a developer on acme/web: only its own one.
    let r = env.get(&uri, "auditor").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["metrics"]["deployment_frequency"]["total"], 3, "{v}");
    assert_eq!(v["env"], "production");
    assert_eq!(v["bucket"], "day");
    assert!(v["records_read"].as_u64().expect("count") >= 3);
    let per_bucket: u64 = v["metrics"]["deployment_frequency"]["per_bucket"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(per_bucket, 3, "every deployment falls in a bucket");
    let r = env.get(&uri, "developer-web").await;
    assert_eq!(r.json()["metrics"]["deployment_frequency"]["total"], 1);
    // Another environment: none.
    let r = env
        .get(
            &format!("/api/v1/metrics?env=staging&from={from}&to={to}"),
            "auditor",
        )
        .await;
    assert_eq!(r.json()["metrics"]["deployment_frequency"]["total"], 0);
    // Defaults: production, by week, twelve weeks to the end of today.
    let r = env.get("/api/v1/metrics", "auditor").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["bucket"], "week");
    assert_eq!(r.json()["metrics"]["deployment_frequency"]["total"], 3);

    // Bad parameters are named, with a 400.
    let r = env.get("/api/v1/metrics?bucket=fortnight", "auditor").await;
    assert!(r.problem(400, "bad-request").contains("bucket"));
    let r = env.get("/api/v1/metrics?from=yesterday", "auditor").await;
    assert!(r.problem(400, "bad-request").contains("from \"yesterday\""));
    let r = env
        .get(&format!("/api/v1/metrics?from={to}&to={from}"), "auditor")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
