//! Pure gate evaluation: `(policy, input document) → decision`. No store, clock or network:
//! the dossier verifier recomputes recorded decisions with this very function.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use trailmark_model::Timestamp;

use crate::input::{ApprovalDecision, ExceptionInfo, GateInput};
use crate::policy::{ApprovalRule, Check, Policy, Separation, Severity};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    Deny,
    /// Some checks failed, and an active break-glass exception covers this deploy.
    AllowWithException,
}

impl Outcome {
    pub fn permits(self) -> bool {
        !matches!(self, Outcome::Deny)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
}

/// One check's outcome and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckOutcome {
    pub id: String,
    pub label: String,
    pub status: Status,
    /// Why, one line each: for a failure every offending entity, for a pass what was checked.
    pub reasons: Vec<String>,
    /// Source entities involved (`commit:abc`, `ticket:PAY-1`, `record:42`...).
    pub entities: Vec<String>,
}

/// A gate decision as recorded (with the digests added by the caller).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub decision: Outcome,
    pub environment: String,
    pub checks: Vec<CheckOutcome>,
    /// The exception that let a failing release through.
    pub exception: Option<String>,
    pub approval: Tally,
}

/// How an approval rule stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    pub required: u32,
    /// People whose approval counts.
    pub counted: Vec<String>,
    /// Eligible people who rejected the current content.
    pub rejected_by: Vec<String>,
    /// Decisions that did not count, and why.
    pub not_counted: Vec<String>,
    /// Approved automatically after the rule's timeout (no human approval).
    pub auto_approved: bool,
    pub satisfied: bool,
}

fn at(s: &str) -> i64 {
    Timestamp::parse_rfc3339(s).map_or(i64::MAX, |t| t.as_micros())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Who counts as an author of the included changes.
pub fn authors(input: &GateInput) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in &input.commits {
        out.extend(c.authors.iter().cloned());
        out.extend(c.committers.iter().cloned());
    }
    for p in &input.prs {
        out.extend(p.author.iter().cloned());
    }
    out
}

/// Counts decisions under a rule: the latest decision per person stands; it counts if it
/// approves the current digest, has not expired, comes from an eligible person and keeps
/// separation of duties.
pub fn tally(
    rule: &ApprovalRule,
    decisions: &[ApprovalDecision],
    digest: &str,
    requested_at: &str,
    now: &str,
    excluded: &BTreeMap<String, String>,
) -> Tally {
    let now_us = at(now);
    let mut latest: BTreeMap<&str, &ApprovalDecision> = BTreeMap::new();
    for d in decisions {
        match latest.get(d.person.as_str()) {
            Some(prev) if prev.record > d.record => {}
            _ => {
                latest.insert(&d.person, d);
            }
        }
    }
    let mut t = Tally {
        required: rule.min,
        ..Tally::default()
    };
    for (person, d) in latest {
        let eligible = rule.approvers.iter().any(|a| a == person)
            || d.roles.iter().any(|r| rule.roles.contains(r));
        let why_not = if !eligible {
            Some(format!(
                "{person} is not an eligible approver (roles {:?}, needs one of {:?} or to be named)",
                d.roles, rule.roles
            ))
        } else if let Some(why) = excluded.get(person) {
            Some(format!("{person} may not approve: {why}"))
        } else if d.evidence_digest != digest {
            Some(format!(
                "{person}'s decision (record {}) was for content {} which has changed since (now {}): it lapsed",
                d.record, d.evidence_digest, digest
            ))
        } else if let Some(exp) = &rule.expires_after
            && at(&d.recorded_at).saturating_add(exp.micros()) <= now_us
        {
            Some(format!(
                "{person}'s approval of {} expired after {exp}",
                d.recorded_at
            ))
        } else {
            None
        };
        match (why_not, d.decision.as_str()) {
            (Some(why), _) => t.not_counted.push(why),
            (None, "approve") => t.counted.push(person.to_owned()),
            (None, _) => t.rejected_by.push(person.to_owned()),
        }
    }
    t.satisfied = t.rejected_by.is_empty() && t.counted.len() as u64 >= u64::from(rule.min);
    if !t.satisfied
        && t.rejected_by.is_empty()
        && let Some(after) = &rule.auto_approve_after
        && at(requested_at).saturating_add(after.micros()) <= now_us
    {
        t.auto_approved = true;
        t.satisfied = true;
    }
    t
}

