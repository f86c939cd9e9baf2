//! Webhooks: authentication before parsing, durable acknowledgement, duplicates, limits, and
//! rejected deliveries recorded as security events.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use trailmark_model::Digest;
use trailmark_store::Store;

use crate::{
    CDEVENTS_SECRET, Env, GITLAB_SECRET, JENKINS_SECRET, JIRA_SECRET, fixture, hmac_hex, subject,
};

#[tokio::test]
async fn a_signed_github_delivery_is_stored_durably_with_its_raw_input() {
    let env = Env::new();
    let body = fixture("github/push/payload.json");
    let before = env.size();
    let r = env.github("push", "d-1", &body).await;
    let v = r.created();
    let n = v["appended"].as_u64().expect("count");
    assert!(n >= 1, "a push is at least one record");
    assert_eq!(v["duplicate"], false);
    // Acknowledged means committed: the store already has them, under the hook's project.
    assert_eq!(env.size(), before + n);
    let first = v["indices"][0].as_u64().expect("index");
    let rec = env.record(first);
    assert_eq!(rec.record.source.as_deref(), Some("github"));
    assert!(
        rec.record
            .subjects
            .contains(&subject("project", "acme/payments")),
        "filed under the hook's scope: {:?}",
        rec.record.subjects
    );
    let digest = Digest::of(&body);
    let stored = env
        .store
        .blob(&digest)
        .expect("read")
        .expect("raw input kept");
    assert_eq!(stored, body);

    // A re-delivery (same id) is acknowledged and stores nothing.
    let r = env.github("push", "d-1", &body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["duplicate"], true);
    assert_eq!(r.json()["appended"], 0);
    assert_eq!(env.size(), before + n);
}

/// A body past what the handler parses on its own thread (256 KiB) is parsed on the blocking
/// pool instead, and stored the same way: durable when acknowledged, raw input kept.
#[tokio::test]
async fn a_large_delivery_is_parsed_off_the_request_thread_and_stored_alike() {
    let env = Env::new();
    let mut body = fixture("github/push/payload.json");
    body.resize(body.len() + 300 * 1024, b' ');
    let before = env.size();
    let r = env.github("push", "d-large", &body).await;
    let n = r.created()["appended"].as_u64().expect("count");
    assert!(n >= 1, "a push is at least one record");
    assert_eq!(env.size(), before + n);
    let stored = env
        .store
        .blob(&Digest::of(&body))
        .expect("read")
        .expect("raw input kept");
    assert_eq!(stored, body);
}

#[tokio::test]
async fn rejected_deliveries_are_recorded_up_to_a_budget_per_minute_and_all_refused() {
    let env = Env::new();
    let body = fixture("github/push/payload.json");
    let before = env.size();
    let budget = trailmark_server::hooks::MAX_REJECTIONS_RECORDED_PER_MINUTE as usize;
    for i in 0..budget + 5 {
        let req = Request::post("/hooks/github")
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", format!("flood-{i}"))
            .header(
                "x-hub-signature-256",
                hmac_hex("not-the-secret-at-all", &body),
            );
        let r = env
            .send(req.body(Body::from(body.clone())).expect("request"))
            .await;
        r.problem(401, "bad-signature");
    }
    // An anonymous sender cannot grow the log without bound: the first ones are evidence,
    // the rest of the minute's are refused alike but not appended.
    assert_eq!(env.records_of("security.webhook_rejected").len(), budget);
    assert_eq!(env.size(), before + budget as u64);
    // A correctly signed delivery still goes through.
    let r = env.github("push", "after-flood", &body).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_bad_signature_is_refused_before_parsing_and_recorded() {
    let env = Env::new();
    let body = fixture("github/push/payload.json");
    let before = env.size();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        (
            "wrong secret",
            Some(hmac_hex("not-the-secret-at-all", &body)),
            "does not match",
        ),
        ("missing", None, "missing x-hub-signature-256"),
        ("not hex", Some("sha256=zz".into()), "malformed"),
        ("sha1 form", Some("sha1=abcdef".into()), "malformed"),
    ];
    for (i, (what, sig, reason)) in cases.iter().enumerate() {
        let mut req = Request::post("/hooks/github")
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", format!("bad-{i}"));
        if let Some(s) = sig {
            req = req.header("x-hub-signature-256", s);
        }
        let r = env
            .send(req.body(Body::from(body.clone())).expect("request"))
            .await;
        let detail = r.problem(401, "bad-signature");
        assert!(detail.contains(reason), "{what}: {detail}");
    }
    // Nothing from the payload was stored, but each rejection is itself evidence.
    let rejected = env.records_of("security.webhook_rejected");
    assert_eq!(rejected.len(), cases.len());
    assert_eq!(env.size(), before + cases.len() as u64);
    assert!(env.records_of("github.push").is_empty());
    let payload = trailmark_model::wire::to_json(&rejected[0].record);
    let text = payload.to_string();
    assert!(
        text.contains(&Digest::of(&body).to_string()),
        "names the body by digest"
    );
    assert!(!text.contains("github-secret"), "never the secret");
    assert!(text.contains("claimed_delivery"));
    // A tampered body with the original signature fails too.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let req = Request::post("/hooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-hub-signature-256", hmac_hex(crate::GITHUB_SECRET, &body))
        .body(Body::from(tampered))
        .expect("request");
    env.send(req).await.problem(401, "bad-signature");
}

