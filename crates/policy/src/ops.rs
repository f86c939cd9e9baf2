//! Governance operations over a store: each reads the log, decides, and appends its record in
//! one durable append. Shared by the CLI and the server, so both enforce the same rules.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use trailmark_ingest::Draft;
use trailmark_ingest::identity::IdentityMap;
use trailmark_model::{Blob, Digest, NewRecord, Timestamp, canonical_bytes};
use trailmark_store::Store;

use crate::collect::{Reader, Snapshot, parse_release_id, subject};
use crate::error::PolicyError;
use crate::eval::{self, Decision, ExceptionState, Status, Tally};
use crate::input::GateInput;
use crate::kinds;
use crate::policy::{Policy, Target};

/// The facade: a store, the identity map used to resolve people, and the policy name.
pub struct Governance<'a> {
    pub store: &'a dyn Store,
    pub people: &'a IdentityMap,
    /// The policy gates use (subject `policy:<name>`).
    pub policy_name: String,
    /// When set, views over many releases (pending approvals) keep only this org's.
    pub only_org: Option<String>,
}

impl std::fmt::Debug for Governance<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("policy", &self.policy_name)
            .finish()
    }
}

/// Who acts: a signed-in person and their roles on the scope concerned.
#[derive(Clone, Debug)]
pub struct Actor {
    /// Raw identity, e.g. `person:alice`.
    pub identity: String,
    pub roles: Vec<String>,
}

fn build(d: Draft) -> Result<NewRecord, PolicyError> {
    d.build().map_err(PolicyError::Refused)
}

/// A policy version as recorded.
#[derive(Clone, Debug)]
pub struct PolicyVersion {
    pub record: u64,
    pub policy: Policy,
    pub json: Value,
    pub digest: Digest,
    /// Active (in force), or proposed and waiting for approval.
    pub active: bool,
}

/// The result of a gate evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct GateResult {
    pub record: u64,
    pub release: String,
    #[serde(flatten)]
    pub decision: Decision,
    pub input_digest: String,
    pub policy_digest: String,
    pub policy_record: u64,
}

/// A pending approval and its service level.
#[derive(Clone, Debug, Serialize)]
pub struct Pending {
    pub subject: String,
    pub project: String,
    pub requested_at: String,
    pub approvals: usize,
    pub required: u32,
    /// `ok`, `warning` or `overdue` (`none` without an SLA).
    pub sla: &'static str,
    pub warn_at: Option<String>,
    pub due_at: Option<String>,
    pub escalate_to: Option<String>,
    pub evidence_digest: String,
}

/// One line of a release's governance checks list.
#[derive(Clone, Debug, Serialize)]
pub struct CheckItem {
    pub label: String,
    /// `blocking`, `warning` or `info`.
    pub severity: &'static str,
    /// `failing`, `overdue`, `pending` or `passing`.
    pub status: &'static str,
    pub due: Option<String>,
    pub entity: String,
    pub detail: String,
}

fn ts_plus(t: &str, micros: i64) -> String {
    Timestamp::parse_rfc3339(t)
        .and_then(|t| jiff::Timestamp::from_microsecond(t.as_micros().saturating_add(micros)).ok())
        .map(|t| Timestamp(t).to_string())
        .unwrap_or_default()
}

