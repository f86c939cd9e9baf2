//! Governance scenarios built from the real shared fixtures (GitHub pull request, review,
//! deployment payloads; Jira transitions; JUnit; SARIF; CycloneDX; SLSA provenance) on a
//! real embedded store: one allowed release, and one denied for each rule.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use trailmark_ingest::identity::IdentityMap;
use trailmark_ingest::{Context, Format};
use trailmark_log::SignerKey;
use trailmark_model::parse_record;
use trailmark_policy::eval::Status;
use trailmark_policy::{Actor, Governance, Outcome, Policy, PolicyError, Span};
use trailmark_store::{SqliteStore, Store};

const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const ARTIFACT: &str = "sha256:ec8ff1bb40da2a36e3e9113dd7a5dd452c5125f7013e849519c0754b3c9fda89";
const PROJECT: &str = "acme/hello";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/ingest")
}

const PEOPLE: &str = r#"{"people": [
  {"id": "codertocat", "identities": ["github:Codertocat", "person:codertocat"]},
  {"id": "hubot", "identities": ["github:hubot", "person:hubot"]},
  {"id": "alice", "identities": ["person:alice"]},
  {"id": "bob", "identities": ["person:bob"]},
  {"id": "rm", "identities": ["person:rm"]}
]}"#;

const POLICY: &str = r#"
name = "default"

[approvals.release]
roles = ["approver"]
min = 1
[approvals.release.sla]
warn_after = "4h"
due_after = "1d"
escalate_to = "release-manager"

[approvals.exception]
roles = ["approver"]

[tickets]
approved_states = ["Done"]

[gates.production]
checks = ["commits_have_tickets", "tickets_approved", "prs_reviewed", "tests_pass", "scans_clean",
          "sbom_present", "provenance_present", "documents_linked", "approvals", "separation_of_duties",
          "no_blocking_exception"]
required_documents = ["runbook"]
block_severity = "high"
"#;

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    people: IdentityMap,
}

impl World {
    fn new() -> World {
        World::with_policy(POLICY)
    }

    fn with_policy(policy: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let signer = SignerKey::from_seed("test.example/log", [3u8; 32]).unwrap();
        let store =
            SqliteStore::create(&dir.path().join("log.db"), "test.example/log", signer).unwrap();
        let w = World {
            _dir: dir,
            store,
            people: IdentityMap::from_json(PEOPLE).unwrap(),
        };
        let (_, json) = Policy::from_toml(policy, &|_| Err("no files".into())).unwrap();
        w.gov().apply_policy(&json, "person:rm").unwrap();
        w
    }

