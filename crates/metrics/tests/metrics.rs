//! Metrics computed from realistic evidence: the shared fixtures' real webhook bodies (edited
//! only in ids, times, environments and states) run through the real ingest adapters, and
//! governance records built exactly as `trailmark_policy::ops` builds them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use trailmark_ingest::{Context, Draft, Format};
use trailmark_metrics::svg::{self, Unit};
use trailmark_metrics::{Bucket, EnvFilter, Metrics, Query, Ratio, Seconds, compute};
use trailmark_model::{LogIndex, NewRecord, Payload, Record, Timestamp};

const MIN: i64 = 60;
const HOUR: i64 = 3600;

fn t(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn fixture(rel: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/ingest")
        .join(rel);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

/// A log under construction: records get consecutive indices and the time they were received.
#[derive(Default)]
struct Log {
    records: Vec<Record>,
}

impl Log {
    fn add(&mut self, r: NewRecord, received: &str) -> u64 {
        let i = self.records.len() as u64;
        let (rec, _) = r.sequence(LogIndex(i), t(received));
        self.records.push(rec);
        i
    }

    /// A webhook body through `trailmark_ingest::ingest`, as the server's hook receivers do.
    fn hook(&mut self, format: Format, event: Option<&str>, body: &Value, received: &str) {
        let ctx = Context {
            event: event.map(str::to_owned),
            ..Context::default()
        };
        let got = trailmark_ingest::ingest(body.to_string().as_bytes(), Some(format), &ctx)
            .unwrap_or_else(|e| panic!("{format} {event:?}: {e}"));
        assert!(got.skipped.is_empty(), "{:?}", got.skipped);
        for r in got.records {
            self.add(r, received);
        }
    }

    fn draft(&mut self, d: Draft, received: &str) -> u64 {
        self.add(d.build().unwrap(), received)
    }

    /// A `github.push` of commits `(sha, commit timestamp, author username)`.
    fn push(&mut self, commits: &[(&str, &str, &str)], message: &str, received: &str) {
        let mut v = fixture("github/push/with-new-branch.payload.json");
        let template = v["commits"][0].clone();
        v["commits"] = commits
            .iter()
            .map(|(id, ts, who)| {
                let mut c = template.clone();
                c["id"] = json!(id);
                c["timestamp"] = json!(ts);
                c["message"] = json!(message);
                c["author"]["username"] = json!(who);
                c
            })
            .collect();
        v["after"] = json!(commits.last().unwrap().0);
        v["head_commit"] = Value::Null;
        v["repository"]["pushed_at"] = json!(t(received).as_millis() / 1000);
        self.hook(Format::Github, Some("push"), &v, received);
    }

    /// A GitHub `deployment_status` for deployment `id`.
    fn deploy(&mut self, id: u64, env: &str, state: &str, commit: &str, at: &str) {
        let mut v = fixture("github/deployment_status/payload.json");
        v["deployment"]["id"] = json!(id);
        v["deployment"]["sha"] = json!(commit);
        v["deployment"]["environment"] = json!(env);
        v["deployment"]["original_environment"] = json!(env);
        v["deployment_status"]["environment"] = json!(env);
        v["deployment_status"]["state"] = json!(state);
        v["deployment_status"]["created_at"] = json!(at);
        v["deployment_status"]["updated_at"] = json!(at);
        self.hook(Format::Github, Some("deployment_status"), &v, at);
    }

    /// A GitLab deployment hook.
    fn gitlab_deploy(&mut self, id: u64, env: &str, status: &str, commit: &str, at: &str) {
        let mut v = fixture("gitlab/deployment.json");
        v["deployment_id"] = json!(id);
        v["environment"] = json!(env);
        v["environment_slug"] = json!(env.to_lowercase());
        v["status"] = json!(status);
        v["status_changed_at"] = json!(at);
        v["short_sha"] = json!(&commit[..8]);
        v["commit_url"] = json!(format!(
            "http://10.126.0.2:3000/root/test-deployment-webhooks/-/commit/{commit}"
        ));
        self.hook(Format::Gitlab, Some("Deployment Hook"), &v, at);
    }

    /// A CDEvents event built on the conformance `service_deployed` event.
    fn cdevent(&mut self, ty: &str, id: &str, content: Value, at: &str) {
        let mut v = fixture("cdevents/service_deployed.json");
        v["context"]["type"] = json!(ty);
        v["context"]["timestamp"] = json!(at);
        v["context"]["id"] = json!(format!("{id}-{at}"));
        v["subject"]["id"] = json!(id);
        v["subject"]["content"] = content;
        self.hook(Format::Cdevents, None, &v, at);
    }

    fn rollback(&mut self, id: &str, status: &str, extra: Draft, payload: Value, at: &str) {
        let d = extra
            .subject("rollback", id)
            .subject("release", "acme/pay/api@1.1")
            .subject("project", "acme/pay")
            .actor(Some("github:ops"))
            .payload(payload);
        let _ = status;
        self.draft(d, at);
    }
}

fn query(from: &str, to: &str, bucket: Bucket) -> Query {
    Query::new(EnvFilter::names(["production"]), t(from), t(to), bucket).unwrap()
}

fn weeks() -> Query {
    // Monday 2024-01-01 to Monday 2024-01-15: ISO weeks 2024-W01 and 2024-W02.
    query(
        "2024-01-01T00:00:00Z",
        "2024-01-15T00:00:00Z",
        Bucket::IsoWeek,
    )
}

fn skipped(m: &Metrics, metric: &str, reason_part: &str) -> u64 {
    m.skipped
        .iter()
        .filter(|s| s.metric == metric && s.reason.contains(reason_part))
        .map(|s| s.count)
        .sum()
}

/// Two weeks of deliveries to production (and some to staging).
///
/// Week 1: four GitHub deployments; an incident strikes after the third and is resolved 45
/// minutes later. Week 2: a GitLab deployment (environment spelt `Production`), a failed
/// GitHub deployment, one rolled back and then hit by an incident that only the next
/// deployment ends, and that next deployment.
fn dora_log() -> Log {
    let mut log = Log::default();
    let dev = "Codertocat";
    // Week 1 commits and deploys: lead times 60, 120, 30, 240 minutes.
    log.push(
        &[(&sha(1), "2024-01-01T09:00:00Z", dev)],
        "Add login",
        "2024-01-01T09:01:00Z",
    );
    log.deploy(
        101,
        "production",
        "success",
        &sha(1),
        "2024-01-01T10:00:00Z",
    );
    log.push(
        &[(&sha(2), "2024-01-02T09:00:00Z", dev)],
        "Fix rounding",
        "2024-01-02T09:02:00Z",
    );
    log.deploy(
        102,
        "production",
        "in_progress",
        &sha(2),
        "2024-01-02T10:58:00Z",
    );
    log.deploy(
        102,
        "production",
        "success",
        &sha(2),
        "2024-01-02T11:00:00Z",
    );
    // A re-delivered status of the same deployment is still one deployment.
    log.deploy(
        102,
        "production",
        "success",
        &sha(2),
        "2024-01-02T11:00:05Z",
    );
    log.push(
        &[(&sha(3), "2024-01-03T09:00:00Z", dev)],
        "Tune cache",
        "2024-01-03T09:01:00Z",
    );
    log.deploy(
        103,
        "production",
        "success",
        &sha(3),
        "2024-01-03T09:30:00Z",
    );
    log.cdevent(
        "dev.cdevents.incident.detected.0.1.0",
        "inc-1",
        json!({"environment": {"id": "production"}, "description": "checkout errors"}),
        "2024-01-03T10:00:00Z",
    );
    log.cdevent(
        "dev.cdevents.incident.resolved.0.1.0",
        "inc-1",
        json!({"environment": {"id": "production"}}),
        "2024-01-03T10:45:00Z",
    );
    log.push(
        &[(&sha(4), "2024-01-04T08:00:00Z", dev)],
        "Bump deps",
        "2024-01-04T08:01:00Z",
    );
    log.deploy(
        104,
        "production",
        "success",
        &sha(4),
        "2024-01-04T12:00:00Z",
    );
    // Staging is not production: none of this counts.
    log.deploy(150, "staging", "success", &sha(4), "2024-01-04T09:00:00Z");
    log.deploy(151, "staging", "failure", &sha(4), "2024-01-05T09:00:00Z");
    log.gitlab_deploy(15, "staging", "success", &sha(4), "2024-01-05T10:00:00Z");
    log.cdevent(
        "dev.cdevents.incident.detected.0.1.0",
        "inc-staging",
        json!({"environment": {"id": "staging"}}),
        "2024-01-05T11:00:00Z",
    );

    // Week 2. A GitLab commit and deployment: lead time 180 minutes.
    let mut gl = fixture("gitlab/push.json");
    let mut c = gl["commits"][0].clone();
    c["id"] = json!(sha(5));
    c["timestamp"] = json!("2024-01-08T09:00:00+02:00");
    gl["commits"] = json!([c]);
    gl["after"] = json!(sha(5));
    log.hook(
        Format::Gitlab,
        Some("Push Hook"),
        &gl,
        "2024-01-08T07:00:10Z",
    );
    log.gitlab_deploy(16, "Production", "running", &sha(5), "2024-01-08T09:55:00Z");
    log.gitlab_deploy(16, "Production", "success", &sha(5), "2024-01-08T10:00:00Z");
    // A failed deployment attempt.
    log.push(
        &[(&sha(6), "2024-01-09T08:00:00Z", dev)],
        "Migrate",
        "2024-01-09T08:01:00Z",
    );
    log.deploy(
        106,
        "production",
        "failure",
        &sha(6),
        "2024-01-09T10:00:00Z",
    );
    // Deployed from a push whose commit list GitHub truncated: only the push time is known
    // (lead time 60 minutes from the push).
    let mut p = fixture("github/push/with-new-branch.payload.json");
    p["commits"] = json!([]);
    p["head_commit"] = Value::Null;
    p["after"] = json!(sha(7));
    p["repository"]["pushed_at"] = json!(t("2024-01-10T09:00:00Z").as_millis() / 1000);
    log.hook(Format::Github, Some("push"), &p, "2024-01-10T09:00:01Z");
    log.deploy(
        107,
        "production",
        "success",
        &sha(7),
        "2024-01-10T10:00:00Z",
    );
    // It is rolled back (as `Governance::propose_rollback` / `update_rollback` record it) …
    log.rollback(
        "acme/pay/api@1.1/rollback-1",
        "proposed",
        Draft::new("rollback.decided")
            .link("rolls_back_to", "artifact", format!("sha256:{}", "ab".repeat(32)))
            .link("of_deployment", "deployment", "github.com/Codertocat/Hello-World/deployments/107")
            .link("in_environment", "environment", "production"),
        json!({"status": "proposed", "reason": "errors", "plan": "redeploy 1.0", "due": null,
               "environment": "production", "target_artifact": format!("sha256:{}", "ab".repeat(32)),
               "incident": null, "deployment": "github.com/Codertocat/Hello-World/deployments/107"}),
        "2024-01-10T12:00:00Z",
    );
    log.rollback(
        "acme/pay/api@1.1/rollback-1",
        "executed",
        Draft::new("rollback.decided"),
        json!({"status": "executed", "note": null, "target_gate_record": null}),
        "2024-01-10T13:00:00Z",
    );
    // … and a cancelled rollback proposal blames nobody.
    log.rollback(
        "acme/pay/api@1.0/rollback-1",
        "proposed",
        Draft::new("rollback.decided").link("in_environment", "environment", "production"),
        json!({"status": "proposed", "reason": "false alarm", "plan": "none", "environment": "production",
               "target_artifact": format!("sha256:{}", "cd".repeat(32))}),
        "2024-01-04T13:00:00Z",
    );
    log.rollback(
        "acme/pay/api@1.0/rollback-1",
        "cancelled",
        Draft::new("rollback.decided"),
        json!({"status": "cancelled", "note": "not needed"}),
        "2024-01-04T13:10:00Z",
    );
    // An incident nobody resolves explicitly: the next deployment, a day later, restores.
    log.cdevent(
        "dev.cdevents.incident.detected.0.1.0",
        "inc-2",
        json!({"environment": {"id": "production"}}),
        "2024-01-11T10:00:00Z",
    );
    log.push(
        &[(&sha(8), "2024-01-12T09:00:00Z", dev)],
        "Hotfix",
        "2024-01-12T09:01:00Z",
    );
    log.deploy(
        108,
        "production",
        "success",
        &sha(8),
        "2024-01-12T10:00:00Z",
    );
    // After the window: neither counted nor a restore of anything.
    log.push(
        &[(&sha(9), "2024-01-15T09:00:00Z", dev)],
        "Next",
        "2024-01-15T09:01:00Z",
    );
    log.deploy(
        109,
        "production",
        "success",
        &sha(9),
        "2024-01-15T10:00:00Z",
    );
    log
}

#[test]
fn dora_metrics_of_two_weeks() {
    let log = dora_log();
    let m = compute(&log.records, &weeks());
    let labels: Vec<_> = m.buckets.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["2024-W01", "2024-W02"]);

    // Deployment frequency: 4 in week 1; 3 successful in week 2 (the failure is not one).
    assert_eq!(m.deployment_frequency.per_bucket, [4, 3]);
    assert_eq!(m.deployment_frequency.total, 7);
    assert_eq!(m.deployment_frequency.unavailable, None);

    // Lead time: [30, 60, 60(push), 60, 120, 180, 240] minutes.
    let lt = &m.lead_time;
    assert_eq!(lt.stat.samples, 7);
    assert_eq!(lt.stat.median, Some(Seconds(60 * MIN)));
    assert_eq!(lt.stat.p90, Some(Seconds(240 * MIN)));
    assert_eq!(lt.stat.mean, Some(Seconds(750 * MIN / 7)));
    assert_eq!(lt.from_push_time, 1);
    assert_eq!(lt.per_bucket[0].median, Some(Seconds(90 * MIN)));
    assert_eq!(lt.per_bucket[0].samples, 4);
    assert_eq!(lt.per_bucket[1].median, Some(Seconds(60 * MIN)));

    // Change failure rate: week 1, the deployment the incident followed (1/4); week 2, the
    // failed attempt and the rolled-back deployment (2/4).
    let cfr = &m.change_failure_rate;
    assert_eq!((cfr.failures, cfr.deployments), (3, 8));
    assert_eq!(cfr.rate.as_ref().map(|r| r.percent.as_str()), Some("37.5"));
    assert_eq!(cfr.per_bucket[0].rate, Ratio::new(1, 4));
    assert_eq!(cfr.per_bucket[1].rate, Ratio::new(2, 4));
    assert_eq!(cfr.causes.failed_deployment, 1);
    assert_eq!(cfr.causes.rollback, 1);
    // inc-1 is blamed on deployment 103, inc-2 on 107 (also rolled back).
    assert_eq!(cfr.causes.incident, 2);

    // Time to restore: 45 minutes (resolved) and 24 hours (next deployment).
    let ttr = &m.time_to_restore;
    assert_eq!(ttr.stat.samples, 2);
    assert_eq!(ttr.stat.median, Some(Seconds((45 * MIN + 24 * HOUR) / 2)));
    assert_eq!(ttr.per_bucket[0].median, Some(Seconds(45 * MIN)));
    assert_eq!(ttr.per_bucket[1].median, Some(Seconds(24 * HOUR)));
    assert_eq!(ttr.open, 0);

    assert!(m.skipped.is_empty(), "{:#?}", m.skipped);
}

#[test]
fn windows_environments_and_input_order() {
    let log = dora_log();
    // Week 2 only, in days: the GitLab deployment at 10:00 on Monday is in the first day.
    let days = query("2024-01-08T10:00:00Z", "2024-01-12T10:00:00Z", Bucket::Day);
    let m = compute(&log.records, &days);
    assert_eq!(m.buckets.len(), 5);
    assert_eq!(m.buckets[0].from, "2024-01-08T10:00:00Z");
    assert_eq!(m.buckets[0].to, "2024-01-09T00:00:00Z");
    // `from` is inside the window, `to` (deployment 108) is not.
    assert_eq!(m.deployment_frequency.per_bucket, [1, 0, 1, 0, 0]);
    assert_eq!(m.change_failure_rate.deployments, 3);
    // inc-2 is still open at the end of the records? No: deployment 108 restores it, even
    // though it is outside the window.
    assert_eq!(m.time_to_restore.stat.median, Some(Seconds(24 * HOUR)));

    // Every environment: staging's two successes, its failure and its incident count too.
    let any = Query::new(
        EnvFilter::any(),
        t("2024-01-01T00:00:00Z"),
        t("2024-01-15T00:00:00Z"),
        Bucket::IsoWeek,
    )
    .unwrap();
    let m = compute(&log.records, &any);
    assert_eq!(m.deployment_frequency.per_bucket, [6, 3]);
    assert_eq!(m.change_failure_rate.deployments, 11);
    // The staging incident follows the GitLab staging deployment; the staging failure is one.
    assert_eq!(m.change_failure_rate.failures, 5);
    assert_eq!(m.time_to_restore.open, 1);

    // "prod" alone matches nothing here; "PRODUCTION" matches case-insensitively.
    let prod = Query::new(
        EnvFilter::names(["prod"]),
        t("2024-01-01T00:00:00Z"),
        t("2024-01-15T00:00:00Z"),
        Bucket::IsoWeek,
    )
    .unwrap();
    let m = compute(&log.records, &prod);
    assert_eq!(m.deployment_frequency.total, 0);
    assert_eq!(
        m.deployment_frequency.unavailable.as_deref(),
        Some("no successful deployments to prod in the window")
    );
    let upper = Query::new(
        EnvFilter::names(["PRODUCTION", "prod"]),
        t("2024-01-01T00:00:00Z"),
        t("2024-01-15T00:00:00Z"),
        Bucket::IsoWeek,
    )
    .unwrap();
    assert_eq!(compute(&log.records, &upper).deployment_frequency.total, 7);

    // The order records come in does not matter.
    let forward = serde_json::to_string(&compute(&log.records, &weeks())).unwrap();
    let mut reversed: Vec<&Record> = log.records.iter().collect();
    reversed.reverse();
    let backward = serde_json::to_string(&compute(reversed, &weeks())).unwrap();
    assert_eq!(forward, backward);
}

#[test]
fn approval_time_to_decision_and_bottlenecks() {
    let mut log = Log::default();
    let release = |log: &mut Log, version: &str, envs: &[&str], at: &str| {
        let id = format!("acme/pay/api@{version}");
        let mut d = Draft::new("release.created")
            .subject("release", &id)
            .subject("project", "acme/pay")
            .actor(Some("github:alice"))
            .payload(
                json!({"name": "api", "version": version, "project": "acme/pay",
                            "environments": envs, "description": null}),
            );
        for e in envs {
            d = d.link("targets", "environment", e);
        }
        log.draft(d, at);
    };
    let decide = |log: &mut Log, subject: (&str, &str), who: &str, decision: &str, at: &str| {
        let d = Draft::new("approval.decided")
            .subject(subject.0, subject.1)
            .subject("project", "acme/pay")
            .actor(Some(who))
            .payload(json!({"decision": decision, "evidence_digest": format!("sha256:{}", "ef".repeat(32)),
                            "roles": ["approver"], "comment": null, "policy_digest": format!("sha256:{}", "01".repeat(32))}));
        log.draft(d, at);
    };
    // A release of the week before the window: its approval in the window counts, measured
    // from the release's creation.
    release(&mut log, "1.0", &["production"], "2023-12-31T09:00:00Z");
    decide(
        &mut log,
        ("release", "acme/pay/api@1.0"),
        "email:bob@example.com",
        "approve",
        "2024-01-01T11:00:00Z",
    );
    decide(
        &mut log,
        ("release", "acme/pay/api@1.0"),
        "github:carol",
        "approve",
        "2024-01-01T09:00:00Z",
    );
    release(&mut log, "1.1", &["production"], "2024-01-09T09:00:00Z");
    decide(
        &mut log,
        ("release", "acme/pay/api@1.1"),
        "github:bob",
        "approve",
        "2024-01-09T09:30:00Z",
    );
    decide(
        &mut log,
        ("release", "acme/pay/api@1.1"),
        "github:carol",
        "reject",
        "2024-01-09T10:00:00Z",
    );
    release(
        &mut log,
        "1.2",
        &["production", "eu-production"],
        "2024-01-10T08:00:00Z",
    );
    decide(
        &mut log,
        ("release", "acme/pay/api@1.2"),
        "github:bob",
        "approve",
        "2024-01-10T08:15:00Z",
    );
    // Bound for staging only: not production's bottleneck.
    release(&mut log, "1.2-rc", &["staging"], "2024-01-09T08:00:00Z");
    decide(
        &mut log,
        ("release", "acme/pay/api@1.2-rc"),
        "github:dave",
        "approve",
        "2024-01-09T08:05:00Z",
    );
    // An exception's retrospective approval, measured from when it was raised.
    let exc = "acme/pay/EXC-0123456789";
    log.draft(
        Draft::new("exception.raised")
            .subject("exception", exc)
            .subject("release", "acme/pay/api@1.1")
            .subject("project", "acme/pay")
            .actor(Some("github:alice"))
            .payload(json!({"reason": "hotfix", "release": "acme/pay/api@1.1", "environments": ["production"],
                            "expires_at": "2024-01-12T10:00:00Z", "compensating_controls": ["pairing"],
                            "authorized_by": null, "retro_approval_within": "2d"})),
        "2024-01-11T10:00:00Z",
    );
    decide(
        &mut log,
        ("exception", exc),
        "github:eve",
        "approve",
        "2024-01-11T14:00:00Z",
    );
    // A GitHub environment approval: requested, then approved 20 minutes later.
    let mut req = fixture("github/deployment_review/requested.payload.json");
    req["environment"] = json!("production");
    req["workflow_job_run"]["environment"] = json!("production");
    req["since"] = json!("2024-01-12T08:00:00Z");
    log.hook(
        Format::Github,
        Some("deployment_review"),
        &req,
        "2024-01-12T08:00:01Z",
    );
    let mut ok = req.clone();
    ok["action"] = json!("approved");
    ok["approver"] = json!({"login": "bob", "id": 7, "type": "User"});
    ok["comment"] = json!("ship it");
    ok["workflow_run"]["updated_at"] = json!("2024-01-12T08:20:00Z");
    log.hook(
        Format::Github,
        Some("deployment_review"),
        &ok,
        "2024-01-12T08:20:01Z",
    );
    // A decision nobody can read, and one about a release we never saw created.
    decide(
        &mut log,
        ("release", "acme/pay/api@1.1"),
        "github:bob",
        "maybe",
        "2024-01-09T11:00:00Z",
    );
    decide(
        &mut log,
        ("release", "acme/pay/api@0.9"),
        "github:carol",
        "approve",
        "2024-01-02T10:00:00Z",
    );

    let people: BTreeMap<String, String> = [
        ("github:bob", "bob"),
        ("email:bob@example.com", "bob"),
        ("github:carol", "carol"),
        ("github:eve", "eve"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    let m = compute(&log.records, &weeks().with_people(people));
    let a = &m.approvals;
    // In the window: bob 4 (26h, 30m, 15m, 20m), carol 3 (24h, 1h reject, one without a
    // request), eve 1 (4h). carol's decision at 09:00 on the 1st is 24 hours after 1.0.
    assert_eq!((a.decisions, a.approved, a.rejected), (8, 7, 1));
    assert_eq!(a.time_to_decision.samples, 7);
    // Sorted: 15m, 20m, 30m, 1h, 4h, 24h, 26h.
    assert_eq!(a.time_to_decision.median, Some(Seconds(HOUR)));
    assert_eq!(
        a.time_to_decision.mean,
        Some(Seconds((15 + 20 + 30 + 60 + 240 + 1440 + 1560) * MIN / 7))
    );
    let table: Vec<_> = a
        .approvers
        .iter()
        .map(|x| {
            (
                x.approver.as_str(),
                x.decisions,
                x.share.as_ref().unwrap().percent.as_str(),
                x.median_time_to_decision,
            )
        })
        .collect();
    assert_eq!(
        table,
        [
            ("bob", 4, "50.0", Some(Seconds(25 * MIN))),
            ("carol", 3, "37.5", Some(Seconds((HOUR + 24 * HOUR) / 2))),
            ("eve", 1, "12.5", Some(Seconds(4 * HOUR))),
        ]
    );
    assert_eq!(a.approvers[1].rejected, 1);
    assert_eq!(a.per_bucket[0].median, Some(Seconds(25 * HOUR)));
    assert_eq!(a.per_bucket[1].samples, 5);
    assert_eq!(skipped(&m, "approvals", "no approve/reject decision"), 1);
    assert_eq!(
        skipped(&m, "approvals", "no request for the decided subject"),
        1
    );
    assert_eq!(a.time_to_decision_unavailable, None);
}

#[test]
fn change_requests_per_sprint() {
    let mut log = Log::default();
    let ticket = |log: &mut Log, key: &str, at: &str| {
        let mut v = fixture("jira/webhook-issue-created.json");
        v["timestamp"] = json!(t(at).as_millis());
        v["issue"]["key"] = json!(key);
        log.hook(Format::Jira, None, &v, at);
    };
    let pr = |log: &mut Log, n: u64, at: &str| {
        let mut v = fixture("github/pull_request/opened.payload.json");
        v["number"] = json!(n);
        v["pull_request"]["number"] = json!(n);
        v["pull_request"]["created_at"] = json!(at);
        log.hook(Format::Github, Some("pull_request"), &v, at);
    };
    ticket(&mut log, "TES-41", "2024-01-01T09:00:00Z");
    ticket(&mut log, "TES-42", "2024-01-05T09:00:00Z");
    // A re-delivery of the same webhook is the same ticket.
    ticket(&mut log, "TES-42", "2024-01-05T09:00:00Z");
    ticket(&mut log, "TES-43", "2024-01-20T09:00:00Z");
    ticket(&mut log, "TES-40", "2023-12-29T09:00:00Z");
    pr(&mut log, 2, "2024-01-03T12:00:00Z");
    pr(&mut log, 3, "2024-01-16T12:00:00Z");
    let mut mr = fixture("gitlab/merge_request.json");
    mr["object_attributes"]["iid"] = json!(7);
    mr["object_attributes"]["created_at"] = json!("2024-01-22T08:00:00Z");
    log.hook(
        Format::Gitlab,
        Some("Merge Request Hook"),
        &mr,
        "2024-01-22T08:00:01Z",
    );
    // Not an opening: a PR update.
    let mut sync = fixture("github/pull_request/synchronize.payload.json");
    sync["pull_request"]["updated_at"] = json!("2024-01-04T10:00:00Z");
    log.hook(
        Format::Github,
        Some("pull_request"),
        &sync,
        "2024-01-04T10:00:01Z",
    );

    // Two-week sprints from Monday 1 January.
    let m = compute(
        &log.records,
        &query(
            "2024-01-01T00:00:00Z",
            "2024-01-29T00:00:00Z",
            "14d".parse().unwrap(),
        ),
    );
    let labels: Vec<_> = m.buckets.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["2024-01-01", "2024-01-15"]);
    let cr = &m.change_requests;
    let per: Vec<_> = cr
        .per_bucket
        .iter()
        .map(|b| (b.tickets, b.pull_requests))
        .collect();
    assert_eq!(per, [(2, 1), (1, 2)]);
    assert_eq!((cr.total, cr.tickets, cr.pull_requests), (6, 3, 3));
    assert_eq!(m.bucket, "14d");
    let chart = &svg::charts(&m)[6];
    assert_eq!(chart.title, "Tickets and pull requests opened per 14 days");
    assert!(
        chart
            .svg
            .contains("<desc>2024-01-01: 3; 2024-01-15: 3</desc>")
    );
}

/// AI-generated changes, by every supported marking, and what human review did to them.
#[test]
fn ai_intervention_rate() {
    let bot = "copilot-swe-agent[bot]";
    let mut log = Log::default();
    let opened = |log: &mut Log, n: u64, head: &str, labels: &[&str], opener: &str, at: &str| {
        let mut v = fixture("github/pull_request/opened.payload.json");
        v["number"] = json!(n);
        v["pull_request"]["number"] = json!(n);
        v["pull_request"]["created_at"] = json!(at);
        v["pull_request"]["head"]["sha"] = json!(head);
        v["pull_request"]["user"]["login"] = json!(opener);
        v["sender"]["login"] = json!(opener);
        v["pull_request"]["labels"] = labels
            .iter()
            .map(|l| json!({"name": l, "color": "ededed"}))
            .collect();
        log.hook(Format::Github, Some("pull_request"), &v, at);
    };
    let closed = |log: &mut Log, n: u64, merged: bool, who: &str, at: &str| {
        let mut v = fixture("github/pull_request/closed.payload.json");
        v["number"] = json!(n);
        v["pull_request"]["number"] = json!(n);
        v["pull_request"]["merged"] = json!(merged);
        v["pull_request"]["merged_at"] = if merged { json!(at) } else { Value::Null };
        v["pull_request"]["closed_at"] = json!(at);
        v["pull_request"]["labels"] = json!([]);
        v["pull_request"]["head"]["sha"] = json!(sha(n as u8));
        v["pull_request"]["merge_commit_sha"] = json!(sha(100 + n as u8));
        v["sender"]["login"] = json!(who);
        log.hook(Format::Github, Some("pull_request"), &v, at);
    };
    // PR 10: labelled ai-generated; a human requests changes.
    opened(
        &mut log,
        10,
        &sha(10),
        &["enhancement", "AI-Generated"],
        "mona",
        "2024-01-02T09:00:00Z",
    );
    let mut review = fixture("github/pull_request_review/submitted.payload.json");
    review["pull_request"]["number"] = json!(10);
    review["review"]["state"] = json!("changes_requested");
    review["review"]["user"]["login"] = json!("erin");
    review["review"]["submitted_at"] = json!("2024-01-02T10:00:00Z");
    log.hook(
        Format::Github,
        Some("pull_request_review"),
        &review,
        "2024-01-02T10:00:01Z",
    );
    // PR 11: opened by the AI agent, merged untouched.
    opened(&mut log, 11, &sha(11), &[], bot, "2024-01-03T09:00:00Z");
    closed(&mut log, 11, true, "mona", "2024-01-03T15:00:00Z");
    // PR 12: annotated by the pipeline that generated it; a human pushes a fix before merge.
    opened(&mut log, 12, &sha(12), &[], "mona", "2024-01-09T09:00:00Z");
    let note = json!({"kind": "ai.generated", "subjects": [{"type": "pr", "id": "github.com/Codertocat/Hello-World#12"}],
                      "payload": {"generated_by": {"type": "AI", "tool": "copilot-workspace"}}});
    log.add(
        trailmark_model::parse_record(&note.to_string()).unwrap(),
        "2024-01-09T09:00:05Z",
    );
    let mut sync = fixture("github/pull_request/synchronize.payload.json");
    sync["number"] = json!(12);
    sync["pull_request"]["number"] = json!(12);
    sync["pull_request"]["user"]["login"] = json!("mona");
    sync["pull_request"]["updated_at"] = json!("2024-01-09T11:00:00Z");
    sync["sender"]["login"] = json!("dana");
    log.hook(
        Format::Github,
        Some("pull_request"),
        &sync,
        "2024-01-09T11:00:01Z",
    );
    closed(&mut log, 12, true, "dana", "2024-01-09T12:00:00Z");
    // PR 13: labelled; a human closes it unmerged.
    opened(
        &mut log,
        13,
        &sha(13),
        &["ai-generated"],
        "mona",
        "2024-01-10T09:00:00Z",
    );
    closed(&mut log, 13, false, "erin", "2024-01-10T10:00:00Z");
    // PR 14: AI-labelled, the agent itself pushes more commits and closes it: no human override.
    opened(
        &mut log,
        14,
        &sha(14),
        &["ai-generated"],
        bot,
        "2024-01-11T09:00:00Z",
    );
    let mut own = sync.clone();
    own["number"] = json!(14);
    own["pull_request"]["number"] = json!(14);
    own["sender"]["login"] = json!(bot);
    own["pull_request"]["updated_at"] = json!("2024-01-11T10:00:00Z");
    log.hook(
        Format::Github,
        Some("pull_request"),
        &own,
        "2024-01-11T10:00:00Z",
    );
    // PR 15: not AI-generated; changes requested — not in the rate.
    opened(&mut log, 15, &sha(15), &[], "mona", "2024-01-11T09:00:00Z");
    let mut r15 = review.clone();
    r15["pull_request"]["number"] = json!(15);
    r15["review"]["submitted_at"] = json!("2024-01-11T10:00:00Z");
    log.hook(
        Format::Github,
        Some("pull_request_review"),
        &r15,
        "2024-01-11T10:00:01Z",
    );
    // A commit the agent pushed straight to main, reverted by a human.
    log.push(
        &[(&sha(20), "2024-01-04T09:00:00Z", bot)],
        "Refactor config loader",
        "2024-01-04T09:00:10Z",
    );
    log.push(
        &[(&sha(21), "2024-01-04T11:00:00Z", "mona")],
        &format!(
            "Revert \"Refactor config loader\"\n\nThis reverts commit {}.",
            sha(20)
        ),
        "2024-01-04T11:00:10Z",
    );
    // Before the window: not counted.
    opened(
        &mut log,
        9,
        &sha(9),
        &["ai-generated"],
        "mona",
        "2023-12-20T09:00:00Z",
    );

    let q = weeks().with_ai_actors([format!("github:{bot}")]);
    let m = compute(&log.records, &q);
    let ai = &m.ai_intervention;
    // PRs 10, 11, 12, 13, 14 and the commit; overridden: 10, 12, 13 and the commit.
    assert_eq!((ai.overridden, ai.ai_changes), (4, 6));
    assert_eq!(ai.rate.as_ref().unwrap().percent, "66.7");
    assert_eq!(
        (
            ai.reasons.changes_requested,
            ai.reasons.closed_unmerged,
            ai.reasons.human_follow_up,
            ai.reasons.reverted
        ),
        (1, 1, 1, 1)
    );
    let per: Vec<_> = ai
        .per_bucket
        .iter()
        .map(|b| (b.overridden, b.ai_changes))
        .collect();
    assert_eq!(per, [(2, 3), (2, 3)]);

    // Without the agent's identity configured, PR 11 and the pushed commit are not known to be
    // AI output; PR 14's own pushes are still its author's, not a review.
    let m = compute(&log.records, &weeks());
    assert_eq!(
        (m.ai_intervention.overridden, m.ai_intervention.ai_changes),
        (3, 4)
    );
}

#[test]
fn garbled_records_are_skipped_and_counted() {
    let mut log = dora_log();
    // A status without its state, and one for no environment at all.
    let mut v = fixture("github/deployment_status/payload.json");
    v["deployment"]["id"] = json!(900);
    v["deployment_status"]["updated_at"] = json!("2024-01-05T10:00:00Z");
    v["deployment_status"]
        .as_object_mut()
        .unwrap()
        .remove("state");
    log.hook(
        Format::Github,
        Some("deployment_status"),
        &v,
        "2024-01-05T10:00:00Z",
    );
    let mut v = fixture("github/deployment_status/payload.json");
    v["deployment"]["id"] = json!(901);
    v["deployment_status"]["updated_at"] = json!("2024-01-05T11:00:00Z");
    v["deployment_status"]["environment"] = json!("");
    v["deployment"]["environment"] = json!("");
    log.hook(
        Format::Github,
        Some("deployment_status"),
        &v,
        "2024-01-05T11:00:00Z",
    );
    // A deployment naming no commit: counted as a deployment, left out of lead time.
    let mut v = fixture("github/deployment_status/payload.json");
    v["deployment"]["id"] = json!(902);
    v["deployment"]["sha"] = json!("main");
    v["deployment_status"]["updated_at"] = json!("2024-01-05T12:00:00Z");
    log.hook(
        Format::Github,
        Some("deployment_status"),
        &v,
        "2024-01-05T12:00:00Z",
    );
    // A git commit imported without its time.
    log.draft(
        Draft::new("git.commit")
            .subject("commit", sha(30))
            .actor(Some("email:dev@example.com"))
            .payload(json!({"message": "no time"})),
        "2024-01-05T12:30:00Z",
    );
    // A GitLab deployment whose payload is over 16 KiB, so stored beside the log.
    let mut big = fixture("gitlab/deployment.json");
    big["deployment_id"] = json!(77);
    big["environment"] = json!("production");
    big["status_changed_at"] = json!("2024-01-05T13:00:00Z");
    big["commit_title"] = json!("x".repeat(20_000));
    big["commit_url"] = json!(format!("http://10.126.0.2:3000/root/x/-/commit/{}", sha(4)));
    log.hook(
        Format::Gitlab,
        Some("Deployment Hook"),
        &big,
        "2024-01-05T13:00:00Z",
    );
    let blob_record = log.records.last().unwrap().clone();
    assert!(matches!(blob_record.payload, Payload::Blob { .. }));

    let m = compute(&log.records, &weeks());
    assert_eq!(
        skipped(
            &m,
            "deployments",
            "github.deployment_status has no deployment state"
        ),
        1
    );
    assert_eq!(
        skipped(
            &m,
            "deployments",
            "github.deployment_status names no environment"
        ),
        1
    );
    assert_eq!(skipped(&m, "lead_time", "names no commit"), 1);
    assert_eq!(skipped(&m, "lead_time", "git.commit has no commit time"), 1);
    assert_eq!(
        skipped(
            &m,
            "deployments",
            "gitlab.deployment: payload stored beside the log"
        ),
        1
    );
    let blob = m
        .skipped
        .iter()
        .find(|s| s.reason.contains("payload stored beside"))
        .unwrap();
    assert_eq!(blob.records, [blob_record.index.0]);
    // Deployment 902 counts; the unreadable ones do not; lead time has the same 7 samples.
    assert_eq!(m.deployment_frequency.per_bucket, [5, 3]);
    assert_eq!(m.lead_time.stat.samples, 7);

    // Supplying the blob makes that deployment count (lead time from sha(4): 29 hours).
    let payload = match &log.records.last().unwrap().payload {
        Payload::Blob { digest, .. } => *digest,
        Payload::Inline(_) => unreachable!(),
    };
    let ingested = trailmark_ingest::ingest(
        big.to_string().as_bytes(),
        Some(Format::Gitlab),
        &Context {
            event: Some("Deployment Hook".into()),
            ..Context::default()
        },
    )
    .unwrap();
    let full = ingested.records[0].payload.clone();
    let lookup = move |d: &trailmark_model::Digest| (*d == payload).then(|| full.clone());
    let m = trailmark_metrics::compute_with_blobs(&log.records, &weeks(), &lookup);
    assert_eq!(skipped(&m, "deployments", "payload stored beside"), 0);
    assert_eq!(m.deployment_frequency.per_bucket, [6, 3]);
    assert_eq!(m.lead_time.stat.samples, 8);
}

/// Records written by hand (the CLI accepts any payload for these kinds) with fields of the
/// wrong type: never a panic, each left out with its reason.
#[test]
fn hand_written_records_with_wrong_types_are_reported() {
    let mut log = Log::default();
    let mut add = |text: Value, at: &str| {
        log.add(
            trailmark_model::parse_record(&text.to_string()).unwrap(),
            at,
        );
    };
    let env = json!({"type": "environment", "id": "production"});
    add(
        json!({"kind": "github.deployment_status", "subjects": [{"type": "deployment", "id": "d/1"}, env],
               "occurred_at": "2024-01-02T10:00:00Z", "payload": {"state": 5, "environment": ["x"]}}),
        "2024-01-02T10:00:00Z",
    );
    add(
        json!({"kind": "gitlab.deployment", "subjects": [{"type": "deployment", "id": "d/2"}],
               "occurred_at": "2024-01-02T11:00:00Z", "payload": {"status": "success", "environment": {"name": "production"}}}),
        "2024-01-02T11:00:00Z",
    );
    // A commit dated after its deployment (a skewed clock).
    add(
        json!({"kind": "git.commit", "subjects": [{"type": "commit", "id": sha(40)}],
               "occurred_at": "2024-01-03T12:00:00Z", "payload": {"message": ["not", "text"]}}),
        "2024-01-03T12:00:00Z",
    );
    add(
        json!({"kind": "cdevents.service_deployed", "subjects": [{"type": "deployment", "id": "svc"}, env],
               "links": [{"rel": "deploys", "to": {"type": "commit", "id": sha(40)}}],
               "occurred_at": "2024-01-03T11:00:00Z", "payload": {}}),
        "2024-01-03T11:00:00Z",
    );
    add(
        json!({"kind": "approval.decided", "subjects": [{"type": "release", "id": "acme/x@1"}], "actor": "github:bob",
               "payload": {"decision": {"approve": true}}}),
        "2024-01-04T10:00:00Z",
    );
    add(
        json!({"kind": "approval.decided", "subjects": [{"type": "release", "id": "acme/x@1"}],
               "payload": {"decision": "approve"}}),
        "2024-01-04T10:00:00Z",
    );
    add(
        json!({"kind": "rollback.decided", "subjects": [{"type": "rollback", "id": "acme/x@1/rollback-1"}],
               "payload": {"status": 3}}),
        "2024-01-04T11:00:00Z",
    );
    add(
        json!({"kind": "github.pull_request", "subjects": [{"type": "pr", "id": "github.com/a/b#1"}],
               "occurred_at": "2024-01-05T10:00:00Z",
               "payload": {"action": "opened", "labels": "ai-generated", "ai_generated": "yes", "generated_by": "ai"}}),
        "2024-01-05T10:00:00Z",
    );
    add(
        json!({"kind": "cdevents.incident_detected", "subjects": [{"type": "incident", "id": "i/1"}],
               "occurred_at": "2024-01-05T11:00:00Z", "payload": {"content": {"environment": "production"}}}),
        "2024-01-05T11:00:00Z",
    );
    let m = compute(&log.records, &weeks());
    assert_eq!(
        skipped(
            &m,
            "deployments",
            "github.deployment_status has no deployment state"
        ),
        1
    );
    assert_eq!(
        skipped(&m, "deployments", "gitlab.deployment names no environment"),
        1
    );
    assert_eq!(
        skipped(&m, "lead_time", "the commit time is after the deployment"),
        1
    );
    assert_eq!(skipped(&m, "approvals", "no approve/reject decision"), 1);
    assert_eq!(
        skipped(&m, "approvals", "approval.decided names no approver"),
        1
    );
    assert_eq!(
        skipped(&m, "change_failure_rate", "rollback.decided has no status"),
        1
    );
    assert_eq!(
        skipped(
            &m,
            "time_to_restore",
            "incident names no environment and no deployment"
        ),
        1
    );
    // The CDEvents deployment counts; the opened PR is a change request but not AI output
    // (only `true`, an object with `type: ai` and a list of labels mark it).
    assert_eq!(m.deployment_frequency.total, 1);
    assert_eq!(m.change_requests.pull_requests, 1);
    assert_eq!(m.ai_intervention.ai_changes, 0);
    assert_eq!(m.approvals.decisions, 0);
}

#[test]
fn nothing_to_measure_says_why() {
    let m = compute(&[], &weeks());
    assert_eq!(m.deployment_frequency.per_bucket, [0, 0]);
    assert_eq!(
        m.deployment_frequency.unavailable.as_deref(),
        Some("no successful deployments to production in the window")
    );
    assert_eq!(m.lead_time.stat.median, None);
    assert!(m.lead_time.unavailable.is_some());
    assert_eq!(m.change_failure_rate.rate, None);
    assert_eq!(
        m.change_failure_rate.unavailable.as_deref(),
        Some("no deployments to production in the window")
    );
    assert_eq!(
        m.time_to_restore.unavailable.as_deref(),
        Some("no incidents in production in the window")
    );
    assert_eq!(
        m.approvals.unavailable.as_deref(),
        Some("no approval decisions in the window")
    );
    assert!(m.change_requests.unavailable.is_some());
    assert_eq!(m.ai_intervention.rate, None);
    assert!(m.ai_intervention.unavailable.is_some());
    assert!(m.skipped.is_empty());
    // A JSON rate of nothing is null, never 0.
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["change_failure_rate"]["rate"], Value::Null);
    assert_eq!(v["lead_time"]["median"], Value::Null);
    assert_eq!(v["lead_time"]["samples"], 0);
}

// ---- charts ----

#[test]
fn charts_are_deterministic_and_accessible() {
    let log = dora_log();
    let q = weeks();
    let a = svg::charts(&compute(&log.records, &q));
    let b = svg::charts(&compute(&log.records, &q));
    assert_eq!(a, b);
    let keys: Vec<_> = a.iter().map(|c| c.key).collect();
    assert_eq!(
        keys,
        [
            "deployment_frequency",
            "lead_time",
            "change_failure_rate",
            "time_to_restore",
            "time_to_decision",
            "approvers",
            "change_requests",
            "ai_intervention"
        ]
    );
    for c in &a {
        assert!(
            c.svg
                .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")
        );
        assert!(c.svg.contains("role=\"img\""), "{}", c.key);
        assert!(c.svg.contains(&format!("<title>{}</title>", c.title)));
        assert!(c.svg.contains("<desc>"));
        assert!(!c.svg.contains(" id="), "no ids: charts share a page");
        assert_coordinates_are_plain(&c.svg);
    }
    assert_eq!(a[0].title, "Deployments per week (production)");
    let df = &a[0].svg;
    assert!(df.contains("<desc>2024-W01: 4; 2024-W02: 3</desc>"), "{df}");
    assert!(df.contains("<title>2024-W01: 4</title>"));
    let lt = &a[1].svg;
    assert!(lt.contains("2024-W01: 1h 30m; 2024-W02: 1h"), "{lt}");
    // Metrics with nothing to show say why, in the chart.
    let approvals = &a[5].svg;
    assert!(
        approvals.contains(">no approval decisions in the window</text>"),
        "{approvals}"
    );
    assert!(!approvals.contains("tm-bars"));
}

/// Every coordinate is an integer or has one decimal: no exponent, no float noise.
fn assert_coordinates_are_plain(svg: &str) {
    const NUMERIC: &[&str] = &[
        "x", "y", "x1", "y1", "x2", "y2", "width", "height", "cx", "cy", "r", "points",
    ];
    let mut seen = 0;
    for (i, _) in svg.match_indices("=\"") {
        let name_start = svg[..i].rfind([' ', '<']).unwrap() + 1;
        if !NUMERIC.contains(&&svg[name_start..i]) {
            continue;
        }
        let value = &svg[i + 2..i + 2 + svg[i + 2..].find('"').unwrap()];
        for number in value.split([' ', ',']) {
            let (int, frac) = number.split_once('.').unwrap_or((number, ""));
            assert!(
                !int.is_empty()
                    && int.bytes().all(|b| b.is_ascii_digit())
                    && frac.len() <= 1
                    && frac.bytes().all(|b| b.is_ascii_digit()),
                "{number:?} in {value:?}"
            );
            seen += 1;
        }
    }
    assert!(seen > 0);
}

#[test]
fn chart_text_is_escaped() {
    let data = [
        ("<script>alert(1)</script>", Some(3)),
        ("R&D \"ops\" 'team'", Some(1)),
    ];
    let s = svg::bar_chart("Approvals by <b>team</b> & co", Unit::Count, &data);
    assert!(!s.contains("<script>"));
    assert!(!s.contains("<b>"));
    assert!(s.contains("&lt;script&gt;alert(1)&lt;/script&gt;: 3"));
    assert!(s.contains("R&amp;D &quot;ops&quot; &#39;team&#39;: 1"));
    assert!(s.contains("aria-label=\"Approvals by &lt;b&gt;team&lt;/b&gt; &amp; co\""));
    // Every `&` starts an entity.
    for (i, _) in s.match_indices('&') {
        let rest = &s[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                .iter()
                .any(|e| rest.starts_with(e)),
            "{}",
            &rest[..rest.len().min(12)]
        );
    }
    let line = svg::line_chart("t", Unit::Seconds, &[("a\u{1}b", Some(60))]);
    assert!(line.contains("a\u{fffd}b: 1m"));
}

#[test]
fn empty_and_gapped_charts() {
    let none: [(&str, Option<u64>); 0] = [];
    let s = svg::bar_chart("Deployments", Unit::Count, &none);
    assert!(s.contains("No data for this period"));
    assert!(s.contains("<desc>No data for this period</desc>"));
    assert_eq!(s.matches("<rect").count(), 1);
    assert!(s.contains("class=\"tm-frame\""));
    assert!(!s.contains("tm-bars"));
    let gaps = [
        ("w1", Some(600)),
        ("w2", None),
        ("w3", Some(120)),
        ("w4", Some(300)),
    ];
    let s = svg::line_chart("Lead time", Unit::Seconds, &gaps);
    // The gap splits the line: one point alone, then a two-point line.
    assert_eq!(s.matches("<polyline").count(), 1);
    assert_eq!(s.matches("<circle").count(), 3);
    assert!(s.contains("w2: no data"));
}

#[test]
fn bar_chart_snapshot() {
    let s = svg::bar_chart(
        "Deploys",
        Unit::Count,
        &[
            ("2024-W01", Some(4)),
            ("2024-W02", Some(3)),
            ("2024-W03", None),
        ],
    );
    let want = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 260" width="640" height="260" role="img" aria-label="Deploys" font-family="system-ui, sans-serif" font-size="11" class="tm-chart">
<title>Deploys</title>
<desc>2024-W01: 4; 2024-W02: 3; 2024-W03: no data</desc>
<text x="8" y="20" font-size="14" font-weight="bold" fill="#111827" class="tm-title">Deploys</text>
<g class="tm-grid" stroke="#e5e7eb">
<line x1="72" y1="208" x2="624" y2="208"/>
<line x1="72" y1="167" x2="624" y2="167"/>
<line x1="72" y1="126" x2="624" y2="126"/>
<line x1="72" y1="85" x2="624" y2="85"/>
<line x1="72" y1="44" x2="624" y2="44"/>
</g>
<g class="tm-axis" fill="#4b5563" text-anchor="end">
<text x="66" y="211.5">0</text>
<text x="66" y="170.5">1</text>
<text x="66" y="129.5">2</text>
<text x="66" y="88.5">3</text>
<text x="66" y="47.5">4</text>
</g>
<g class="tm-bars" fill="#2563eb">
<rect x="99.6" y="44" width="128.8" height="164"><title>2024-W01: 4</title></rect>
<rect x="283.6" y="85" width="128.8" height="123"><title>2024-W02: 3</title></rect>
</g>
<g class="tm-values" fill="#111827" text-anchor="middle">
<text x="164" y="40">4</text>
<text x="348" y="81">3</text>
</g>
<g class="tm-labels" fill="#4b5563" text-anchor="middle">
<text x="164" y="228">2024-W01</text>
<text x="348" y="228">2024-W02</text>
<text x="532" y="228">2024-W03</text>
</g>
</svg>
"##;
    assert_eq!(s, want);
}