impl<'a> Governance<'a> {
    pub fn new(store: &'a dyn Store, people: &'a IdentityMap) -> Governance<'a> {
        Governance {
            store,
            people,
            policy_name: "default".into(),
            only_org: None,
        }
    }

    fn reader(&self) -> Reader<'a> {
        Reader::new(self.store, self.people)
    }

    fn append(&self, records: Vec<NewRecord>, blobs: Vec<Blob>) -> Result<u64, PolicyError> {
        let out = self.store.append_with_blobs(records, blobs)?;
        out.first()
            .map(|a| a.index.0)
            .ok_or_else(|| PolicyError::Refused("nothing was appended".into()))
    }

    // ---- policies ----

    /// Every recorded version of the policy, each marked active or proposed.
    pub fn policy_versions(&self) -> Result<Vec<PolicyVersion>, PolicyError> {
        let mut r = self.reader();
        let ps = subject("policy", &self.policy_name)?;
        let mut versions: Vec<PolicyVersion> = Vec::new();
        let approvals = r.decisions(&ps)?;
        for rec in r.about(&ps, Some(kinds::POLICY_VERSION))? {
            let p = r.payload(&rec.record)?;
            let json = p.get("policy").cloned().unwrap_or(Value::Null);
            let policy = Policy::from_json(&json).map_err(|e| PolicyError::Stored {
                index: rec.record.index.0,
                message: e.to_string(),
            })?;
            let digest = crate::policy::digest(&json);
            // A change of policy needs the approval the policy in force asks for.
            let active = match versions.iter().rev().find(|v| v.active) {
                None => true,
                Some(current) => match current.policy.approvals.get(&Target::Policy) {
                    None => true,
                    Some(rule) => {
                        let ds = digest.to_string();
                        let mut excluded = BTreeMap::new();
                        if let Some(a) = &rec.record.actor {
                            excluded.insert(r.person(a), "proposed this policy version".to_owned());
                        }
                        let now = Timestamp::now().to_string();
                        let mut t = eval::tally(
                            rule,
                            &approvals,
                            &ds,
                            &rec.record.recorded_at.to_string(),
                            &now,
                            &excluded,
                        );
                        if t.auto_approved {
                            // A policy change is never auto-approved.
                            t.satisfied = false;
                        }
                        t.satisfied
                    }
                },
            };
            versions.push(PolicyVersion {
                record: rec.record.index.0,
                policy,
                json,
                digest,
                active,
            });
        }
        Ok(versions)
    }

    /// The policy in force.
    pub fn active_policy(&self) -> Result<PolicyVersion, PolicyError> {
        self.policy_versions()?
            .into_iter()
            .rev()
            .find(|v| v.active)
            .ok_or_else(|| {
                PolicyError::NotFound(format!(
                    "policy {:?}: no version recorded (apply one with `trailmark policy apply FILE`)",
                    self.policy_name
                ))
            })
    }

    /// Records a new policy version. Returns its record index and whether it is in force now
    /// (it is not when the current policy requires approval of policy changes).
    pub fn apply_policy(
        &self,
        json: &Value,
        actor: &str,
    ) -> Result<(u64, bool, Digest), PolicyError> {
        let policy = Policy::from_json(json)?;
        if policy.name != self.policy_name {
            return Err(PolicyError::Refused(format!(
                "the file is policy {:?}, not {:?}",
                policy.name, self.policy_name
            )));
        }
        let digest = crate::policy::digest(json);
        let versions = self.policy_versions()?;
        if versions.last().is_some_and(|v| v.digest == digest) {
            return Err(PolicyError::Refused(format!(
                "policy {} is unchanged (digest {digest}): nothing recorded",
                self.policy_name
            )));
        }
        let rec = build(
            Draft::new(kinds::POLICY_VERSION)
                .subject("policy", &self.policy_name)
                .actor(Some(actor))
                .payload(json!({"policy": json, "digest": digest.to_string()})),
        )?;
        let idx = self.append(vec![rec], vec![])?;
        let active = self
            .policy_versions()?
            .iter()
            .any(|v| v.record == idx && v.active);
        Ok((idx, active, digest))
    }

    // ---- releases ----

    pub fn create_release(
        &self,
        project: &str,
        name: &str,
        version: &str,
        environments: &[String],
        description: Option<&str>,
        actor: &str,
    ) -> Result<(String, u64), PolicyError> {
        if environments.is_empty() {
            return Err(PolicyError::Refused(
                "a release needs at least one target environment".into(),
            ));
        }
        let id = format!("{project}/{name}@{version}");
        parse_release_id(&id)?;
        if name.contains('@') || name.contains('/') {
            return Err(PolicyError::Refused(format!(
                "release name {name:?} may not contain '@' or '/'"
            )));
        }
        let mut r = self.reader();
        match r.release(&id) {
            Ok(_) => return Err(PolicyError::Refused(format!("release {id} already exists"))),
            Err(PolicyError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let mut d = Draft::new(kinds::RELEASE_CREATED)
            .subject("release", &id)
            .subject("project", project)
            .actor(Some(actor))
            .payload(json!({
                "name": name, "version": version, "project": project,
                "environments": environments, "description": description,
            }));
        for e in environments {
            d = d.link("targets", "environment", e);
        }
        let idx = self.append(vec![build(d)?], vec![])?;
        Ok((id, idx))
    }

    /// Links items (`commit`, `ticket`, `artifact`, `pr`) and documents to a release.
    /// `via` says how (`explicit`, or `git-range A..B`). Returns the record index, and whether
    /// the link is late (after the release's first gate evaluation).
    pub fn link(
        &self,
        release: &str,
        items: &[(String, String)],
        documents: &[(String, String, Option<String>)],
        via: &str,
        actor: &str,
    ) -> Result<(u64, bool, usize), PolicyError> {
        let mut r = self.reader();
        let rel = r.release(release)?;
        let new: Vec<&(String, String)> = items
            .iter()
            .filter(|(ty, id)| !rel.links.iter().any(|l| &l.0 == ty && &l.1 == id))
            .collect();
        let new_docs: Vec<_> = documents
            .iter()
            .filter(|(t, id, v)| {
                !rel.documents
                    .iter()
                    .any(|(d, _, _)| &d.doc_type == t && &d.id == id && &d.version == v)
            })
            .collect();
        if new.is_empty() && new_docs.is_empty() {
            return Err(PolicyError::Refused(format!(
                "everything given is already linked to {release}"
            )));
        }
        let mut d = Draft::new(kinds::RELEASE_LINKED)
            .subject("release", release)
            .subject("project", &rel.project)
            .actor(Some(actor));
        for (ty, id) in &new {
            if !matches!(ty.as_str(), "commit" | "ticket" | "artifact" | "pr") {
                return Err(PolicyError::Refused(format!(
                    "cannot link a {ty:?} (commit, ticket, artifact, pr)"
                )));
            }
            if ty == "commit"
                && !(id.len() == 40
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            {
                return Err(PolicyError::Refused(format!(
                    "commit {id:?} is not a full lowercase SHA-1"
                )));
            }
            subject(ty, id)?;
            d = d.link("includes", ty, id);
        }
        let mut docs = Vec::new();
        for (ty, id, version) in &new_docs {
            subject("document", id)?;
            d = d.link("documented_by", "document", id);
            docs.push(json!({"type": ty, "id": id, "version": version}));
        }
        let late = rel.first_gate().is_some();
        let d = d.payload(json!({"via": via, "documents": docs, "late": late}));
        let idx = self.append(vec![build(d)?], vec![])?;
        Ok((idx, late, new.len() + new_docs.len()))
    }

    /// The release's current state for display and for approvers.
    pub fn snapshot(
        &self,
        release: &str,
        env: Option<&str>,
        deployer: Option<&str>,
    ) -> Result<(Snapshot, PolicyVersion), PolicyError> {
        let policy = self.active_policy()?;
        let mut r = self.reader();
        let env = match env {
            Some(e) => e.to_owned(),
            None => r
                .release(release)?
                .environments
                .first()
                .cloned()
                .unwrap_or_default(),
        };
        let snap = r.snapshot(
            release,
            &env,
            deployer,
            Timestamp::now(),
            policy.policy.exceptions.retro_approval_within.micros(),
        )?;
        Ok((snap, policy))
    }

    // ---- approvals ----

    /// Records a person's decision on a release. Refused (nothing stored) when the person is
    /// not eligible, is barred by separation of duties, or the content changed since `digest`.
    pub fn decide_release(
        &self,
        release: &str,
        actor: &Actor,
        approve: bool,
        digest: Option<&str>,
        comment: Option<&str>,
    ) -> Result<(u64, String), PolicyError> {
        let (snap, policy) = self.snapshot(release, None, None)?;
        let current = snap.input.approval.evidence_digest.clone();
        if let Some(d) = digest
            && d != current
        {
            return Err(PolicyError::Refused(format!(
                "the release content changed: you reviewed {d}, it is now {current}; review again"
            )));
        }
        if let Some(why) = self.ineligible(release, &snap, &policy, actor) {
            return Err(PolicyError::NotAllowed(why));
        }
        let d = Draft::new(kinds::APPROVAL_DECIDED)
            .subject("release", release)
            .subject("project", &snap.release.project)
            .actor(Some(actor.identity.as_str()))
            .payload(json!({
                "decision": if approve { "approve" } else { "reject" },
                "evidence_digest": current,
                "roles": actor.roles,
                "comment": comment,
                "policy_digest": policy.digest.to_string(),
            }));
        Ok((self.append(vec![build(d)?], vec![])?, current))
    }

    /// Why `actor` may not decide on the release now (not an eligible approver, or excluded by
    /// separation of duties), or `None` when they may. The same rule [`Self::decide_release`]
    /// enforces, for surfaces that offer the decision only to those who can make it.
    pub fn release_ineligibility(
        &self,
        release: &str,
        actor: &Actor,
    ) -> Result<Option<String>, PolicyError> {
        let (snap, policy) = self.snapshot(release, None, None)?;
        Ok(self.ineligible(release, &snap, &policy, actor))
    }

    fn ineligible(
        &self,
        release: &str,
        snap: &Snapshot,
        policy: &PolicyVersion,
        actor: &Actor,
    ) -> Option<String> {
        let r = self.reader();
        let person = r.person(&actor.identity);
        if let Some(rule) = policy.policy.approvals.get(&Target::Release) {
            let eligible = rule.approvers.contains(&person)
                || actor.roles.iter().any(|x| rule.roles.contains(x));
            if !eligible {
                return Some(format!(
                    "{person} is not an eligible approver of {release} (needs a role among {:?} or to be named)",
                    rule.roles
                ));
            }
        }
        let excluded = eval::excluded_approvers(&snap.input, &policy.policy.separation);
        excluded
            .get(&person)
            .map(|why| format!("separation of duties: {person} may not approve {release}: {why}"))
    }

    /// A decision on an exception (its retrospective approval) or a proposed policy version.
    pub fn decide_other(
        &self,
        target: Target,
        id: &str,
        actor: &Actor,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<u64, PolicyError> {
        let mut r = self.reader();
        let person = r.person(&actor.identity);
        let policy = self.active_policy()?;
        let (digest, project, requester) = match target {
            Target::Exception => {
                let s = subject("exception", id)?;
                let raised = r
                    .about(&s, Some(kinds::EXCEPTION_RAISED))?
                    .into_iter()
                    .next()
                    .ok_or_else(|| PolicyError::NotFound(format!("exception {id}")))?;
                let project = raised
                    .record
                    .subjects
                    .iter()
                    .find(|s| s.ty.as_str() == "project")
                    .map(|s| s.id.as_str().to_owned())
                    .unwrap_or_default();
                (
                    Digest::of(&raised.leaf).to_string(),
                    Some(project),
                    raised.record.actor.as_deref().map(|a| r.person(a)),
                )
            }
            Target::Policy => {
                let v = self
                    .policy_versions()?
                    .into_iter()
                    .rev()
                    .find(|v| !v.active)
                    .ok_or_else(|| {
                        PolicyError::NotFound(format!("a proposed version of policy {id}"))
                    })?;
                let rec = r.record(v.record)?;
                (
                    v.digest.to_string(),
                    None,
                    rec.record.actor.as_deref().map(|a| r.person(a)),
                )
            }
            _ => {
                return Err(PolicyError::Refused(format!(
                    "decide_other does not handle {target:?}"
                )));
            }
        };
        if let Some(rule) = policy.policy.approvals.get(&target) {
            let eligible = rule.approvers.contains(&person)
                || actor.roles.iter().any(|x| rule.roles.contains(x));
            if !eligible {
                return Err(PolicyError::NotAllowed(format!(
                    "{person} is not an eligible approver of {} changes (needs a role among {:?} or to be named)",
                    target.subject_type(),
                    rule.roles
                )));
            }
        }
        if requester.as_deref() == Some(person.as_str()) {
            return Err(PolicyError::NotAllowed(format!(
                "separation of duties: {person} raised this {} and may not approve it",
                target.subject_type()
            )));
        }
        let subject_id = if target == Target::Policy {
            self.policy_name.clone()
        } else {
            id.to_owned()
        };
        let mut d = Draft::new(kinds::APPROVAL_DECIDED)
            .subject(target.subject_type(), &subject_id)
            .actor(Some(actor.identity.as_str()))
            .payload(json!({
                "decision": if approve { "approve" } else { "reject" },
                "evidence_digest": digest,
                "roles": actor.roles,
                "comment": comment,
            }));
        if let Some(p) = project.filter(|p| !p.is_empty()) {
            d = d.subject("project", &p);
        }
        self.append(vec![build(d)?], vec![])
    }

    // ---- gates ----

    /// Evaluates the gate for a deploy of `release` to `env` and records the decision (with
    /// its input document kept beside the log).
    pub fn gate(
        &self,
        release: &str,
        env: &str,
        deployer: Option<&str>,
    ) -> Result<GateResult, PolicyError> {
        let (snap, policy) = self.snapshot(release, Some(env), deployer)?;
        let decision = eval::evaluate(&policy.policy, &snap.input);
        self.record_gate(&snap, &policy, decision)
    }

    fn record_gate(
        &self,
        snap: &Snapshot,
        policy: &PolicyVersion,
        decision: Decision,
    ) -> Result<GateResult, PolicyError> {
        let input_json =
            serde_json::to_value(&snap.input).map_err(|e| PolicyError::Refused(e.to_string()))?;
        let bytes = canonical_bytes(&input_json);
        let input = Blob::new(bytes);
        let input_digest = input.digest();
        let d = Draft::new(kinds::GATE_DECIDED)
            .subject("release", &snap.release.id)
            .subject("environment", &snap.input.environment)
            .subject("project", &snap.release.project)
            .link("evaluated", "input", input_digest.to_string())
            .link("under_policy", "policy", &self.policy_name)
            .actor(Some("trailmark:gate"))
            .payload(json!({
                "decision": decision,
                "input_digest": input_digest.to_string(),
                "policy_digest": policy.digest.to_string(),
                "policy_record": policy.record,
                "deployer": snap.input.deployer,
                "evidence_digest": snap.input.approval.evidence_digest,
            }));
        let record = self.append(vec![build(d)?], vec![input])?;
        Ok(GateResult {
            record,
            release: snap.release.id.clone(),
            decision,
            input_digest: input_digest.to_string(),
            policy_digest: policy.digest.to_string(),
            policy_record: policy.record,
        })
    }

    /// Re-evaluates a recorded gate decision from its stored input, under the policy version
    /// it was decided with and under the policy in force today.
    pub fn replay(&self, record: u64) -> Result<Replay, PolicyError> {
        let mut r = self.reader();
        let rec = r.record(record)?;
        if rec.record.kind.as_str() != kinds::GATE_DECIDED {
            return Err(PolicyError::Refused(format!(
                "record {record} is a {}, not a gate decision",
                rec.record.kind
            )));
        }
        let p = r.payload(&rec.record)?;
        let stored = |m: String| PolicyError::Stored {
            index: record,
            message: m,
        };
        let recorded: Decision =
            serde_json::from_value(p.get("decision").cloned().unwrap_or_default())
                .map_err(|e| stored(format!("decision: {e}")))?;
        let input_digest: Digest = p
            .get("input_digest")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| stored("input_digest missing".into()))?;
        let bytes = self
            .store
            .blob(&input_digest)?
            .ok_or_else(|| stored(format!("input {input_digest} is missing")))?;
        if Digest::of(&bytes) != input_digest {
            return Err(stored(format!(
                "input blob does not match its digest {input_digest}"
            )));
        }
        let input: GateInput =
            serde_json::from_slice(&bytes).map_err(|e| stored(format!("input: {e}")))?;
        let policy_record = p
            .get("policy_record")
            .and_then(Value::as_u64)
            .ok_or_else(|| stored("policy_record missing".into()))?;
        let prec = r.record(policy_record)?;
        let pjson = r
            .payload(&prec.record)?
            .get("policy")
            .cloned()
            .unwrap_or_default();
        let then_policy = Policy::from_json(&pjson).map_err(|e| stored(e.to_string()))?;
        let then_digest = crate::policy::digest(&pjson).to_string();
        if Some(then_digest.as_str()) != p.get("policy_digest").and_then(Value::as_str) {
            return Err(stored(
                "the policy record does not match the decision's policy digest".into(),
            ));
        }
        let then = eval::evaluate(&then_policy, &input);
        let now_policy = self.active_policy()?;
        let today = eval::evaluate(&now_policy.policy, &input);
        let diff = diff(&then, &today);
        Ok(Replay {
            record,
            reproduced: then == recorded,
            recorded,
            under_recorded_policy: then,
            under_current_policy: today,
            current_policy_digest: now_policy.digest.to_string(),
            recorded_policy_digest: then_digest,
            differences: diff,
        })
    }

    // ---- exceptions ----

    #[allow(clippy::too_many_arguments)]
    pub fn raise_exception(
        &self,
        release: &str,
        environments: &[String],
        reason: &str,
        valid_for: &crate::span::Span,
        controls: &[String],
        authorized_by: Option<&str>,
        actor: &str,
    ) -> Result<(String, u64, String), PolicyError> {
        if reason.trim().is_empty() {
            return Err(PolicyError::Refused("an exception needs a reason".into()));
        }
        if controls.is_empty() {
            return Err(PolicyError::Refused(
                "an exception needs at least one compensating control".into(),
            ));
        }
        let policy = self.active_policy()?;
        if valid_for.seconds() > policy.policy.exceptions.max_validity.seconds() {
            return Err(PolicyError::Refused(format!(
                "an exception may be valid for at most {} (asked {valid_for})",
                policy.policy.exceptions.max_validity
            )));
        }
        let mut r = self.reader();
        let rel = r.release(release)?;
        let now = Timestamp::now();
        let expires = ts_plus(&now.to_string(), valid_for.micros());
        let seed = format!("{release}\n{reason}\n{now}\n{actor}");
        let id = format!(
            "{}/EXC-{}",
            rel.project,
            &Digest::of(seed.as_bytes()).to_hex()[..10]
        );
        let d = Draft::new(kinds::EXCEPTION_RAISED)
            .subject("exception", &id)
            .subject("release", release)
            .subject("project", &rel.project)
            .actor(Some(actor))
            .payload(json!({
                "reason": reason,
                "release": release,
                "environments": environments,
                "expires_at": expires,
                "compensating_controls": controls,
                "authorized_by": authorized_by,
                "retro_approval_within": policy.policy.exceptions.retro_approval_within.to_string(),
            }));
        let idx = self.append(vec![build(d)?], vec![])?;
        let due = ts_plus(
            &now.to_string(),
            policy.policy.exceptions.retro_approval_within.micros(),
        );
        Ok((id, idx, due))
    }

    pub fn close_exception(&self, id: &str, reason: &str, actor: &str) -> Result<u64, PolicyError> {
        let mut r = self.reader();
        let s = subject("exception", id)?;
        let raised = r.about(&s, Some(kinds::EXCEPTION_RAISED))?;
        let raised = raised
            .first()
            .ok_or_else(|| PolicyError::NotFound(format!("exception {id}")))?;
        if !r.about(&s, Some(kinds::EXCEPTION_CLOSED))?.is_empty() {
            return Err(PolicyError::Refused(format!(
                "exception {id} is already closed"
            )));
        }
        let mut d = Draft::new(kinds::EXCEPTION_CLOSED)
            .subject("exception", id)
            .actor(Some(actor))
            .payload(json!({"reason": reason}));
        for s in raised
            .record
            .subjects
            .iter()
            .filter(|s| s.ty.as_str() == "project" || s.ty.as_str() == "release")
        {
            d = d.subject(s.ty.as_str(), s.id.as_str());
        }
        self.append(vec![build(d)?], vec![])
    }

    /// Exceptions of a project with their state now.
    pub fn exceptions(
        &self,
        project: &str,
    ) -> Result<Vec<(crate::input::ExceptionInfo, ExceptionState)>, PolicyError> {
        let policy = self.active_policy()?;
        let now = Timestamp::now().to_string();
        let mut r = self.reader();
        Ok(r.exceptions(
            project,
            policy.policy.exceptions.retro_approval_within.micros(),
        )?
        .into_iter()
        .map(|e| {
            let s = eval::exception_state(&policy.policy, &e, &now);
            (e, s)
        })
        .collect())
    }

    // ---- rollbacks ----

    /// Proposes a rollback decision. Returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn propose_rollback(
        &self,
        release: &str,
        env: &str,
        reason: &str,
        target_artifact: &str,
        plan: &str,
        due: Option<&str>,
        incident: Option<&str>,
        deployment: Option<&str>,
        actor: &str,
    ) -> Result<(String, u64), PolicyError> {
        if reason.trim().is_empty() || plan.trim().is_empty() {
            return Err(PolicyError::Refused(
                "a rollback decision needs a reason and a plan".into(),
            ));
        }
        if let Some(d) = due
            && Timestamp::parse_rfc3339(d).is_none()
        {
            return Err(PolicyError::Refused(format!(
                "due {d:?} is not an RFC 3339 instant"
            )));
        }
        subject("artifact", target_artifact)?;
        let mut r = self.reader();
        let rel = r.release(release)?;
        let n = rel
            .records
            .iter()
            .filter(|x| {
                x.record.kind.as_str() == kinds::ROLLBACK_DECIDED
                    && x.record.payload_status() == Some("proposed")
            })
            .count();
        let id = format!("{release}/rollback-{}", n + 1);
        let mut d = Draft::new(kinds::ROLLBACK_DECIDED)
            .subject("rollback", &id)
            .subject("release", release)
            .subject("project", &rel.project)
            .link("rolls_back_to", "artifact", target_artifact)
            .link_opt("for_incident", "ticket", incident)
            .link_opt("of_deployment", "deployment", deployment)
            .actor(Some(actor))
            .payload(json!({
                "status": "proposed", "reason": reason, "plan": plan, "due": due,
                "environment": env, "target_artifact": target_artifact,
                "incident": incident, "deployment": deployment,
            }));
        d = d.link("in_environment", "environment", env);
        let idx = self.append(vec![build(d)?], vec![])?;
        Ok((id, idx))
    }

    /// Moves a rollback decision on. Approving it first evaluates (and records) the gate of the
    /// release that shipped the target artifact: rolling back to something non-compliant is
    /// refused.
    pub fn update_rollback(
        &self,
        id: &str,
        status: &str,
        note: Option<&str>,
        actor: &str,
    ) -> Result<(u64, Option<GateResult>), PolicyError> {
        let mut r = self.reader();
        let s = subject("rollback", id)?;
        let history = r.about(&s, Some(kinds::ROLLBACK_DECIDED))?;
        let first = history
            .first()
            .ok_or_else(|| PolicyError::NotFound(format!("rollback {id}")))?;
        let first_p = r.payload(&first.record)?;
        let last = history
            .last()
            .map(|h| r.payload(&h.record))
            .transpose()?
            .unwrap_or_default();
        let current = last
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("proposed")
            .to_owned();
        let allowed: &[&str] = match current.as_str() {
            "proposed" => &["approved", "cancelled"],
            "approved" => &["executing", "cancelled"],
            "executing" => &["executed", "cancelled"],
            _ => &[],
        };
        if !allowed.contains(&status) {
            return Err(PolicyError::Refused(format!(
                "rollback {id} is {current}; it can move to {}",
                if allowed.is_empty() {
                    "nothing (final)".to_owned()
                } else {
                    allowed.join(" or ")
                }
            )));
        }
        let release = first
            .record
            .subjects
            .iter()
            .find(|s| s.ty.as_str() == "release")
            .map(|s| s.id.as_str().to_owned())
            .unwrap_or_default();
        let env = first_p
            .get("environment")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let target = first_p
            .get("target_artifact")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut gate = None;
        if status == "approved" {
            let target_release = self.release_shipping(&target)?.ok_or_else(|| {
                PolicyError::NotAllowed(format!(
                    "the rollback target {target} is not linked to any release, so its compliance cannot be shown"
                ))
            })?;
            let g = self.gate(&target_release, &env, None)?;
            if !g.decision.decision.permits() {
                let why: Vec<String> = g
                    .decision
                    .checks
                    .iter()
                    .filter(|c| c.status == Status::Fail)
                    .flat_map(|c| c.reasons.clone())
                    .collect();
                return Err(PolicyError::NotAllowed(format!(
                    "the rollback target {target} (release {target_release}) is not compliant for {env} (gate record {}): {}",
                    g.record,
                    why.join("; ")
                )));
            }
            gate = Some(g);
        }
        let mut d = Draft::new(kinds::ROLLBACK_DECIDED)
            .subject("rollback", id)
            .subject("release", &release)
            .actor(Some(actor))
            .payload(json!({
                "status": status, "note": note,
                "target_gate_record": gate.as_ref().map(|g| g.record),
            }));
        for s in first
            .record
            .subjects
            .iter()
            .filter(|s| s.ty.as_str() == "project")
        {
            d = d.subject("project", s.id.as_str());
        }
        Ok((self.append(vec![build(d)?], vec![])?, gate))
    }

    /// The release whose links include an artifact.
    pub fn release_shipping(&self, artifact: &str) -> Result<Option<String>, PolicyError> {
        let mut r = self.reader();
        let s = subject("artifact", artifact)?;
        for rec in r.mentioning(&s)? {
            if rec.record.kind.as_str() == kinds::RELEASE_LINKED
                && let Some(rel) = rec
                    .record
                    .subjects
                    .iter()
                    .find(|s| s.ty.as_str() == "release")
            {
                return Ok(Some(rel.id.as_str().to_owned()));
            }
        }
        Ok(None)
    }

    /// The most recently linked release, within `scope` (`org` or `org/project`), that includes
    /// a commit: how a deployment request from a forge finds what it deploys.
    pub fn release_including(&self, sha: &str, scope: &str) -> Result<Option<String>, PolicyError> {
        let mut r = self.reader();
        let s = subject("commit", sha)?;
        // An empty scope matches every release.
        let prefix = if scope.is_empty() {
            String::new()
        } else {
            format!("{scope}/")
        };
        let mut found = None;
        for rec in r.mentioning(&s)? {
            if rec.record.kind.as_str() != kinds::RELEASE_LINKED {
                continue;
            }
            if let Some(rel) = rec
                .record
                .subjects
                .iter()
                .find(|s| s.ty.as_str() == "release")
                && rel.id.as_str().starts_with(&prefix)
            {
                found = Some(rel.id.as_str().to_owned());
            }
        }
        Ok(found)
    }

    pub fn clear_release(
        &self,
        release: &str,
        note: &str,
        actor: &str,
    ) -> Result<u64, PolicyError> {
        let mut r = self.reader();
        let rel = r.release(release)?;
        let d = Draft::new(kinds::RELEASE_CLEARED)
            .subject("release", release)
            .subject("project", &rel.project)
            .actor(Some(actor))
            .payload(json!({"note": note}));
        self.append(vec![build(d)?], vec![])
    }

    // ---- views ----

    /// Pending approvals over every release (and exceptions awaiting retrospective approval),
    /// most urgent first.
    pub fn pending(&self) -> Result<Vec<Pending>, PolicyError> {
        let policy = self.active_policy()?;
        let mut r = self.reader();
        let now = Timestamp::now();
        let now_s = now.to_string();
        let mut out = Vec::new();
        // Releases wait on approval only when the policy has a release rule.
        if let Some(rule) = policy.policy.approvals.get(&Target::Release) {
            for rec in r.about_kind(kinds::RELEASE_CREATED)? {
                let Some(id) = rec
                    .record
                    .subjects
                    .iter()
                    .find(|s| s.ty.as_str() == "release")
                    .map(|s| s.id.as_str().to_owned())
                else {
                    continue;
                };
                if self
                    .only_org
                    .as_ref()
                    .is_some_and(|o| !id.starts_with(&format!("{o}/")))
                {
                    continue;
                }
                let retro = policy.policy.exceptions.retro_approval_within.micros();
                let snap = r.snapshot(&id, "", None, now, retro)?;
                let Some(t) = eval::release_tally(&policy.policy, &snap.input) else {
                    continue;
                };
                if !t.satisfied {
                    out.push(pending_item(
                        &id,
                        &snap.release.project,
                        &snap.input.approval.requested_at,
                        &t,
                        rule,
                        &now_s,
                        &snap.input.approval.evidence_digest,
                    ));
                }
            }
        }
        for project in r.projects_with_exceptions()? {
            if self
                .only_org
                .as_ref()
                .is_some_and(|o| !project.starts_with(&format!("{o}/")))
            {
                continue;
            }
            for (e, state) in self.exceptions(&project)? {
                if matches!(
                    state,
                    ExceptionState::AwaitingApproval | ExceptionState::Overdue
                ) {
                    out.push(Pending {
                        subject: format!("exception:{}", e.id),
                        project: project.clone(),
                        requested_at: e.created_at.clone(),
                        approvals: 0,
                        required: policy
                            .policy
                            .approvals
                            .get(&Target::Exception)
                            .map_or(1, |r| r.min),
                        sla: if state == ExceptionState::Overdue {
                            "overdue"
                        } else {
                            "ok"
                        },
                        warn_at: None,
                        due_at: Some(e.retro_due.clone()),
                        escalate_to: policy
                            .policy
                            .approvals
                            .get(&Target::Exception)
                            .and_then(|r| r.sla.as_ref())
                            .map(|s| s.escalate_to.clone()),
                        evidence_digest: String::new(),
                    });
                }
            }
        }
        let rank = |s: &str| match s {
            "overdue" => 0,
            "warning" => 1,
            "ok" => 2,
            _ => 3,
        };
        out.sort_by(|a, b| {
            rank(a.sla)
                .cmp(&rank(b.sla))
                .then(a.due_at.cmp(&b.due_at))
                .then(a.requested_at.cmp(&b.requested_at))
        });
        Ok(out)
    }

    /// The governance checks list of a release: every gate check per target environment,
    /// pending approvals with their due dates, exceptions and rollback decisions; failing and
    /// blocking first.
    pub fn checks(&self, release: &str) -> Result<Vec<CheckItem>, PolicyError> {
        let policy = self.active_policy()?;
        let mut r = self.reader();
        let rel = r.release(release)?;
        let now = Timestamp::now();
        let now_s = now.to_string();
        let mut items = Vec::new();
        for env in &rel.environments {
            let snap = r.snapshot(
                release,
                env,
                None,
                now,
                policy.policy.exceptions.retro_approval_within.micros(),
            )?;
            let d = eval::evaluate(&policy.policy, &snap.input);
            for c in &d.checks {
                let fail = c.status == Status::Fail;
                items.push(CheckItem {
                    label: format!("[{env}] {}", c.label),
                    severity: if fail { "blocking" } else { "info" },
                    status: if fail { "failing" } else { "passing" },
                    due: None,
                    entity: c
                        .entities
                        .first()
                        .cloned()
                        .unwrap_or_else(|| format!("release:{release}")),
                    detail: c.reasons.join("; "),
                });
            }
            if env == rel.environments.first().unwrap_or(env)
                && let Some(rule) = policy.policy.approvals.get(&Target::Release)
                && !d.approval.satisfied
            {
                let p = pending_item(
                    release,
                    &rel.project,
                    &snap.input.approval.requested_at,
                    &d.approval,
                    rule,
                    &now_s,
                    &snap.input.approval.evidence_digest,
                );
                items.push(CheckItem {
                    label: format!("Approval pending ({} of {})", p.approvals, p.required),
                    severity: if p.sla == "overdue" {
                        "blocking"
                    } else {
                        "warning"
                    },
                    status: if p.sla == "overdue" {
                        "overdue"
                    } else {
                        "pending"
                    },
                    due: p.due_at.clone(),
                    entity: format!("release:{release}"),
                    detail: format!(
                        "SLA {}{}",
                        p.sla,
                        p.escalate_to
                            .map(|e| format!(", escalates to {e}"))
                            .unwrap_or_default()
                    ),
                });
            }
        }
        for (e, state) in self.exceptions(&rel.project)? {
            if e.release.as_deref().is_some_and(|x| x != release)
                && state != ExceptionState::Overdue
            {
                continue;
            }
            let (severity, status) = match state {
                ExceptionState::Overdue => ("blocking", "overdue"),
                ExceptionState::AwaitingApproval => ("warning", "pending"),
                _ => ("info", "passing"),
            };
            items.push(CheckItem {
                label: format!("Exception {} ({:?})", e.id, state)
                    .replace("AwaitingApproval", "awaiting retrospective approval"),
                severity,
                status,
                due: Some(e.retro_due.clone()),
                entity: format!("exception:{}", e.id),
                detail: e.reason.clone(),
            });
        }
        for (id, status, due) in self.rollbacks_of(&mut r, &rel)? {
            let open = !matches!(status.as_str(), "executed" | "cancelled");
            items.push(CheckItem {
                label: format!("Rollback decision {id}: {status}"),
                severity: if open { "warning" } else { "info" },
                status: if open { "pending" } else { "passing" },
                due,
                entity: format!("rollback:{id}"),
                detail: if open {
                    "release under monitoring".into()
                } else {
                    "finalized".into()
                },
            });
        }
        let rank = |i: &CheckItem| {
            let s = match i.status {
                "failing" | "overdue" => 0,
                "pending" => 1,
                _ => 2,
            };
            let v = match i.severity {
                "blocking" => 0,
                "warning" => 1,
                _ => 2,
            };
            (s, v)
        };
        items.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.due.cmp(&b.due)));
        Ok(items)
    }

    /// `(id, latest status, due)` of each rollback decision on a release.
    pub fn rollbacks_of(
        &self,
        r: &mut Reader<'_>,
        rel: &crate::collect::Release,
    ) -> Result<Vec<(String, String, Option<String>)>, PolicyError> {
        let mut by_id: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
        for rec in rel
            .records
            .iter()
            .filter(|x| x.record.kind.as_str() == kinds::ROLLBACK_DECIDED)
        {
            let p = r.payload(&rec.record)?;
            let Some(id) = rec
                .record
                .subjects
                .iter()
                .find(|s| s.ty.as_str() == "rollback")
                .map(|s| s.id.as_str().to_owned())
            else {
                continue;
            };
            let status = p
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let e = by_id.entry(id).or_insert((status.clone(), None));
            e.0 = status;
            if let Some(d) = p.get("due").and_then(Value::as_str) {
                e.1 = Some(d.to_owned());
            }
        }
        Ok(by_id.into_iter().map(|(k, (s, d))| (k, s, d)).collect())
    }

    /// Monitoring state: under monitoring while a rollback decision is open and the release
    /// was not cleared after it.
    pub fn monitoring(&self, release: &str) -> Result<bool, PolicyError> {
        let mut r = self.reader();
        let rel = r.release(release)?;
        let open = self
            .rollbacks_of(&mut r, &rel)?
            .iter()
            .any(|(_, s, _)| !matches!(s.as_str(), "executed" | "cancelled"));
        let last_rollback = rel
            .records
            .iter()
            .filter(|x| x.record.kind.as_str() == kinds::ROLLBACK_DECIDED)
            .map(|x| x.record.index.0)
            .max();
        let cleared_after = rel.records.iter().any(|x| {
            x.record.kind.as_str() == kinds::RELEASE_CLEARED
                && Some(x.record.index.0) > last_rollback
        });
        Ok(open && !cleared_after)
    }
}