    fn gov(&self) -> Governance<'_> {
        Governance::new(&self.store, &self.people)
    }

    fn ingest(&self, rel: &str, format: Format, event: Option<&str>, commit: Option<&str>) {
        let bytes = std::fs::read(fixtures().join(rel)).unwrap();
        self.ingest_bytes(&bytes, format, event, commit);
    }

    fn ingest_bytes(
        &self,
        bytes: &[u8],
        format: Format,
        event: Option<&str>,
        commit: Option<&str>,
    ) {
        let ctx = Context {
            event: event.map(str::to_owned),
            commit: commit.map(str::to_owned),
            ..Context::default()
        };
        let out = trailmark_ingest::ingest(bytes, Some(format), &ctx).unwrap();
        self.store
            .append_with_blobs(out.records, vec![out.raw])
            .unwrap();
    }

    fn record(&self, v: Value) {
        self.store
            .append(vec![parse_record(&v.to_string()).unwrap()])
            .unwrap();
    }

    /// An approving review by hubot on the pull request's final commit: the real
    /// `pull_request_review/submitted` payload with the review's state and author changed
    /// (the fixtures only hold the author's own "commented" review).
    fn approving_review(&self) {
        let mut v: Value = serde_json::from_slice(
            &std::fs::read(fixtures().join("github/pull_request_review/submitted.payload.json"))
                .unwrap(),
        )
        .unwrap();
        v["review"]["state"] = json!("approved");
        v["review"]["user"]["login"] = json!("hubot");
        v["review"]["id"] = json!(237895999);
        v["sender"]["login"] = json!("hubot");
        self.ingest_bytes(
            &serde_json::to_vec(&v).unwrap(),
            Format::Github,
            Some("pull_request_review"),
            None,
        );
    }

    /// Everything a compliant release has.
    fn good_evidence(&self) {
        self.ingest(
            "github/pull_request/opened.payload.json",
            Format::Github,
            None,
            None,
        );
        self.ingest(
            "github/pull_request_review/submitted.payload.json",
            Format::Github,
            None,
            None,
        );
        self.approving_review();
        self.ingest(
            "jira/webhook-issue-updated-resolved.json",
            Format::Jira,
            None,
            None,
        ); // TES-41 → Done
        self.record(json!({"kind": "custom.link", "subjects": [{"type": "commit", "id": HEAD}],
            "links": [{"rel": "implements", "to": {"type": "ticket", "id": "TES-41"}}], "payload": {}}));
        self.ingest(
            "junit/TEST-uk.co.gresearch.spark.diff.DiffOptionsSuite.xml",
            Format::Junit,
            None,
            Some(HEAD),
        );
        self.ingest("sarif/NoResults.sarif", Format::Sarif, None, Some(HEAD));
        self.ingest(
            "cyclonedx/valid-bom-1.7.json",
            Format::Cyclonedx,
            None,
            Some(HEAD),
        );
        self.ingest(
            "intoto-slsa/gha_generic-v1.2.1__binary-linux-amd64-push-v4.5.6.intoto.jsonl",
            Format::Intoto,
            None,
            None,
        );
    }

    fn release(&self) -> String {
        let g = self.gov();
        let (id, _) = g
            .create_release(
                PROJECT,
                "hello",
                "1.0.0",
                &["production".into()],
                None,
                "person:rm",
            )
            .unwrap();
        g.link(
            &id,
            &[
                ("commit".into(), HEAD.into()),
                ("artifact".into(), ARTIFACT.into()),
            ],
            &[("runbook".into(), "runbooks/hello".into(), Some("3".into()))],
            "explicit",
            "person:rm",
        )
        .unwrap();
        id
    }
}

fn approver(name: &str) -> Actor {
    Actor {
        identity: format!("person:{name}"),
        roles: vec!["approver".into()],
    }
}

fn failing(r: &trailmark_policy::ops::GateResult) -> Vec<(String, String)> {
    r.decision
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| (c.id.clone(), c.reasons.join(" | ")))
        .collect()
}

#[test]
fn a_compliant_release_is_allowed_and_the_decision_is_recorded_with_its_input() {
    let w = World::new();
    w.good_evidence();
    let id = w.release();
    let g = w.gov();
    g.decide_release(&id, &approver("alice"), true, None, Some("looks good"))
        .unwrap();
    let r = g.gate(&id, "production", Some("person:bob")).unwrap();
    assert_eq!(r.decision.decision, Outcome::Allow, "{:#?}", failing(&r));
    assert!(r.decision.approval.counted.contains(&"alice".to_owned()));
    // The decision is a record, its input is kept beside the log, and replay reproduces it.
    let rec = w
        .store
        .record(trailmark_model::LogIndex(r.record))
        .unwrap()
        .unwrap();
    assert_eq!(rec.record.kind.as_str(), "gate.decided");
    let input_of = |r: &trailmark_policy::ops::GateResult| -> Value {
        let blob = w
            .store
            .blob(&r.input_digest.parse().unwrap())
            .unwrap()
            .unwrap();
        serde_json::from_slice(&blob).unwrap()
    };
    let input = input_of(&r);
    assert_eq!(input["approval"]["decisions"][0]["person"], "alice");
    let replay = g.replay(r.record).unwrap();
    assert!(replay.reproduced);
    assert!(replay.differences.is_empty());
    // No identity map version is recorded: the input names none. Once the map in use is the
    // recorded version in force, the next decision's input names that version.
    assert!(input.get("identity_map").is_none());
    let version =
        match trailmark_policy::people::record(&w.store, &w.people, "person:admin").unwrap() {
            trailmark_policy::people::Recorded::Append(v) => v.record,
            trailmark_policy::people::Recorded::Keep(_) => panic!("a first version is appended"),
        };
    let r = g.gate(&id, "production", Some("person:bob")).unwrap();
    assert_eq!(input_of(&r)["identity_map"], serde_json::json!(version));
    assert!(g.replay(r.record).unwrap().reproduced);
}