/// People barred from approving the release, and why.
pub fn excluded_approvers(input: &GateInput, sep: &Separation) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if sep.approver_not_author {
        for c in &input.commits {
            for p in c.authors.iter().chain(&c.committers) {
                out.entry(p.clone())
                    .or_insert_with(|| format!("authored or committed {}", short(&c.sha)));
            }
        }
        for pr in &input.prs {
            if let Some(a) = &pr.author {
                out.entry(a.clone())
                    .or_insert_with(|| format!("opened {}", pr.id));
            }
        }
    }
    if sep.approver_not_requester
        && let Some(r) = &input.release.requested_by
    {
        out.entry(r.clone())
            .or_insert_with(|| "requested the release".to_owned());
    }
    out
}

/// The release approval state under a policy.
pub fn release_tally(policy: &Policy, input: &GateInput) -> Option<Tally> {
    let rule = policy.approvals.get(&crate::policy::Target::Release)?;
    let excluded = excluded_approvers(input, &policy.separation);
    Some(tally(
        rule,
        &input.approval.decisions,
        &input.approval.evidence_digest,
        &input.approval.requested_at,
        &input.evaluated_at,
        &excluded,
    ))
}

/// Whether an exception has its retrospective approval.
pub fn exception_approved(policy: &Policy, e: &ExceptionInfo, now: &str) -> bool {
    let Some(rule) = policy.approvals.get(&crate::policy::Target::Exception) else {
        // No rule: any approval by someone other than the requester.
        return e
            .approvals
            .iter()
            .any(|a| a.decision == "approve" && Some(&a.person) != e.requested_by.as_ref());
    };
    let mut excluded = BTreeMap::new();
    if let Some(r) = &e.requested_by {
        excluded.insert(r.clone(), "requested the exception".to_owned());
    }
    let digest = e
        .approvals
        .first()
        .map_or("", |a| a.evidence_digest.as_str());
    // An exception's content never changes (it is one record): every approval is of it.
    let decisions: Vec<ApprovalDecision> = e
        .approvals
        .iter()
        .map(|a| ApprovalDecision {
            evidence_digest: digest.to_owned(),
            ..a.clone()
        })
        .collect();
    let mut t = tally(rule, &decisions, digest, &e.created_at, now, &excluded);
    // Retrospective approval must be a person's: the auto-approval timeout does not apply.
    if t.auto_approved {
        t.satisfied = false;
    }
    t.satisfied
}

/// The state of an exception at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionState {
    /// Raised, waiting for its retrospective approval, still within the deadline.
    AwaitingApproval,
    /// Retrospectively approved.
    Approved,
    /// Past the deadline without approval: escalated, blocks further deploys.
    Overdue,
    Expired,
    Closed,
}

pub fn exception_state(policy: &Policy, e: &ExceptionInfo, now: &str) -> ExceptionState {
    if e.closed {
        return ExceptionState::Closed;
    }
    let approved = exception_approved(policy, e, now);
    if !approved && at(&e.retro_due) <= at(now) {
        return ExceptionState::Overdue;
    }
    if at(&e.expires_at) <= at(now) {
        return if approved {
            ExceptionState::Expired
        } else {
            ExceptionState::Overdue
        };
    }
    if approved {
        ExceptionState::Approved
    } else {
        ExceptionState::AwaitingApproval
    }
}

struct Out {
    status: Status,
    reasons: Vec<String>,
    entities: Vec<String>,
}

impl Out {
    fn pass(reason: impl Into<String>) -> Out {
        Out {
            status: Status::Pass,
            reasons: vec![reason.into()],
            entities: Vec::new(),
        }
    }

    fn from(fails: Vec<(String, String)>, ok: impl Into<String>) -> Out {
        if fails.is_empty() {
            return Out::pass(ok);
        }
        let (reasons, entities) = fails.into_iter().unzip();
        Out {
            status: Status::Fail,
            reasons,
            entities,
        }
    }
}

