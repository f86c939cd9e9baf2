//! Builds the [`View`] of a release from a record source (the store when exporting, the
//! dossier's own records when verifying). Pure given its source and `as_of`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;
use trailmark_ingest::identity::IdentityMap;
use trailmark_model::Timestamp;
use trailmark_policy::collect::{Reader, Source, subject};
use trailmark_policy::eval::{self, CheckOutcome, Status, Tally};
use trailmark_policy::input::GateInput;
use trailmark_policy::{Policy, PolicyError, kinds};
use trailmark_store::StoredRecord;

use crate::view::*;

/// A view and every record and blob it was built from.
#[derive(Debug)]
pub struct Computed {
    pub view: View,
    /// Every record the view was computed from, by index.
    pub records: BTreeMap<u64, Arc<StoredRecord>>,
    pub blobs: Vec<trailmark_model::Digest>,
}

fn text(v: &Value, ptr: &str) -> Option<String> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

const DEPLOY_KINDS: &[&str] = &[
    "github.deployment_status",
    "gitlab.deployment",
    "cdevents.service_deployed",
];
const BUILD_SUFFIXES: &[&str] = &[
    ".workflow_run",
    ".check_suite",
    ".pipeline",
    ".build",
    ".pipelinerun_finished",
    ".build_finished",
];

fn check<'c>(checks: &'c [CheckOutcome], id: &str) -> Option<&'c CheckOutcome> {
    checks.iter().find(|c| c.id == id)
}

fn passes(checks: &[CheckOutcome], id: &str) -> bool {
    check(checks, id).is_some_and(|c| c.status == Status::Pass)
}

fn answer(parts: &[bool]) -> String {
    match (parts.iter().all(|p| *p), parts.iter().any(|p| *p)) {
        (true, _) => "yes".into(),
        (false, true) => "partial".into(),
        _ => "no".into(),
    }
}