#[test]
fn self_approval_is_refused_and_an_author_approval_never_counts() {
    let w = World::new();
    w.good_evidence();
    let id = w.release();
    let g = w.gov();
    // codertocat opened the pull request (GitHub identity resolved to the same person).
    let err = g
        .decide_release(&id, &approver("codertocat"), true, None, None)
        .unwrap_err();
    assert!(
        matches!(err, PolicyError::NotAllowed(ref m) if m.contains("opened github.com/Codertocat/Hello-World#2")),
        "{err}"
    );
    // The requester may not approve either.
    let err = g
        .decide_release(&id, &approver("rm"), true, None, None)
        .unwrap_err();
    assert!(err.to_string().contains("requested the release"), "{err}");
    // A decision recorded anyway (e.g. written before the rule) is not counted by the gate.
    w.record(json!({"kind": "approval.decided", "subjects": [{"type": "release", "id": id}], "actor": "github:Codertocat",
        "payload": {"decision": "approve", "evidence_digest": g.snapshot(&id, None, None).unwrap().0.input.approval.evidence_digest, "roles": ["approver"]}}));
    let r = g.gate(&id, "production", None).unwrap();
    assert_eq!(r.decision.decision, Outcome::Deny);
    let f = failing(&r);
    assert!(
        f.iter()
            .any(|(id, why)| id == "approvals" && why.contains("codertocat may not approve")),
        "{f:#?}"
    );
    assert!(
        f.iter().any(|(id, _)| id == "separation_of_duties"),
        "{f:#?}"
    );
}

#[test]
fn an_approval_lapses_when_the_content_changes() {
    let w = World::new();
    w.good_evidence();
    let id = w.release();
    let g = w.gov();
    let (_, digest) = g
        .decide_release(&id, &approver("alice"), true, None, None)
        .unwrap();
    assert_eq!(
        g.gate(&id, "production", None).unwrap().decision.decision,
        Outcome::Allow
    );
    // Another commit joins the release after approval.
    g.link(
        &id,
        &[(
            "commit".into(),
            "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
        )],
        &[],
        "explicit",
        "person:rm",
    )
    .unwrap();
    let r = g.gate(&id, "production", None).unwrap();
    assert_eq!(r.decision.decision, Outcome::Deny);
    let f = failing(&r);
    assert!(
        f.iter()
            .any(|(c, why)| c == "approvals" && why.contains("lapsed") && why.contains(&digest)),
        "{f:#?}"
    );
    // Approving the old digest is refused with both digests named.
    let err = g
        .decide_release(&id, &approver("alice"), true, Some(&digest), None)
        .unwrap_err();
    assert!(err.to_string().contains("changed"), "{err}");
}

#[test]
fn a_failing_test_report_denies() {
    let w = World::new();
    w.good_evidence();
    w.ingest("junit/junit.fail.xml", Format::Junit, None, Some(HEAD));
    let id = w.release();
    w.gov()
        .decide_release(&id, &approver("alice"), true, None, None)
        .unwrap();
    let r = w.gov().gate(&id, "production", None).unwrap();
    assert_eq!(r.decision.decision, Outcome::Deny);
    let f = failing(&r);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, "tests_pass");
    assert!(f[0].1.contains("1 failed"), "{f:#?}");
}