fn pending_item(
    id: &str,
    project: &str,
    requested_at: &str,
    t: &Tally,
    rule: &crate::policy::ApprovalRule,
    now: &str,
    digest: &str,
) -> Pending {
    let (sla, warn_at, due_at, esc) = match &rule.sla {
        None => ("none", None, None, None),
        Some(s) => {
            let warn = ts_plus(requested_at, s.warn_after.micros());
            let due = ts_plus(requested_at, s.due_after.micros());
            let state = if due.as_str() <= now {
                "overdue"
            } else if warn.as_str() <= now {
                "warning"
            } else {
                "ok"
            };
            (state, Some(warn), Some(due), Some(s.escalate_to.clone()))
        }
    };
    Pending {
        subject: format!("release:{id}"),
        project: project.to_owned(),
        requested_at: requested_at.to_owned(),
        approvals: t.counted.len(),
        required: rule.min,
        sla,
        warn_at,
        due_at,
        escalate_to: esc,
        evidence_digest: digest.to_owned(),
    }
}

/// The outcome of a replay.
#[derive(Clone, Debug, Serialize)]
pub struct Replay {
    pub record: u64,
    /// Recomputing under the recorded policy gives exactly the recorded decision.
    pub reproduced: bool,
    pub recorded: Decision,
    pub under_recorded_policy: Decision,
    pub under_current_policy: Decision,
    pub recorded_policy_digest: String,
    pub current_policy_digest: String,
    pub differences: Vec<String>,
}