/// Evaluates the gate for `input.environment`. Never fails: an environment with no gate, or
/// a Rego rule that errors, is a denial with that reason (fail closed).
pub fn evaluate(policy: &Policy, input: &GateInput) -> Decision {
    let env = input.environment.clone();
    let tally = release_tally(policy, input).unwrap_or_default();
    let Some(gate) = policy.gate(&env) else {
        return Decision {
            decision: Outcome::Deny,
            environment: env.clone(),
            checks: vec![CheckOutcome {
                id: "gate_configured".into(),
                label: "A gate is configured for the environment".into(),
                status: Status::Fail,
                reasons: vec![format!(
                    "policy {} has no gate for environment {env:?} and no \"*\" gate",
                    policy.name
                )],
                entities: vec![format!("environment:{env}")],
            }],
            exception: None,
            approval: tally,
        };
    };
    let now = input.evaluated_at.as_str();
    let mut checks = Vec::new();
    for &check in &gate.checks {
        let out = run_check(check, policy, gate, input, &tally, now);
        checks.push(CheckOutcome {
            id: check.id().into(),
            label: check.label().into(),
            status: out.status,
            reasons: out.reasons,
            entities: out.entities,
        });
    }
    if !gate.rego.is_empty() {
        let input_json = serde_json::to_value(input).unwrap_or_default();
        let out = match crate::rego::deny(&gate.rego, &input_json) {
            Ok(msgs) if msgs.is_empty() => Out::pass("no custom rule denied"),
            Ok(msgs) => Out {
                status: Status::Fail,
                entities: vec!["rego:".to_owned() + crate::policy::REGO_QUERY; msgs.len()],
                reasons: msgs,
            },
            Err(e) => Out {
                status: Status::Fail,
                reasons: vec![format!("custom rules could not be evaluated: {e}")],
                entities: vec![],
            },
        };
        checks.push(CheckOutcome {
            id: "rego".into(),
            label: "Custom rules (Rego)".into(),
            status: out.status,
            reasons: out.reasons,
            entities: out.entities,
        });
    }
    let failed: Vec<&CheckOutcome> = checks.iter().filter(|c| c.status == Status::Fail).collect();
    let (decision, exception) = if failed.is_empty() {
        (Outcome::Allow, None)
    } else if failed
        .iter()
        .any(|c| c.id == Check::NoBlockingException.id())
    {
        // An overdue exception cannot be covered by another one.
        (Outcome::Deny, None)
    } else {
        match covering_exception(policy, input) {
            Some(id) => (Outcome::AllowWithException, Some(id)),
            None => (Outcome::Deny, None),
        }
    };
    Decision {
        decision,
        environment: env,
        checks,
        exception,
        approval: tally,
    }
}

/// Every built-in check, whatever the gate requires: what a dossier reports. Uses the
/// environment's gate for its settings (severity threshold, allow-list, required documents),
/// or defaults when there is none.
pub fn evaluate_all(policy: &Policy, input: &GateInput) -> Vec<CheckOutcome> {
    let tally = release_tally(policy, input).unwrap_or_default();
    let fallback = crate::policy::Gate {
        checks: Vec::new(),
        required_documents: Vec::new(),
        block_severity: Severity::High,
        allow_findings: Vec::new(),
        rego: Vec::new(),
    };
    let gate = policy.gate(&input.environment).unwrap_or(&fallback);
    Check::ALL
        .into_iter()
        .map(|check| {
            let out = run_check(check, policy, gate, input, &tally, &input.evaluated_at);
            CheckOutcome {
                id: check.id().into(),
                label: check.label().into(),
                status: out.status,
                reasons: out.reasons,
                entities: out.entities,
            }
        })
        .collect()
}

/// An exception that lets this deploy proceed despite failing checks.
fn covering_exception(policy: &Policy, input: &GateInput) -> Option<String> {
    let now = input.evaluated_at.as_str();
    input
        .exceptions
        .iter()
        .filter(|e| e.release.as_deref().is_none_or(|r| r == input.release.id))
        .filter(|e| e.environments.is_empty() || e.environments.contains(&input.environment))
        .filter(|e| at(&e.created_at) <= at(now))
        .filter(|e| {
            matches!(
                exception_state(policy, e, now),
                ExceptionState::AwaitingApproval | ExceptionState::Approved
            )
        })
        .map(|e| e.id.clone())
        .next()
}