#[test]
fn a_blocking_finding_denies_unless_allow_listed_until_a_future_date() {
    let w = World::new();
    w.good_evidence();
    w.ingest("sarif/Fingerprints.sarif", Format::Sarif, None, Some(HEAD)); // error-level TEST1001
    let id = w.release();
    w.gov()
        .decide_release(&id, &approver("alice"), true, None, None)
        .unwrap();
    let r = w.gov().gate(&id, "production", None).unwrap();
    let f = failing(&r);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].0 == "scans_clean" && f[0].1.contains("high finding TEST1001"),
        "{f:#?}"
    );

    let allowed = POLICY.replace(
        "block_severity = \"high\"",
        "block_severity = \"high\"\nallow_findings = [{rule = \"TEST1001\", until = \"2999-01-01T00:00:00Z\", reason = \"false positive\"}]",
    );
    let (_, json) = Policy::from_toml(&allowed, &|_| Err("no".into())).unwrap();
    w.gov().apply_policy(&json, "person:rm").unwrap();
    let r = w.gov().gate(&id, "production", None).unwrap();
    assert_eq!(r.decision.decision, Outcome::Allow, "{:#?}", failing(&r));
    // Replaying the first decision: reproduced under its own policy, allowed under today's.
    let replay = w.gov().replay(r.record - 2).unwrap();
    assert!(replay.reproduced);
    assert_eq!(replay.under_current_policy.decision, Outcome::Allow);
    assert!(
        replay.differences.iter().any(|d| d.contains("scans_clean")),
        "{:?}",
        replay.differences
    );
}

#[test]
fn a_ticket_that_never_reached_an_approved_state_denies() {
    let w = World::new();
    w.good_evidence();
    // TES-4 went to "Resolved", which this policy does not accept.
    w.ingest(
        "jira/webhook-server-issue-updated-resolved.json",
        Format::Jira,
        None,
        None,
    );
    w.record(
        json!({"kind": "custom.link", "subjects": [{"type": "commit", "id": HEAD}],
        "links": [{"rel": "implements", "to": {"type": "ticket", "id": "TES-4"}}], "payload": {}}),
    );
    let id = w.release();
    w.gov()
        .decide_release(&id, &approver("alice"), true, None, None)
        .unwrap();
    let f = failing(&w.gov().gate(&id, "production", None).unwrap());
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].0 == "tickets_approved" && f[0].1.contains("TES-4") && f[0].1.contains("Resolved"),
        "{f:#?}"
    );
}

#[test]
fn missing_evidence_names_every_gap() {
    let w = World::new();
    // Only the pull request and the author's own review.
    w.ingest(
        "github/pull_request/opened.payload.json",
        Format::Github,
        None,
        None,
    );
    w.ingest(
        "github/pull_request_review/submitted.payload.json",
        Format::Github,
        None,
        None,
    );
    let id = w.release();
    let r = w.gov().gate(&id, "production", None).unwrap();
    let f: Vec<String> = failing(&r).into_iter().map(|(c, _)| c).collect();
    for want in [
        "commits_have_tickets",
        "tickets_approved",
        "prs_reviewed",
        "tests_pass",
        "scans_clean",
        "sbom_present",
        "provenance_present",
        "approvals",
    ] {
        assert!(f.contains(&want.to_owned()), "{want} should fail: {f:?}");
    }
    let why = failing(&r)
        .into_iter()
        .find(|(c, _)| c == "prs_reviewed")
        .unwrap()
        .1;
    assert!(
        why.contains("commented by codertocat (the author)"),
        "{why}"
    );
}