#[tokio::test]
async fn limits_content_type_and_unknown_hooks() {
    let env = Env::new();
    let before = env.size();
    // 1 MiB limit in the test config.
    let big = vec![b' '; 1024 * 1024 + 1];
    let r = env.github("push", "big", &big).await;
    r.problem(413, "payload-too-large");
    // Chunked (no Content-Length) is limited too.
    let stream = futures_stream(big.clone());
    let req = Request::post("/hooks/github")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", hmac_hex(crate::GITHUB_SECRET, &big))
        .body(stream)
        .expect("request");
    env.send(req).await.problem(413, "payload-too-large");

    let body = fixture("github/push/payload.json");
    let req = Request::post("/hooks/github")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-hub-signature-256", hmac_hex(crate::GITHUB_SECRET, &body))
        .body(Body::from(body.clone()))
        .expect("request");
    let detail = env.send(req).await.problem(415, "unsupported-media-type");
    assert!(detail.contains("application/json"), "{detail}");

    let req = Request::post("/hooks/bitbucket")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    env.send(req).await.problem(404, "not-found");
    assert_eq!(env.size(), before, "none of these stored anything");
}

fn futures_stream(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = bytes
        .chunks(64 * 1024)
        .map(|c| Ok(axum::body::Bytes::copy_from_slice(c)))
        .collect();
    Body::from_stream(tokio_stream_iter(chunks))
}

fn tokio_stream_iter(
    items: Vec<Result<axum::body::Bytes, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    struct Iter(std::vec::IntoIter<Result<axum::body::Bytes, std::io::Error>>);
    impl futures_core::Stream for Iter {
        type Item = Result<axum::body::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

#[tokio::test]
async fn an_authenticated_but_unusable_delivery_is_422_and_stores_nothing() {
    let env = Env::new();
    let before = env.size();
    let body = br#"{"zen": "nothing to see"}"#;
    let r = env.github("push", "junk", body).await;
    r.problem(422, "unprocessable");
    let r = env.github("push", "junk2", b"{not json").await;
    r.problem(422, "unprocessable");
    assert_eq!(env.size(), before);
}

/// Asserts 201 and returns the first index the delivery was stored at.
fn created(r: &crate::Response) -> u64 {
    r.created()["indices"][0].as_u64().expect("index")
}

async fn post(env: &Env, path: &str, headers: &[(&str, String)], body: &[u8]) -> crate::Response {
    let mut req = Request::post(path).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    env.send(req.body(Body::from(body.to_vec())).expect("request"))
        .await
}

/// One source's good delivery, where it must be filed, and a delivery that must be refused.
struct SourceCase {
    path: &'static str,
    fixture: &'static str,
    good: Vec<(&'static str, String)>,
    filed_under: (&'static str, &'static str),
    bad: Vec<(&'static str, String)>,
}

#[tokio::test]
async fn gitlab_jira_jenkins_and_cdevents_authenticate_their_own_way() {
    let env = Env::new();
    let body = |f: &str| fixture(f);
    let cases = vec![
        // GitLab: the shared token header.
        SourceCase {
            path: "/hooks/gitlab",
            fixture: "gitlab/merge_request.json",
            good: vec![
                ("x-gitlab-token", GITLAB_SECRET.into()),
                ("x-gitlab-event", "Merge Request Hook".into()),
                ("x-gitlab-event-uuid", "gl-1".into()),
            ],
            filed_under: ("project", "acme/web"),
            bad: vec![("x-gitlab-token", "wrong-token-0123456789".into())],
        },
        // Jira: X-Hub-Signature HMAC.
        SourceCase {
            path: "/hooks/jira",
            fixture: "jira/webhook-cloud-issue-created-many-fields.json",
            good: vec![(
                "x-hub-signature",
                hmac_hex(
                    JIRA_SECRET,
                    &body("jira/webhook-cloud-issue-created-many-fields.json"),
                ),
            )],
            filed_under: ("org", "acme"),
            bad: vec![(
                "x-hub-signature",
                hmac_hex(
                    "wrong",
                    &body("jira/webhook-cloud-issue-created-many-fields.json"),
                ),
            )],
        },
        // Jenkins: a shared token (or an HMAC, below); no credential at all is refused.
        SourceCase {
            path: "/hooks/jenkins",
            fixture: "jenkins/notification-plugin-wiki-example.json",
            good: vec![("x-trailmark-token", JENKINS_SECRET.into())],
            filed_under: ("project", "acme/payments"),
            bad: vec![],
        },
        // CDEvents: HMAC, filed under another organisation.
        SourceCase {
            path: "/hooks/cdevents",
            fixture: "cdevents/service_deployed.json",
            good: vec![(
                "x-hub-signature-256",
                hmac_hex(CDEVENTS_SECRET, &body("cdevents/service_deployed.json")),
            )],
            filed_under: ("org", "beta"),
            bad: vec![("x-trailmark-token", "wrong-0123456789abcdef".into())],
        },
    ];
    for c in &cases {
        let bytes = body(c.fixture);
        let idx = created(&post(&env, c.path, &c.good, &bytes).await);
        let (ty, id) = c.filed_under;
        assert!(
            env.record(idx).record.subjects.contains(&subject(ty, id)),
            "{}: filed under {ty}:{id}",
            c.path
        );
        post(&env, c.path, &c.bad, &bytes)
            .await
            .problem(401, "bad-signature");
    }
    // The same Jenkins content again, now HMAC-signed, is a duplicate.
    let jenkins = body("jenkins/notification-plugin-wiki-example.json");
    let again = post(
        &env,
        "/hooks/jenkins",
        &[("x-hub-signature-256", hmac_hex(JENKINS_SECRET, &jenkins))],
        &jenkins,
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "same content again is a duplicate"
    );

    // Four rejections, four security events, each filed under its hook's organisation.
    let rejected = env.records_of("security.webhook_rejected");
    assert_eq!(rejected.len(), cases.len());
    assert!(
        rejected[3]
            .record
            .subjects
            .contains(&subject("org", "beta"))
    );
}