fn diff(then: &Decision, now: &Decision) -> Vec<String> {
    let mut out = Vec::new();
    if then.decision != now.decision {
        out.push(format!(
            "decision: {:?} then, {:?} under today's policy",
            then.decision, now.decision
        ));
    }
    for c in &then.checks {
        match now.checks.iter().find(|n| n.id == c.id) {
            None => out.push(format!("check {} is no longer required", c.id)),
            Some(n) if n.status != c.status => out.push(format!(
                "check {}: {:?} then, {:?} now ({})",
                c.id,
                c.status,
                n.status,
                n.reasons.join("; ")
            )),
            Some(_) => {}
        }
    }
    for n in &now.checks {
        if !then.checks.iter().any(|c| c.id == n.id) {
            out.push(format!(
                "check {} is new: {:?} ({})",
                n.id,
                n.status,
                n.reasons.join("; ")
            ));
        }
    }
    out
}

trait PayloadStatus {
    fn payload_status(&self) -> Option<&str>;
}

impl PayloadStatus for trailmark_model::Record {
    fn payload_status(&self) -> Option<&str> {
        match &self.payload {
            trailmark_model::Payload::Inline(v) => v.get("status").and_then(Value::as_str),
            trailmark_model::Payload::Blob { .. } => None,
        }
    }
}