#[test]
fn break_glass_lets_a_deploy_through_and_an_overdue_exception_blocks() {
    let w = World::with_policy(&POLICY.replace(
        "[approvals.exception]",
        "[exceptions]\nretro_approval_within = \"1s\"\n\n[approvals.exception]",
    ));
    w.good_evidence();
    let id = w.release();
    let g = w.gov();
    // No approval yet: denied; an exception lets the emergency deploy through.
    assert_eq!(
        g.gate(&id, "production", None).unwrap().decision.decision,
        Outcome::Deny
    );
    let (exc, _, _) = g
        .raise_exception(
            &id,
            &["production".into()],
            "outage fix",
            &Span::parse("1d").unwrap(),
            &["pair on call".into()],
            None,
            "person:bob",
        )
        .unwrap();
    let r = g.gate(&id, "production", None).unwrap();
    assert_eq!(r.decision.decision, Outcome::AllowWithException);
    assert_eq!(r.decision.exception.as_deref(), Some(exc.as_str()));
    // The requester cannot approve it retrospectively.
    assert!(matches!(
        g.decide_other(
            trailmark_policy::Target::Exception,
            &exc,
            &approver("bob"),
            true,
            None
        ),
        Err(PolicyError::NotAllowed(_))
    ));
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    // Past the deadline without approval: overdue, escalated, blocks, and cannot cover.
    let r = g.gate(&id, "production", None).unwrap();
    assert_eq!(r.decision.decision, Outcome::Deny);
    let f = failing(&r);
    assert!(
        f.iter().any(|(c, why)| c == "no_blocking_exception"
            && why.contains(&exc)
            && why.contains("escalated")),
        "{f:#?}"
    );
    let pending = g.pending().unwrap();
    assert!(
        pending
            .iter()
            .any(|p| p.subject == format!("exception:{exc}") && p.sla == "overdue"),
        "{pending:#?}"
    );
    let checks = g.checks(&id).unwrap();
    assert_eq!(checks[0].status, "failing");
    assert!(
        checks
            .iter()
            .any(|c| c.entity == format!("exception:{exc}") && c.status == "overdue")
    );
    // A retrospective approval by someone else clears it.
    g.decide_other(
        trailmark_policy::Target::Exception,
        &exc,
        &approver("alice"),
        true,
        Some("reviewed"),
    )
    .unwrap();
    g.decide_release(&id, &approver("alice"), true, None, None)
        .unwrap();
    assert_eq!(
        g.gate(&id, "production", None).unwrap().decision.decision,
        Outcome::Allow
    );
}

#[test]
fn pending_approvals_carry_their_sla_and_the_release_checks_list_puts_failures_first() {
    let w = World::new();
    w.good_evidence();
    let id = w.release();
    let pending = w.gov().pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].subject, format!("release:{id}"));
    assert_eq!(
        (pending[0].sla, pending[0].required, pending[0].approvals),
        ("ok", 1, 0)
    );
    assert_eq!(pending[0].escalate_to.as_deref(), Some("release-manager"));
    let checks = w.gov().checks(&id).unwrap();
    assert_eq!(checks[0].status, "failing", "{checks:#?}");
    assert!(
        checks
            .iter()
            .any(|c| c.status == "pending" && c.due.is_some())
    );
    assert!(checks.iter().any(|c| c.status == "passing"));
}