fn run_check(
    check: Check,
    policy: &Policy,
    gate: &crate::policy::Gate,
    input: &GateInput,
    tally: &Tally,
    now: &str,
) -> Out {
    let mut fails: Vec<(String, String)> = Vec::new();
    match check {
        Check::CommitsHaveTickets => {
            if input.commits.is_empty() {
                return Out::from(
                    vec![(
                        "no commits are linked to the release".into(),
                        format!("release:{}", input.release.id),
                    )],
                    "",
                );
            }
            for c in &input.commits {
                if c.tickets.is_empty() {
                    fails.push((
                        format!("commit {} has no linked ticket", short(&c.sha)),
                        format!("commit:{}", c.sha),
                    ));
                }
            }
            Out::from(
                fails,
                format!("{} commit(s), each linked to a ticket", input.commits.len()),
            )
        }
        Check::TicketsApproved => {
            if input.tickets.is_empty() {
                return Out::from(
                    vec![(
                        "no tickets are linked to the release".into(),
                        format!("release:{}", input.release.id),
                    )],
                    "",
                );
            }
            let ok = &policy.tickets.approved_states;
            for t in &input.tickets {
                let approved = t.transitions.iter().find(|tr| {
                    at(&tr.recorded_at) <= at(now)
                        && ok.iter().any(|s| s.eq_ignore_ascii_case(&tr.to))
                });
                if approved.is_none() {
                    let last = t
                        .transitions
                        .last()
                        .map_or("no recorded transition".to_owned(), |tr| {
                            format!("last recorded state {:?}", tr.to)
                        });
                    fails.push((
                        format!(
                            "ticket {} never reached an approved state ({}) before the deploy: {last}",
                            t.key,
                            ok.join(", ")
                        ),
                        format!("ticket:{}", t.key),
                    ));
                }
            }
            Out::from(
                fails,
                format!(
                    "{} ticket(s) approved before the deploy",
                    input.tickets.len()
                ),
            )
        }
        Check::PrsReviewed => {
            for c in &input.commits {
                if c.prs.is_empty() {
                    fails.push((
                        format!(
                            "commit {} did not go through a reviewed pull request",
                            short(&c.sha)
                        ),
                        format!("commit:{}", c.sha),
                    ));
                }
            }
            for pr in &input.prs {
                let head = pr.head.as_deref();
                let good = pr.reviews.iter().any(|r| {
                    r.state == "approved"
                        && r.reviewer.is_some()
                        && r.reviewer != pr.author
                        && r.commit.as_deref() == head
                });
                if !good {
                    let seen: Vec<String> = pr
                        .reviews
                        .iter()
                        .map(|r| {
                            format!(
                                "{} by {}{}",
                                r.state,
                                r.reviewer.as_deref().unwrap_or("unknown"),
                                if r.reviewer == pr.author {
                                    " (the author)"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect();
                    fails.push((
                        format!(
                            "{} has no approving review by a non-author on its final commit {} (reviews: {})",
                            pr.id,
                            head.map_or("unknown", short),
                            if seen.is_empty() { "none".into() } else { seen.join(", ") }
                        ),
                        format!("pr:{}", pr.id),
                    ));
                }
            }
            Out::from(
                fails,
                format!(
                    "{} pull request(s) approved by a non-author",
                    input.prs.len()
                ),
            )
        }
        Check::TestsPass => {
            if input.tests.is_empty() {
                return Out::from(
                    vec![(
                        "no test report is linked to the included commits or artifacts".into(),
                        format!("release:{}", input.release.id),
                    )],
                    "",
                );
            }
            let (mut n, mut flaky, mut blocked, mut skipped) = (0, 0, 0, 0);
            for t in &input.tests {
                n += t.tests;
                flaky += t.flaky;
                blocked += t.blocked;
                skipped += t.skipped;
                if t.failures + t.errors > 0 {
                    fails.push((
                        format!(
                            "test report {} ({}) on {}: {} failed, {} errors of {} tests",
                            t.record,
                            t.name.as_deref().unwrap_or("unnamed"),
                            t.subject,
                            t.failures,
                            t.errors,
                            t.tests
                        ),
                        format!("record:{}", t.record),
                    ));
                }
            }
            Out::from(
                fails,
                format!(
                    "{} report(s), {n} tests, no failures ({flaky} flaky, {blocked} blocked, {skipped} skipped)",
                    input.tests.len()
                ),
            )
        }
        Check::ScansClean => {
            if input.scans.is_empty() {
                return Out::from(
                    vec![(
                        "no scan is linked to the included commits or artifacts".into(),
                        format!("release:{}", input.release.id),
                    )],
                    "",
                );
            }
            let now_us = at(now);
            let mut allowed = 0;
            for s in &input.scans {
                for f in &s.findings {
                    if f.severity < gate.block_severity || f.severity == Severity::None {
                        continue;
                    }
                    let allow = gate
                        .allow_findings
                        .iter()
                        .find(|a| Some(&a.rule) == f.rule.as_ref() && at(&a.until) > now_us);
                    if allow.is_some() {
                        allowed += 1;
                        continue;
                    }
                    fails.push((
                        format!(
                            "scan {} ({}) on {}: {} finding {}{}",
                            s.record,
                            s.tool.as_deref().unwrap_or("unknown tool"),
                            s.subject,
                            f.severity.as_str(),
                            f.rule.as_deref().unwrap_or("(no rule id)"),
                            f.message
                                .as_deref()
                                .map(|m| format!(": {}", m.chars().take(120).collect::<String>()))
                                .unwrap_or_default()
                        ),
                        format!("record:{}", s.record),
                    ));
                }
            }
            Out::from(
                fails,
                format!(
                    "{} scan(s), no finding at or above {} ({allowed} allow-listed)",
                    input.scans.len(),
                    gate.block_severity.as_str()
                ),
            )
        }
        Check::SbomPresent => {
            if input.sboms.is_empty() {
                fails.push((
                    "no SBOM is linked to the release's artifacts or commits".into(),
                    format!("release:{}", input.release.id),
                ));
            }
            Out::from(fails, format!("{} SBOM(s)", input.sboms.len()))
        }
        Check::ProvenancePresent => {
            if input.artifacts.is_empty() {
                fails.push((
                    "no artifacts are linked to the release".into(),
                    format!("release:{}", input.release.id),
                ));
            }
            for a in &input.artifacts {
                if a.provenance.is_empty() {
                    fails.push((
                        format!("artifact {} has no provenance attestation", a.digest),
                        format!("artifact:{}", a.digest),
                    ));
                }
            }
            Out::from(
                fails,
                format!("provenance for {} artifact(s)", input.artifacts.len()),
            )
        }
        Check::DocumentsLinked => {
            for want in &gate.required_documents {
                if !input.documents.iter().any(|d| &d.doc_type == want) {
                    fails.push((
                        format!("no {want} document is linked"),
                        format!("release:{}", input.release.id),
                    ));
                }
            }
            Out::from(
                fails,
                format!("documents linked: {}", gate.required_documents.join(", ")),
            )
        }
        Check::Approvals => {
            let Some(rule) = policy.approvals.get(&crate::policy::Target::Release) else {
                return Out::from(
                    vec![(
                        "the gate requires approvals but the policy has no approvals.release rule"
                            .into(),
                        format!("policy:{}", policy.name),
                    )],
                    "",
                );
            };
            if tally.satisfied {
                let how = if tally.auto_approved {
                    format!(
                        "auto-approved: no human decision within {} (recorded as automatic, not as a person's approval)",
                        rule.auto_approve_after
                            .as_ref()
                            .map_or(String::new(), ToString::to_string)
                    )
                } else {
                    format!(
                        "approved by {} (needs {})",
                        tally.counted.join(", "),
                        rule.min
                    )
                };
                let mut out = Out::pass(how);
                out.reasons.extend(
                    tally
                        .not_counted
                        .iter()
                        .map(|r| format!("not counted: {r}")),
                );
                return out;
            }
            for p in &tally.rejected_by {
                fails.push((format!("rejected by {p}"), format!("person:{p}")));
            }
            if tally.rejected_by.is_empty() {
                fails.push((
                    format!(
                        "{} of {} required approval(s) for the current content {}",
                        tally.counted.len(),
                        rule.min,
                        input.approval.evidence_digest
                    ),
                    format!("release:{}", input.release.id),
                ));
            }
            for r in &tally.not_counted {
                fails.push((
                    format!("not counted: {r}"),
                    format!("release:{}", input.release.id),
                ));
            }
            Out::from(fails, "")
        }
        Check::SeparationOfDuties => {
            let sep = &policy.separation;
            let authors = authors(input);
            if sep.deployer_not_sole_author
                && let Some(d) = &input.deployer
                && !authors.is_empty()
                && authors.iter().all(|a| a == d)
            {
                fails.push((
                    format!("the deployer {d} is the sole author of every included change"),
                    format!("person:{d}"),
                ));
            }
            if sep.three_person_rule {
                for c in &input.commits {
                    let mut writers: BTreeSet<&String> =
                        c.authors.iter().chain(&c.committers).collect();
                    let prs: Vec<_> = input.prs.iter().filter(|p| c.prs.contains(&p.id)).collect();
                    writers.extend(prs.iter().filter_map(|p| p.author.as_ref()));
                    let reviewers: BTreeSet<&String> = prs
                        .iter()
                        .flat_map(|p| &p.reviews)
                        .filter(|r| r.state == "approved")
                        .filter_map(|r| r.reviewer.as_ref())
                        .filter(|r| !writers.contains(r))
                        .collect();
                    let approvers: BTreeSet<&String> = tally
                        .counted
                        .iter()
                        .filter(|p| !writers.contains(p))
                        .collect();
                    let three = reviewers.iter().any(|r| approvers.iter().any(|a| a != r));
                    if !three {
                        fails.push((
                            format!(
                                "commit {}: author, reviewer and release approver are not three different people (reviewers {:?}, approvers {:?})",
                                short(&c.sha),
                                reviewers,
                                approvers
                            ),
                            format!("commit:{}", c.sha),
                        ));
                    }
                }
            }
            for r in &tally.not_counted {
                if r.contains(" may not approve: ") {
                    fails.push((r.clone(), format!("release:{}", input.release.id)));
                }
            }
            Out::from(
                fails,
                "no author approved, the deployer is not the sole author",
            )
        }
        Check::NoBlockingException => {
            for e in &input.exceptions {
                if exception_state(policy, e, now) == ExceptionState::Overdue {
                    fails.push((
                        format!(
                            "exception {} ({}) has no retrospective approval and was due {}: escalated",
                            e.id, e.reason, e.retro_due
                        ),
                        format!("exception:{}", e.id),
                    ));
                }
            }
            Out::from(fails, "no overdue exception")
        }
        Check::BranchProtection => {
            let start = at(&input.release.created_at);
            if input.repos.is_empty() {
                fails.push((
                    "no repository is known for the included commits".into(),
                    format!("release:{}", input.release.id),
                ));
            }
            for repo in &input.repos {
                let events: Vec<_> = input
                    .branch_protection
                    .iter()
                    .filter(|e| &e.repo == repo)
                    .collect();
                let before = events.iter().rfind(|e| at(&e.recorded_at) <= start);
                match before {
                    None => fails.push((
                        format!("{repo}: no branch protection was recorded before the release period began ({})", input.release.created_at),
                        format!("repo:{repo}"),
                    )),
                    Some(e) if e.action == "deleted" => fails.push((
                        format!("{repo}: branch protection was off when the release period began (deleted at record {})", e.record),
                        format!("repo:{repo}"),
                    )),
                    Some(_) => {}
                }
                for e in events
                    .iter()
                    .filter(|e| at(&e.recorded_at) > start && at(&e.recorded_at) <= at(now))
                {
                    if e.action == "deleted" {
                        fails.push((
                            format!("{repo}: branch protection was removed during the release period (record {}, {})", e.record, e.recorded_at),
                            format!("record:{}", e.record),
                        ));
                    }
                }
            }
            Out::from(
                fails,
                format!(
                    "branch protection on throughout for {}",
                    input.repos.join(", ")
                ),
            )
        }
    }
}