impl<S: crate::collect::Source + ?Sized> Reader<'_, S> {
    /// Every record of a kind (no subject filter), in log order.
    pub fn about_kind(
        &mut self,
        kind: &str,
    ) -> Result<Vec<std::sync::Arc<trailmark_store::StoredRecord>>, PolicyError> {
        let kind =
            trailmark_model::Kind::parse(kind).map_err(|e| PolicyError::Refused(e.to_string()))?;
        Ok(self.store.query_all(&trailmark_store::Query {
            kind: Some(kind),
            ..Default::default()
        })?)
    }

    fn projects_with_exceptions(&mut self) -> Result<Vec<String>, PolicyError> {
        let mut out: Vec<String> = self
            .about_kind(kinds::EXCEPTION_RAISED)?
            .iter()
            .filter_map(|r| {
                r.record
                    .subjects
                    .iter()
                    .find(|s| s.ty.as_str() == "project")
                    .map(|s| s.id.as_str().to_owned())
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// The roles a principal holds on a project (`org/project`): what approval rules compare.
pub fn roles_on(p: &trailmark_access::Principal, project: &str) -> Vec<String> {
    let Ok(target) = project.parse::<trailmark_access::Scope>() else {
        return Vec::new();
    };
    let mut roles: Vec<String> = p
        .grants
        .iter()
        .filter(|g| g.scope.covers(&target))
        .map(|g| g.role.as_str().to_owned())
        .collect();
    roles.sort();
    roles.dedup();
    roles
}