#[test]
fn rollback_to_a_compliant_artifact_is_approved_and_to_a_non_compliant_one_refused() {
    let w = World::new();
    w.good_evidence();
    let old = w.release();
    let g = w.gov();
    g.decide_release(&old, &approver("alice"), true, None, None)
        .unwrap();
    let (new, _) = g
        .create_release(
            PROJECT,
            "hello",
            "1.1.0",
            &["production".into()],
            None,
            "person:rm",
        )
        .unwrap();
    g.link(
        &new,
        &[(
            "artifact".into(),
            "sha256:482ce8c8f7e867da3a3c05a9aee637703e17470ed1cf882a9e5b405e8f82619d".into(),
        )],
        &[],
        "explicit",
        "person:rm",
    )
    .unwrap();
    // Rolling back to an artifact no release ships is refused.
    let (bad, _) = g
        .propose_rollback(
            &new,
            "production",
            "errors",
            "sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "redeploy",
            None,
            Some("INC-1"),
            None,
            "person:rm",
        )
        .unwrap();
    assert!(matches!(
        g.update_rollback(&bad, "approved", None, "person:rm"),
        Err(PolicyError::NotAllowed(_))
    ));
    let (rb, _) = g
        .propose_rollback(
            &new,
            "production",
            "errors",
            ARTIFACT,
            "redeploy 1.0.0",
            Some("2999-01-01T00:00:00Z"),
            Some("INC-1"),
            None,
            "person:rm",
        )
        .unwrap();
    assert!(g.monitoring(&new).unwrap());
    let (_, gate) = g
        .update_rollback(&rb, "approved", None, "person:rm")
        .unwrap();
    assert_eq!(gate.unwrap().release, old);
    assert!(
        g.update_rollback(&rb, "proposed", None, "person:rm")
            .is_err()
    );
    g.update_rollback(&rb, "executing", None, "person:rm")
        .unwrap();
    g.update_rollback(&rb, "executed", Some("done"), "person:rm")
        .unwrap();
    g.update_rollback(&bad, "cancelled", None, "person:rm")
        .unwrap();
    assert!(!g.monitoring(&new).unwrap());
}

#[test]
fn rego_rules_deny_with_their_messages_and_broken_rules_are_refused_at_load() {
    let rego = r#"package trailmark.gate
deny contains msg if {
  some c in input.commits
  count(c.tickets) > 0
  input.environment == "production"
  input.deployer == null
  msg := sprintf("commit %s: deploys to production must name the deployer", [substring(c.sha, 0, 8)])
}
"#;
    let policy = POLICY.replace(
        "block_severity = \"high\"",
        "block_severity = \"high\"\nrego = [\"rules/deployer.rego\"]",
    );
    let read = |name: &str| {
        if name == "rules/deployer.rego" {
            Ok(rego.to_owned())
        } else {
            Err(format!("{name}: missing"))
        }
    };
    let (p, json) = Policy::from_toml(&policy, &read).unwrap();
    assert_eq!(p.gates["production"].rego[0].source, rego);
    let w = World::new();
    w.gov().apply_policy(&json, "person:rm").unwrap();
    w.good_evidence();
    let id = w.release();
    w.gov()
        .decide_release(&id, &approver("alice"), true, None, None)
        .unwrap();
    let f = failing(&w.gov().gate(&id, "production", None).unwrap());
    assert_eq!(
        f,
        vec![(
            "rego".to_owned(),
            "commit ec26c3e5: deploys to production must name the deployer".to_owned()
        )]
    );
    assert_eq!(
        w.gov()
            .gate(&id, "production", Some("person:bob"))
            .unwrap()
            .decision
            .decision,
        Outcome::Allow
    );

    let broken = |src: &'static str| {
        Policy::from_toml(&policy, &move |_| Ok(src.to_owned()))
            .unwrap_err()
            .to_string()
    };
    assert!(
        broken("package trailmark.gate\ndeny contains x if {")
            .contains("gates.production.rego rules/deployer.rego")
    );
    assert!(broken("package other\ndeny := 1").contains("must be `package trailmark.gate`"));
}