/// Computes the view of `release` as of `as_of` under `policy` (the version `policy_record`).
pub fn view<S: Source + ?Sized>(
    src: &S,
    people: &IdentityMap,
    release: &str,
    as_of: Timestamp,
    policy: &Policy,
    version: ViewVersion,
) -> Result<Computed, PolicyError> {
    let mut r: Reader<'_, S> = Reader::new(src, people);
    let rel = r.release(release)?;
    let env = rel.environments.first().cloned().unwrap_or_default();
    let snap = r.snapshot_of(
        rel,
        &env,
        None,
        as_of,
        policy.exceptions.retro_approval_within.micros(),
    )?;
    let input = &snap.input;
    let checks = eval::evaluate_all(policy, input);
    let tally = eval::release_tally(policy, input);

    // Release records: gate decisions, certifications, rollbacks, clearing.
    let mut gates = Vec::new();
    let mut last_permit: Option<(u64, Option<Tally>)> = None;
    let mut certified = Vec::new();
    let mut certified_at: Vec<(String, u64)> = Vec::new();
    let mut rollbacks: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut cleared = Vec::new();
    for rec in &snap.release.records {
        let rr = &rec.record;
        if rr.recorded_at > as_of {
            continue;
        }
        let p = r.payload(rr)?;
        match rr.kind.as_str() {
            kinds::GATE_DECIDED => {
                let decision = text(&p, "/decision/decision").unwrap_or_default();
                let environment = text(&p, "/decision/environment").unwrap_or_default();
                if decision != "deny" {
                    let t: Option<Tally> = trailmark_model::json_at(&p, "/decision/approval")
                        .and_then(|t| serde_json::from_value(t.clone()).ok());
                    last_permit = Some((rr.index.0, t));
                }
                gates.push(GateLine {
                    record: rr.index.0,
                    environment,
                    decision,
                    recorded_at: rr.recorded_at.to_string(),
                    input_digest: text(&p, "/input_digest").unwrap_or_default(),
                    policy_digest: text(&p, "/policy_digest").unwrap_or_default(),
                });
            }
            kinds::RELEASE_CERTIFIED => {
                certified_at.push((text(&p, "/environment").unwrap_or_default(), rr.index.0))
            }
            kinds::ROLLBACK_DECIDED => {
                let id = rr
                    .subjects
                    .iter()
                    .find(|s| s.ty.as_str() == "rollback")
                    .map(|s| s.id.as_str().to_owned())
                    .unwrap_or_default();
                let status = text(&p, "/status").unwrap_or_default();
                let e = rollbacks
                    .entry(id)
                    .or_insert((status.clone(), text(&p, "/reason").unwrap_or_default()));
                e.0 = status;
            }
            kinds::RELEASE_CLEARED => cleared.push(format!(
                "monitoring cleared at {} (record {})",
                rr.recorded_at, rr.index.0
            )),
            _ => {}
        }
    }

    for (env_name, i) in &certified_at {
        let at = r.record(*i)?.record.recorded_at;
        certified.push(format!("certified for {env_name} at {at} (record {i})"));
    }
    // Deployments of the included commits, and builds and test detail per commit.
    let mut deployments = Vec::new();
    let mut builds: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &input.commits {
        for rec in r.mentioning(&subject("commit", &c.sha)?)? {
            let rr = &rec.record;
            if rr.recorded_at > as_of {
                continue;
            }
            let kind = rr.kind.as_str();
            if DEPLOY_KINDS.contains(&kind) {
                let p = r.payload(rr)?;
                let environment = rr
                    .subjects
                    .iter()
                    .find(|s| s.ty.as_str() == "environment")
                    .map(|s| s.id.as_str().to_owned())
                    .or_else(|| text(&p, "/environment"))
                    .unwrap_or_default();
                let status = text(&p, "/state")
                    .or_else(|| text(&p, "/status"))
                    .unwrap_or_else(|| "deployed".into());
                let gated = gates.iter().any(|g| {
                    g.environment == environment && g.decision != "deny" && g.record < rr.index.0
                });
                deployments.push(Deployment {
                    record: rr.index.0,
                    environment,
                    recorded_at: rr.recorded_at.to_string(),
                    commit: Some(c.sha.clone()),
                    status,
                    gated,
                });
            } else if BUILD_SUFFIXES.iter().any(|s| kind.ends_with(s)) {
                let p = r.payload(rr)?;
                let outcome = text(&p, "/conclusion")
                    .or_else(|| text(&p, "/status"))
                    .or_else(|| text(&p, "/result"))
                    .unwrap_or_else(|| "unknown".into());
                let name = rr
                    .subjects
                    .first()
                    .map(|s| s.id.as_str().to_owned())
                    .unwrap_or_default();
                builds
                    .entry(c.sha.clone())
                    .or_default()
                    .push(format!("{name}: {outcome}"));
            }
        }
    }
    deployments.sort_by_key(|d| d.record);
    deployments.dedup_by_key(|d| d.record);

    // Test detail: failing cases, repeated failures, failures with a follow-up ticket.
    let mut failing: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut follow_up: BTreeSet<String> = BTreeSet::new();
    for t in &input.tests {
        let rec = r.record(t.record)?;
        let p = r.payload(&rec.record)?;
        let has_ticket = rec
            .record
            .links
            .iter()
            .any(|l| l.to.ty.as_str() == "ticket");
        for case in p
            .get("cases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let status = text(case, "/status").unwrap_or_default();
            if status == "fail" || status == "error" {
                let name = format!(
                    "{}::{}",
                    text(case, "/suite").unwrap_or_default(),
                    text(case, "/name").unwrap_or_default()
                );
                failing.entry(name.clone()).or_default().insert(t.record);
                if has_ticket {
                    follow_up.insert(name);
                }
            }
        }
    }

    let approvals: Vec<ApprovalLine> = input
        .approval
        .decisions
        .iter()
        .map(|d| ApprovalLine {
            record: d.record,
            person: d.person.clone(),
            decision: d.decision.clone(),
            recorded_at: d.recorded_at.clone(),
            comment: d.comment.clone(),
            current: d.evidence_digest == input.approval.evidence_digest,
        })
        .collect();

    let matrix = matrix(
        input,
        &builds,
        &failing,
        &follow_up,
        &approvals,
        &deployments,
    );
    // Every built-in check is reported; those the environment's gate does not require are
    // marked, so an auditor sees the negative evidence without mistaking it for a denial.
    let required: Vec<&str> = policy
        .gate(&env)
        .map(|g| g.checks.iter().map(|c| c.id()).collect())
        .unwrap_or_default();
    let mut gaps: Vec<String> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .flat_map(|c| {
            let note = if required.contains(&c.id.as_str()) {
                ""
            } else {
                "not required by the policy: "
            };
            c.reasons.iter().map(move |r| format!("{note}{r}"))
        })
        .collect();
    let first_deploy = deployments.iter().map(|d| d.recorded_at.clone()).min();
    for a in &approvals {
        if let Some(t) = &first_deploy
            && a.recorded_at > *t
        {
            gaps.push(format!(
                "approval by {} (record {}) was given after the first deploy at {t}",
                a.person, a.record
            ));
        }
    }
    for d in &deployments {
        if let Some((_, c)) = certified_at
            .iter()
            .find(|(e, c)| *e == d.environment && *c > d.record)
        {
            gaps.push(format!(
                "deployment record {} to {} came before its certification (record {c})",
                d.record, d.environment
            ));
        }
    }
    for d in deployments.iter().filter(|d| !d.gated) {
        gaps.push(format!(
            "deployment record {} to {} at {} was not preceded by an allowing gate decision",
            d.record, d.environment, d.recorded_at
        ));
    }
    for c in input.commits.iter().filter(|c| c.late) {
        gaps.push(format!(
            "commit {} was linked late, after the first gate decision ({})",
            short(&c.sha),
            c.linked_at
        ));
    }
    for d in input.documents.iter().filter(|d| d.late) {
        gaps.push(format!(
            "document {} {} was linked late ({})",
            d.doc_type, d.id, d.linked_at
        ));
    }
    // Who decides who counts as whom should not also take part in the release (v2 on): the
    // person who set the identity map in force, if they own the release or approved it.
    if version >= ViewVersion::V2
        && let Some(i) = input.identity_map
    {
        let map = r.record(i)?;
        if let Some(setter) = map.record.actor.as_deref().map(|a| r.person(a)) {
            let mut roles = Vec::new();
            if input.release.requested_by.as_deref() == Some(setter.as_str()) {
                roles.push("owns the release".to_owned());
            }
            let approved: Vec<String> = approvals
                .iter()
                .filter(|a| a.person == setter)
                .map(|a| format!("record {}", a.record))
                .collect();
            if !approved.is_empty() {
                roles.push(format!("approved it ({})", approved.join(", ")));
            }
            if !roles.is_empty() {
                gaps.push(format!(
                    "the identity map in force (record {i}) was set by {setter}, who also {}: the person who decides who counts as whom took part in the release",
                    roles.join(" and ")
                ));
            }
        }
    }
    gaps.dedup();

    let ev_tests: Vec<u64> = input
        .tests
        .iter()
        .map(|t| t.record)
        .chain(input.scans.iter().map(|s| s.record))
        .collect();
    let ev_approvals: Vec<u64> = input.approval.decisions.iter().map(|d| d.record).collect();
    let ev_tickets: Vec<u64> = input
        .tickets
        .iter()
        .flat_map(|t| t.transitions.iter().map(|x| x.record))
        .collect();
    let ev_reviews: Vec<u64> = input
        .prs
        .iter()
        .flat_map(|p| p.reviews.iter().map(|x| x.record))
        .collect();
    let ev_gates: Vec<u64> = gates.iter().map(|g| g.record).collect();
    let ev_deploys: Vec<u64> = deployments.iter().map(|d| d.record).collect();
    let approved = tally.as_ref().is_some_and(|t| t.satisfied);
    let sod = passes(&checks, "separation_of_duties");
    let open_rollback = rollbacks
        .values()
        .any(|(s, _)| !matches!(s.as_str(), "executed" | "cancelled"));
    let all_gated = deployments.iter().all(|d| d.gated);
    let permitted = last_permit.is_some();

    let questions = vec![
        Question {
            id: "change_authorization".into(),
            title: "Was every change requested and authorized before it shipped?".into(),
            answer: answer(&[
                passes(&checks, "commits_have_tickets"),
                passes(&checks, "tickets_approved"),
                approved,
            ]),
            summary: vec![
                format!(
                    "{} commit(s) linked to {} ticket(s)",
                    input.commits.len(),
                    input.tickets.len()
                ),
                reason(&checks, "tickets_approved"),
                reason(&checks, "approvals"),
            ],
            evidence: cat(&[&ev_tickets, &ev_approvals]),
        },
        Question {
            id: "access_governance".into(),
            title: "Were approvers authorized, and were duties separated?".into(),
            answer: answer(&[sod, approved, passes(&checks, "prs_reviewed")]),
            summary: vec![
                reason(&checks, "separation_of_duties"),
                reason(&checks, "prs_reviewed"),
            ],
            evidence: cat(&[&ev_approvals, &ev_reviews]),
        },
        Question {
            id: "test_and_validation".into(),
            title: "Was the release tested and scanned, with results before deploy?".into(),
            answer: answer(&[
                passes(&checks, "tests_pass"),
                passes(&checks, "scans_clean"),
            ]),
            summary: vec![
                reason(&checks, "tests_pass"),
                reason(&checks, "scans_clean"),
            ],
            evidence: ev_tests.clone(),
        },
        Question {
            id: "release_certification".into(),
            title: "Did the release pass its gate and get certified before deploy?".into(),
            answer: answer(&[permitted, !certified.is_empty()]),
            summary: {
                let mut s = vec![match &last_permit {
                    Some((i, _)) => format!("gate allowed at record {i}"),
                    None => "no gate decision allowed the release".into(),
                }];
                if certified.is_empty() {
                    s.push("not certified".into());
                }
                s.extend(certified.iter().cloned());
                s
            },
            evidence: ev_gates.clone(),
        },
        Question {
            id: "monitoring_and_response".into(),
            title: "Is what happened after deploy known, and was it handled?".into(),
            // An ungated deploy is a failure of the control, not a partial answer.
            answer: if deployments.is_empty() {
                "partial".into()
            } else if !all_gated {
                "no".into()
            } else {
                answer(&[!open_rollback])
            },
            summary: vec![
                format!(
                    "{} deployment(s), {} not gated",
                    deployments.len(),
                    deployments.iter().filter(|d| !d.gated).count()
                ),
                format!(
                    "{} rollback decision(s), {} open",
                    rollbacks.len(),
                    rollbacks
                        .values()
                        .filter(|(s, _)| !matches!(s.as_str(), "executed" | "cancelled"))
                        .count()
                ),
            ],
            evidence: ev_deploys.clone(),
        },
    ];

    let story = Story {
        requested: input.tickets.iter().map(|t| t.key.clone()).collect(),
        owner: input.release.requested_by.clone(),
        changed: input
            .commits
            .iter()
            .map(|c| {
                if c.prs.is_empty() {
                    short(&c.sha).to_owned()
                } else {
                    format!("{} ({})", short(&c.sha), c.prs.join(", "))
                }
            })
            .collect(),
        validated: input
            .tests
            .iter()
            .map(|t| {
                format!(
                    "{}: {} tests, {} failed, {} errors (record {})",
                    t.name.as_deref().unwrap_or("report"),
                    t.tests,
                    t.failures,
                    t.errors,
                    t.record
                )
            })
            .collect(),
        approvals: approvals.clone(),
        approval_at_deploy: last_permit.and_then(|(_, t)| t),
        exceptions: input
            .exceptions
            .iter()
            .filter(|e| e.release.as_deref().is_none_or(|x| x == release))
            .map(|e| {
                format!(
                    "{}: {} ({:?})",
                    e.id,
                    e.reason,
                    eval::exception_state(policy, e, &input.evaluated_at)
                )
            })
            .collect(),
        certified,
        after_deploy: deployments
            .iter()
            .map(|d| {
                format!(
                    "deployed to {} at {} ({})",
                    d.environment, d.recorded_at, d.status
                )
            })
            .chain(
                rollbacks
                    .iter()
                    .map(|(id, (s, why))| format!("rollback {id}: {s} ({why})")),
            )
            .chain(cleared)
            .collect(),
    };

    let all_records: Vec<u64> = {
        let (recs, _) = r.touched();
        recs
    };
    let controls = controls(
        &checks,
        approved,
        sod,
        all_gated,
        &ev_approvals,
        &ev_tests,
        &ev_tickets,
        &ev_reviews,
        &ev_deploys,
        &all_records,
    );
    let (records, blobs) = r.into_read();
    Ok(Computed {
        view: View {
            release: input.release.clone(),
            as_of: as_of.to_string(),
            environment: env,
            evidence_digest: input.approval.evidence_digest.clone(),
            questions,
            story,
            matrix,
            controls,
            gaps,
            gate_decisions: gates,
            deployments,
        },
        records,
        blobs,
    })
}

