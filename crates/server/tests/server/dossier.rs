//! Dossier export, certification, explain and population over HTTP, with their roles; an
//! exported dossier verifies offline.

use axum::http::StatusCode;
use serde_json::json;
use trailmark_access::Role;
use trailmark_log::SignerKey;

use crate::Env;

const POLICY: &str = "name = \"acme\"\n[approvals.release]\nroles = [\"approver\"]\n[gates.production]\nchecks = [\"approvals\", \"separation_of_duties\"]\n";

#[tokio::test]
async fn dossiers_are_exported_certified_explained_and_verify_offline() {
    let mut env = Env::new();
    let key = SignerKey::from_seed("test.example/log", [7; 32]).expect("key");
    let req = axum::http::Request::put("/api/v1/orgs/acme/policy")
        .header("content-type", "application/toml")
        .header("authorization", env.bearer("admin"))
        .body(axum::body::Body::from(POLICY))
        .expect("request");
    assert_eq!(env.send(req).await.status, StatusCode::CREATED);
    let pr = crate::fixture("github/pull_request/opened.payload.json");
    assert_eq!(
        env.github("pull_request", "d-1", &pr).await.status,
        StatusCode::CREATED
    );
    env.post_json(
        "/api/v1/releases/acme/payments",
        "release-manager",
        json!({"name": "pay", "version": "2", "environments": ["production"]}),
    )
    .await;
    let base = "/api/v1/releases/acme/payments/pay@2";
    env.post_json(
        &format!("{base}/links"),
        "release-manager",
        json!({"commits": ["ec26c3e57ca3a959ca5aad62de7213c562f8c821"]}),
    )
    .await;

    // Not approved: certification refused, with the gate's reasons.
    env.state.set_certifier(key.clone());
    let d = env
        .post_json(
            &format!("{base}/certify"),
            "release-manager",
            json!({"environment": "production"}),
        )
        .await
        .problem(422, "unprocessable");
    assert!(d.contains("the gate denies"), "{d}");
    crate::releases::person(&mut env, "alice", Role::Approver);
    let digest = env.get(base, "auditor").await.json()["evidence_digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    assert_eq!(
        env.post_json(
            &format!("{base}/approvals"),
            "alice-person",
            json!({"decision": "approve", "evidence_digest": digest})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    env.post_json(
        &format!("{base}/certify"),
        "auditor",
        json!({"environment": "production"}),
    )
    .await
    .problem(403, "forbidden");
    let c = env
        .post_json(
            &format!("{base}/certify"),
            "release-manager",
            json!({"environment": "production"}),
        )
        .await;
    assert_eq!(
        c.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&c.body)
    );
    assert_eq!(
        c.json()["envelope"]["payloadType"],
        "application/vnd.in-toto+json"
    );

    // Export: auditors yes, developers no; the file verifies offline with the log's key.
    env.get(&format!("{base}/dossier"), "developer")
        .await
        .problem(403, "forbidden");
    env.get(&format!("{base}/dossier"), "admin-beta")
        .await
        .problem(403, "forbidden");
    env.get(&format!("{base}/dossier?format=docx"), "auditor")
        .await
        .problem(400, "bad-request");
    let exported = env
        .get(&format!("{base}/dossier?raw_inputs=true"), "auditor")
        .await;
    assert_eq!(exported.status, StatusCode::OK);
    let rep = trailmark_dossier::verify::verify(&exported.body, &key.verifier()).expect("readable");
    assert!(rep.ok(), "{:?}", rep.failures);
    assert_eq!(rep.certifications, 1);
    assert!(
        env.records_of("dossier.exported").len() == 1,
        "the export is recorded"
    );
    let html = env
        .get(&format!("{base}/dossier?format=html"), "auditor")
        .await;
    assert_eq!(html.headers["content-type"], "text/html; charset=utf-8");
    let page = String::from_utf8(html.body.to_vec()).expect("utf-8");
    assert!(
        page.contains("acme/payments/pay@2") && page.contains("trailmark verify-dossier"),
        "{page}"
    );
    let pdf = env
        .get(&format!("{base}/dossier?format=pdf"), "auditor")
        .await;
    if cfg!(feature = "pdf") {
        assert_eq!(pdf.status, StatusCode::OK);
        assert_eq!(pdf.headers["content-type"], "application/pdf");
        assert!(
            pdf.body.starts_with(b"%PDF-"),
            "{:?}",
            &pdf.body[..16.min(pdf.body.len())]
        );
        let pdfa = b"<pdfaid:part>2</pdfaid:part>";
        assert!(
            pdf.body.windows(pdfa.len()).any(|w| w == pdfa),
            "not PDF/A-2"
        );
    } else {
        pdf.problem(400, "bad-request");
    }
    let oscal = env
        .get(&format!("{base}/dossier?format=oscal"), "auditor")
        .await
        .json();
    assert!(
        oscal["assessment-results"]["results"][0]["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{oscal}"
    );

    let v = env
        .get(&format!("{base}/explain"), "developer")
        .await
        .json();
    assert_eq!(v["questions"][0]["id"], "change_authorization");
    let pop = env.get("/api/v1/orgs/acme/audit/population?env=production&from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z", "auditor").await;
    assert_eq!(
        pop.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&pop.body)
    );
    assert!(
        pop.json()["deployments"]
            .as_array()
            .expect("list")
            .is_empty()
    );
    env.get(
        "/api/v1/orgs/acme/audit/population?env=production&from=x&to=y",
        "auditor",
    )
    .await
    .problem(400, "bad-request");
    env.get("/api/v1/orgs/acme/audit/population?env=production&from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z", "developer").await.problem(403, "forbidden");
}