#[test]
fn policy_files_are_checked_and_policy_changes_can_require_approval() {
    let bad = |t: &str| {
        Policy::from_toml(t, &|_| Err("no".into()))
            .unwrap_err()
            .to_string()
    };
    assert!(
        bad("name = \"x\"\n[approvals.release]\nroles = [\"boss\"]")
            .contains("unknown role \"boss\"")
    );
    assert!(bad("name = \"x\"\n[gates.prod]\nchecks = [\"tests_passs\"]").contains("tests_passs"));
    assert!(
        bad("name = \"x\"\n[approvals.release]\nroles = [\"approver\"]\nmin = 0")
            .contains("min must be at least 1")
    );
    assert!(bad("name = \"x\"\nextra = 1").contains("extra"));
    assert!(
        bad("name = \"x\"\n[exceptions]\nretro_approval_within = \"2y\"").contains("unknown unit")
    );
    assert!(
        bad("name = \"x\"\n[gates.prod]\nchecks = [\"tests_pass\"]\nblock_severity = 1.5")
            .contains("whole")
    );

    let guarded = POLICY.replace(
        "[approvals.exception]",
        "[approvals.policy]\nroles = [\"admin\"]\nmin = 1\n\n[approvals.exception]",
    );
    let w = World::with_policy(&guarded);
    let g = w.gov();
    let first = g.active_policy().unwrap();
    let (_, json) = Policy::from_toml(
        &guarded.replace(
            "min = 1\n[approvals.release.sla]",
            "min = 2\n[approvals.release.sla]",
        ),
        &|_| Err("no".into()),
    )
    .unwrap();
    let (_, active, _) = g.apply_policy(&json, "person:bob").unwrap();
    assert!(!active, "a policy change waits for approval");
    assert_eq!(g.active_policy().unwrap().record, first.record);
    assert!(
        g.apply_policy(&json, "person:bob")
            .unwrap_err()
            .to_string()
            .contains("unchanged")
    );
    let admin = Actor {
        identity: "person:alice".into(),
        roles: vec!["admin".into()],
    };
    let proposer = Actor {
        identity: "person:bob".into(),
        roles: vec!["admin".into()],
    };
    assert!(matches!(
        g.decide_other(
            trailmark_policy::Target::Policy,
            "default",
            &proposer,
            true,
            None
        ),
        Err(PolicyError::NotAllowed(_))
    ));
    g.decide_other(
        trailmark_policy::Target::Policy,
        "default",
        &admin,
        true,
        None,
    )
    .unwrap();
    assert_eq!(
        g.active_policy().unwrap().policy.approvals[&trailmark_policy::Target::Release].min,
        2
    );
}

#[test]
fn bad_requests_store_nothing() {
    let w = World::new();
    let g = w.gov();
    let before = w.store.size().unwrap();
    assert!(
        g.create_release("acme", "x", "1", &["prod".into()], None, "person:rm")
            .is_err()
    );
    assert!(
        g.create_release(PROJECT, "x", "1", &[], None, "person:rm")
            .is_err()
    );
    assert!(matches!(
        g.gate("acme/hello/none@1", "production", None),
        Err(PolicyError::NotFound(_))
    ));
    let (id, _) = g
        .create_release(PROJECT, "x", "1", &["production".into()], None, "person:rm")
        .unwrap();
    assert!(
        g.create_release(PROJECT, "x", "1", &["production".into()], None, "person:rm")
            .is_err()
    );
    let after_create = w.store.size().unwrap();
    assert_eq!(after_create, before + 1);
    assert!(
        g.link(
            &id,
            &[("commit".into(), "ABC".into())],
            &[],
            "explicit",
            "person:rm"
        )
        .is_err()
    );
    assert!(
        g.link(
            &id,
            &[("build".into(), "x".into())],
            &[],
            "explicit",
            "person:rm"
        )
        .is_err()
    );
    assert!(
        g.raise_exception(
            &id,
            &[],
            "",
            &Span::parse("1h").unwrap(),
            &["c".into()],
            None,
            "person:rm"
        )
        .is_err()
    );
    assert!(
        g.raise_exception(
            &id,
            &[],
            "r",
            &Span::parse("30d").unwrap(),
            &["c".into()],
            None,
            "person:rm"
        )
        .is_err()
    );
    assert!(
        g.decide_release(
            &id,
            &Actor {
                identity: "person:eve".into(),
                roles: vec!["developer".into()]
            },
            true,
            None,
            None
        )
        .is_err()
    );
    assert_eq!(w.store.size().unwrap(), after_create);
}