fn reason(checks: &[CheckOutcome], id: &str) -> String {
    check(checks, id).map_or(String::new(), |c| {
        format!(
            "{}: {}",
            if c.status == Status::Pass {
                "pass"
            } else {
                "FAIL"
            },
            c.reasons.join("; ")
        )
    })
}

fn cat(parts: &[&Vec<u64>]) -> Vec<u64> {
    let mut v: Vec<u64> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn matrix(
    input: &GateInput,
    builds: &BTreeMap<String, Vec<String>>,
    failing: &BTreeMap<String, BTreeSet<u64>>,
    follow_up: &BTreeSet<String>,
    approvals: &[ApprovalLine],
    deployments: &[Deployment],
) -> Vec<MatrixRow> {
    // Grouped once: per-commit lookups must not scan every report (releases have thousands).
    let mut tests_by: BTreeMap<&str, Vec<&trailmark_policy::input::TestInfo>> = BTreeMap::new();
    for t in &input.tests {
        tests_by.entry(t.subject.as_str()).or_default().push(t);
    }
    let mut scans_by: BTreeMap<&str, Vec<&trailmark_policy::input::ScanInfo>> = BTreeMap::new();
    for x in &input.scans {
        scans_by.entry(x.subject.as_str()).or_default().push(x);
    }
    let mut tickets: Vec<String> = input.tickets.iter().map(|t| t.key.clone()).collect();
    if input.commits.iter().any(|c| c.tickets.is_empty()) {
        tickets.push("(no ticket)".into());
    }
    let approved_lines: Vec<String> = approvals
        .iter()
        .map(|a| {
            format!(
                "{} {} ({}){}",
                a.person,
                a.decision,
                a.recorded_at,
                if a.current { "" } else { ", lapsed" }
            )
        })
        .collect();
    tickets
        .into_iter()
        .map(|key| {
            let commits: Vec<MatrixCommit> = input
                .commits
                .iter()
                .filter(|c| {
                    if key == "(no ticket)" {
                        c.tickets.is_empty()
                    } else {
                        c.tickets.contains(&key)
                    }
                })
                .map(|c| {
                    let reviews = input
                        .prs
                        .iter()
                        .filter(|p| c.prs.contains(&p.id))
                        .flat_map(|p| {
                            p.reviews.iter().map(move |r| {
                                format!(
                                    "{} by {} on {} ({})",
                                    r.state,
                                    r.reviewer.as_deref().unwrap_or("unknown"),
                                    r.commit.as_deref().map_or("?", short),
                                    p.id
                                )
                            })
                        })
                        .collect();
                    let subject = format!("commit:{}", c.sha);
                    let mine: Vec<&trailmark_policy::input::TestInfo> =
                        tests_by.get(subject.as_str()).cloned().unwrap_or_default();
                    let mut s = TestSummary {
                        reports: mine.len() as u64,
                        ..TestSummary::default()
                    };
                    for t in &mine {
                        s.tests += t.tests;
                        s.passed += t.passed;
                        s.failures += t.failures;
                        s.errors += t.errors;
                        s.skipped += t.skipped;
                        s.flaky += t.flaky;
                        s.blocked += t.blocked;
                    }
                    let executed = s.tests - s.skipped;
                    s.pass_rate_permille = (executed > 0).then(|| s.passed * 1000 / executed);
                    let ids: BTreeSet<u64> = mine.iter().map(|t| t.record).collect();
                    s.repeated_failures = failing
                        .iter()
                        .filter(|(_, recs)| recs.len() > 1 && recs.iter().any(|x| ids.contains(x)))
                        .map(|(n, _)| n.clone())
                        .collect();
                    s.failures_with_follow_up = failing
                        .iter()
                        .filter(|(n, recs)| {
                            follow_up.contains(*n) && recs.iter().any(|x| ids.contains(x))
                        })
                        .map(|(n, _)| n.clone())
                        .collect();
                    let findings = scans_by
                        .get(subject.as_str())
                        .into_iter()
                        .flatten()
                        .flat_map(|x| {
                            x.findings.iter().map(move |f| {
                                format!(
                                    "{} {} ({})",
                                    f.severity.as_str(),
                                    f.rule.as_deref().unwrap_or("(no rule)"),
                                    x.tool.as_deref().unwrap_or("scanner")
                                )
                            })
                        })
                        .collect();
                    MatrixCommit {
                        sha: c.sha.clone(),
                        prs: c.prs.clone(),
                        reviews,
                        builds: builds.get(&c.sha).cloned().unwrap_or_default(),
                        tests: s,
                        findings,
                    }
                })
                .collect();
            let shas: BTreeSet<&String> = commits.iter().map(|c| &c.sha).collect();
            MatrixRow {
                ticket_approved_at: input.tickets.iter().find(|t| t.key == key).and_then(|t| {
                    t.transitions
                        .last()
                        .map(|x| format!("{} at {}", x.to, x.recorded_at))
                }),
                ticket: key,
                approvals: approved_lines.clone(),
                deployments: deployments
                    .iter()
                    .filter(|d| d.commit.as_ref().is_some_and(|c| shas.contains(c)))
                    .map(|d| {
                        format!(
                            "{} at {} ({}{})",
                            d.environment,
                            d.recorded_at,
                            d.status,
                            if d.gated { "" } else { ", NOT GATED" }
                        )
                    })
                    .collect(),
                commits,
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn controls(
    checks: &[CheckOutcome],
    approved: bool,
    sod: bool,
    all_gated: bool,
    ev_approvals: &[u64],
    ev_tests: &[u64],
    ev_tickets: &[u64],
    ev_reviews: &[u64],
    ev_deploys: &[u64],
    all: &[u64],
) -> Vec<Control> {
    let change = [
        "tickets_approved",
        "approvals",
        "tests_pass",
        "prs_reviewed",
    ];
    let status_of = |ids: &[&str], extra: &[bool]| -> (String, Vec<String>) {
        let mut ok = Vec::new();
        let mut notes = Vec::new();
        for id in ids {
            let pass = passes(checks, id);
            ok.push(pass);
            if !pass && let Some(c) = check(checks, id) {
                notes.extend(c.reasons.iter().cloned());
            }
        }
        ok.extend_from_slice(extra);
        let s = match answer(&ok).as_str() {
            "yes" => "met",
            "partial" => "partial",
            _ => "gap",
        };
        (s.to_owned(), notes)
    };
    let change_ev = cat(&[
        &ev_tickets.to_vec(),
        &ev_approvals.to_vec(),
        &ev_tests.to_vec(),
        &ev_reviews.to_vec(),
    ]);
    let mut out = Vec::new();
    let mut add = |framework: &str,
                   id: &str,
                   title: &str,
                   (status, notes): (String, Vec<String>),
                   evidence: Vec<u64>| {
        out.push(Control {
            framework: framework.into(),
            id: id.into(),
            title: title.into(),
            status,
            notes,
            evidence,
        });
    };
    let log = || {
        ("met".to_owned(), vec!["every record is in an append-only Merkle log with signed checkpoints and an inclusion proof".to_owned()])
    };
    add(
        "SOC 2",
        "CC8.1",
        "Changes are authorized, tested and approved before release",
        status_of(&change, &[]),
        change_ev.clone(),
    );
    add(
        "SOC 2",
        "CC6.1",
        "Who may change and approve is role-based",
        status_of(&["approvals"], &[sod]),
        ev_approvals.to_vec(),
    );
    add(
        "SOC 2",
        "CC7.2",
        "Deployed changes are monitored and anomalies acted on",
        status_of(&[], &[all_gated, !ev_deploys.is_empty()]),
        ev_deploys.to_vec(),
    );
    add(
        "SOX ITGC",
        "PC-1",
        "Program changes are requested, tested, approved and segregated",
        status_of(&change, &[sod]),
        change_ev.clone(),
    );
    add(
        "PCI DSS",
        "6.5.1",
        "Changes follow a documented, approved and tested procedure",
        status_of(&["tickets_approved", "approvals", "tests_pass"], &[]),
        change_ev.clone(),
    );
    add(
        "PCI DSS",
        "6.2.3.1",
        "Code is reviewed by someone other than its author before release",
        status_of(&["prs_reviewed", "separation_of_duties"], &[]),
        ev_reviews.to_vec(),
    );
    add(
        "PCI DSS",
        "10.2-10.5",
        "Audit trails record, protect and retain actions",
        log(),
        all.to_vec(),
    );
    add(
        "ISO 27001",
        "A.8.32",
        "Changes are controlled",
        status_of(&change, &[]),
        change_ev.clone(),
    );
    add(
        "ISO 27001",
        "A.8.15",
        "Activities are logged and the logs protected",
        log(),
        all.to_vec(),
    );
    add(
        "NIST 800-53",
        "CM-3",
        "Configuration changes are controlled and approved",
        status_of(&change, &[]),
        change_ev,
    );
    add(
        "NIST 800-53",
        "CM-5",
        "Only authorized people make or approve changes",
        status_of(&["separation_of_duties"], &[approved]),
        ev_approvals.to_vec(),
    );
    add(
        "NIST 800-53",
        "AU-3",
        "Audit records say what, when, who and the outcome",
        log(),
        all.to_vec(),
    );
    add(
        "NIST 800-53",
        "AU-9",
        "Audit information is protected from change",
        log(),
        all.to_vec(),
    );
    add(
        "NIST 800-53",
        "AU-10",
        "Approvals and decisions cannot be repudiated",
        if ev_approvals.is_empty() {
            (
                "partial".into(),
                vec!["no person's approval is recorded".into()],
            )
        } else {
            log()
        },
        cat(&[&ev_approvals.to_vec(), &ev_deploys.to_vec()]),
    );
    out
}