/// A GitHub `branch_protection_rule` delivery for the fixtures' repository (the shared
/// fixtures hold none): the repository object is the real one from the pull request payload.
fn protection(w: &World, action: &str) {
    let pr: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("github/pull_request/opened.payload.json")).unwrap(),
    )
    .unwrap();
    let body = json!({
        "action": action,
        "rule": {"id": 21, "repository_id": pr["repository"]["id"], "name": "master",
                 "created_at": "2019-05-15T15:19:00Z", "updated_at": "2019-05-15T15:19:00Z",
                 "pull_request_reviews_enforcement_level": "everyone", "required_approving_review_count": 1},
        "repository": pr["repository"],
        "sender": {"login": "Codertocat"},
    });
    w.ingest_bytes(
        &serde_json::to_vec(&body).unwrap(),
        Format::Github,
        Some("branch_protection_rule"),
        None,
    );
}

#[test]
fn branch_protection_must_be_on_for_the_whole_release_period() {
    let policy = POLICY.replace(
        "\"no_blocking_exception\"]",
        "\"no_blocking_exception\", \"branch_protection\"]",
    );
    // Never recorded: denied.
    let w = World::with_policy(&policy);
    w.good_evidence();
    let id = w.release();
    w.gov()
        .decide_release(&id, &approver("alice"), true, None, None)
        .unwrap();
    let f = failing(&w.gov().gate(&id, "production", None).unwrap());
    assert!(
        f.len() == 1
            && f[0].0 == "branch_protection"
            && f[0].1.contains("no branch protection was recorded"),
        "{f:#?}"
    );

    // On before the release and throughout: allowed; removed during the period: denied.
    let w = World::with_policy(&policy);
    protection(&w, "created");
    w.good_evidence();
    let id = w.release();
    w.gov()
        .decide_release(&id, &approver("alice"), true, None, None)
        .unwrap();
    assert_eq!(
        w.gov()
            .gate(&id, "production", None)
            .unwrap()
            .decision
            .decision,
        Outcome::Allow
    );
    protection(&w, "deleted");
    let r = w.gov().gate(&id, "production", None).unwrap();
    let f = failing(&r);
    assert!(
        f.len() == 1 && f[0].1.contains("removed during the release period"),
        "{f:#?}"
    );
}

/// Identity map versions: a change back to an earlier map is a version of its own (A, B, A),
/// the same map again is not, and the latest is in force.
#[test]
fn identity_map_versions_follow_every_change_and_only_changes() {
    use trailmark_policy::people::{self, Recorded};
    let w = World::new();
    let a = IdentityMap::from_json(r#"{"people": [{"id": "al", "identities": ["github:x"]}]}"#)
        .unwrap();
    let b = IdentityMap::from_json(r#"{"people": [{"id": "bo", "identities": ["github:x"]}]}"#)
        .unwrap();
    let mut records = Vec::new();
    for (map, who) in [(&a, "person:one"), (&b, "person:two"), (&a, "person:three")] {
        match people::record(&w.store, map, who).unwrap() {
            Recorded::Append(v) => records.push(v.record),
            Recorded::Keep(v) => panic!("a change was not recorded: {}", v.record),
        }
        assert!(matches!(
            people::record(&w.store, map, who).unwrap(),
            Recorded::Keep(_)
        ));
    }
    let history = people::history(&w.store).unwrap();
    assert_eq!(
        history.iter().map(|v| v.record).collect::<Vec<_>>(),
        records
    );
    assert_eq!(history[0].digest, history[2].digest);
    assert_ne!(history[0].digest, history[1].digest);
    assert_eq!(history[2].actor.as_deref(), Some("person:three"));
    let store: &dyn trailmark_store::Store = &w.store;
    assert_eq!(people::in_force(store, &a).unwrap(), Some(records[2]));
    assert_eq!(people::in_force(store, &b).unwrap(), None);
    assert_eq!(
        people::current(&w.store)
            .unwrap()
            .unwrap()
            .map
            .resolve("github:x")
            .unwrap()
            .person,
        "al"
    );
}
