//! Policy files: approval rules per subject type, separation of duties, exceptions, ticket
//! states and per-environment gates. Written as TOML in the repository or data directory;
//! stored in the log as JSON (with every Rego module's source embedded), so a recorded policy
//! version is self-contained and its digest pins exactly what was enforced.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use trailmark_model::{Digest, canonical_bytes};

use crate::error::PolicyError;
use crate::span::Span;

/// What an approval rule governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Release,
    Ticket,
    Deployment,
    Exception,
    Policy,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Release,
        Target::Ticket,
        Target::Deployment,
        Target::Exception,
        Target::Policy,
    ];

    /// The subject type its records are filed under.
    pub fn subject_type(self) -> &'static str {
        match self {
            Target::Release => "release",
            Target::Ticket => "ticket",
            Target::Deployment => "deployment",
            Target::Exception => "exception",
            Target::Policy => "policy",
        }
    }

    pub fn from_subject_type(ty: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.subject_type() == ty)
    }
}

/// A whole policy. Unknown keys are refused everywhere: a misspelt rule must not silently
/// turn into "no rule".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The policy's name; its versions are records about subject `policy:<name>`.
    pub name: String,
    #[serde(default)]
    pub approvals: BTreeMap<Target, ApprovalRule>,
    #[serde(default)]
    pub separation: Separation,
    #[serde(default)]
    pub exceptions: ExceptionRules,
    #[serde(default)]
    pub tickets: TicketRules,
    /// Gates by environment name; `"*"` applies to environments not listed.
    #[serde(default)]
    pub gates: BTreeMap<String, Gate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Roles whose holders (on the subject's org or project) may approve.
    #[serde(default)]
    pub roles: Vec<String>,
    /// People who may approve whatever their role (person ids after identity resolution,
    /// e.g. `alice` or `person:alice`).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Distinct eligible approvers needed.
    #[serde(default = "one")]
    pub min: u32,
    /// With no human decision after this long, the subject counts as approved, and the
    /// decision says it was automatic; never counted as a person's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approve_after: Option<Span>,
    /// An approval older than this no longer counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<Sla>,
}

fn one() -> u32 {
    1
}

/// Service levels on pending approvals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    pub warn_after: Span,
    pub due_after: Span,
    /// The role told when an approval is overdue.
    pub escalate_to: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Separation {
    /// An approver may not be an author or committer of any included change.
    #[serde(default = "yes")]
    pub approver_not_author: bool,
    /// An approver may not be the one who requested the release or exception.
    #[serde(default = "yes")]
    pub approver_not_requester: bool,
    /// The deployer may not be the only author of the included changes.
    #[serde(default = "yes")]
    pub deployer_not_sole_author: bool,
    /// PCI DSS 6.2.3.1: for every change, author, reviewer and release approver are three
    /// different people.
    #[serde(default)]
    pub three_person_rule: bool,
}

fn yes() -> bool {
    true
}

impl Default for Separation {
    fn default() -> Separation {
        Separation {
            approver_not_author: true,
            approver_not_requester: true,
            deployer_not_sole_author: true,
            three_person_rule: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionRules {
    /// A break-glass exception needs a retrospective approval (rule `approvals.exception`)
    /// within this long of being raised; after that it is overdue and blocks deploys.
    #[serde(default = "two_days")]
    pub retro_approval_within: Span,
    /// Longest validity an exception may ask for.
    #[serde(default = "two_weeks")]
    pub max_validity: Span,
}

fn two_days() -> Span {
    Span::parse("48h").unwrap_or_else(|_| unreachable!("constant"))
}

fn two_weeks() -> Span {
    Span::parse("14d").unwrap_or_else(|_| unreachable!("constant"))
}

impl Default for ExceptionRules {
    fn default() -> ExceptionRules {
        ExceptionRules {
            retro_approval_within: two_days(),
            max_validity: two_weeks(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRules {
    /// Workflow states that mean "approved to ship" (compared case-insensitively).
    #[serde(default = "approved_states")]
    pub approved_states: Vec<String>,
}

fn approved_states() -> Vec<String> {
    vec!["Approved".into(), "Done".into()]
}

impl Default for TicketRules {
    fn default() -> TicketRules {
        TicketRules {
            approved_states: approved_states(),
        }
    }
}

/// The built-in checks a gate may require.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    CommitsHaveTickets,
    TicketsApproved,
    PrsReviewed,
    TestsPass,
    ScansClean,
    SbomPresent,
    ProvenancePresent,
    DocumentsLinked,
    Approvals,
    SeparationOfDuties,
    NoBlockingException,
    BranchProtection,
}

impl Check {
    pub const ALL: [Check; 12] = [
        Check::CommitsHaveTickets,
        Check::TicketsApproved,
        Check::PrsReviewed,
        Check::TestsPass,
        Check::ScansClean,
        Check::SbomPresent,
        Check::ProvenancePresent,
        Check::DocumentsLinked,
        Check::Approvals,
        Check::SeparationOfDuties,
        Check::NoBlockingException,
        Check::BranchProtection,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Check::CommitsHaveTickets => "commits_have_tickets",
            Check::TicketsApproved => "tickets_approved",
            Check::PrsReviewed => "prs_reviewed",
            Check::TestsPass => "tests_pass",
            Check::ScansClean => "scans_clean",
            Check::SbomPresent => "sbom_present",
            Check::ProvenancePresent => "provenance_present",
            Check::DocumentsLinked => "documents_linked",
            Check::Approvals => "approvals",
            Check::SeparationOfDuties => "separation_of_duties",
            Check::NoBlockingException => "no_blocking_exception",
            Check::BranchProtection => "branch_protection",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Check::CommitsHaveTickets => "Every included commit links to a ticket",
            Check::TicketsApproved => "Every ticket reached an approved state before the deploy",
            Check::PrsReviewed => "Every pull request approved by a non-author on its final commit",
            Check::TestsPass => "Test reports present, with no failures",
            Check::ScansClean => "Scans present, with no blocking findings",
            Check::SbomPresent => "SBOM present",
            Check::ProvenancePresent => "Provenance present for every artifact",
            Check::DocumentsLinked => "Required documents linked",
            Check::Approvals => "Approval policy satisfied",
            Check::SeparationOfDuties => "Separation of duties",
            Check::NoBlockingException => "No overdue or blocking exception",
            Check::BranchProtection => "Branch protection on for the whole period",
        }
    }
}

/// Finding severities, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One environment's gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub checks: Vec<Check>,
    /// Document types that must be linked (`runbook`, `slo`, `test_plan`, ...).
    #[serde(default)]
    pub required_documents: Vec<String>,
    /// Findings at or above this severity block, unless allow-listed.
    #[serde(default = "high")]
    pub block_severity: Severity,
    #[serde(default)]
    pub allow_findings: Vec<AllowFinding>,
    /// Custom rules; each module's `deny` set (messages) denies the gate.
    #[serde(default)]
    pub rego: Vec<RegoModule>,
}

fn high() -> Severity {
    Severity::High
}

/// A finding accepted until a date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowFinding {
    pub rule: String,
    /// RFC 3339; the allowance ends at this instant.
    pub until: String,
    pub reason: String,
}

/// A Rego module with its source, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegoModule {
    pub name: String,
    pub source: String,
}

/// The Rego rule every custom module is asked for: a set of messages, each a reason to deny.
pub const REGO_QUERY: &str = "data.trailmark.gate.deny";

impl Policy {
    /// Reads a TOML policy file; Rego modules named by path (relative to the file) are read
    /// and embedded.
    pub fn load(path: &Path) -> Result<(Policy, Value), PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Policy::from_toml(&text, &|name| {
            let p = base.join(name);
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
        })
    }

    /// Parses TOML; `read` resolves Rego module paths to their source.
    pub fn from_toml(
        text: &str,
        read: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<(Policy, Value), PolicyError> {
        let toml: toml::Value =
            toml::from_str(text).map_err(|e| PolicyError::Invalid(format!("TOML: {e}")))?;
        let mut json = toml_to_json(&toml, &mut String::new())?;
        if let Some(gates) = json.get_mut("gates").and_then(Value::as_object_mut) {
            for (env, gate) in gates.iter_mut() {
                let Some(mods) = gate.get_mut("rego").and_then(Value::as_array_mut) else {
                    continue;
                };
                for m in mods.iter_mut() {
                    if let Value::String(name) = m {
                        let source = read(name)
                            .map_err(|e| PolicyError::Invalid(format!("gates.{env}.rego: {e}")))?;
                        *m = serde_json::json!({"name": name, "source": source});
                    }
                }
            }
        }
        let policy = Policy::from_json(&json)?;
        Ok((policy, json))
    }

    /// Parses the stored JSON form and checks everything a parser cannot.
    pub fn from_json(json: &Value) -> Result<Policy, PolicyError> {
        let policy: Policy = serde_json::from_value(json.clone())
            .map_err(|e| PolicyError::Invalid(e.to_string()))?;
        policy.check()?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), PolicyError> {
        let bad = |m: String| Err(PolicyError::Invalid(m));
        if self.name.trim().is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return bad(format!(
                "name {:?} must be non-empty [A-Za-z0-9._-]",
                self.name
            ));
        }
        for (target, rule) in &self.approvals {
            let at = format!("approvals.{}", target.subject_type());
            if rule.min == 0 {
                return bad(format!("{at}.min must be at least 1"));
            }
            if rule.roles.is_empty() && rule.approvers.is_empty() {
                return bad(format!(
                    "{at}: nobody could approve (set roles, approvers or both)"
                ));
            }
            for role in rule
                .roles
                .iter()
                .chain(rule.sla.as_ref().map(|s| &s.escalate_to))
            {
                if role.parse::<trailmark_access::Role>().is_err() {
                    return bad(format!(
                        "{at}: unknown role {role:?} (admin, release-manager, approver, auditor, developer, ingest)"
                    ));
                }
            }
            if let Some(sla) = &rule.sla
                && sla.warn_after.seconds() > sla.due_after.seconds()
            {
                return bad(format!("{at}.sla: warn_after must not be after due_after"));
            }
        }
        for (env, gate) in &self.gates {
            let at = format!("gates.{env}");
            if gate.checks.is_empty() && gate.rego.is_empty() {
                return bad(format!(
                    "{at}: no checks and no rules: a gate must check something"
                ));
            }
            if gate.checks.contains(&Check::DocumentsLinked) && gate.required_documents.is_empty() {
                return bad(format!("{at}: documents_linked needs required_documents"));
            }
            for a in &gate.allow_findings {
                if trailmark_model::Timestamp::parse_rfc3339(&a.until).is_none() {
                    return bad(format!(
                        "{at}.allow_findings: until {:?} is not an RFC 3339 instant",
                        a.until
                    ));
                }
            }
            for m in &gate.rego {
                crate::rego::compile(m)
                    .map_err(|e| PolicyError::Invalid(format!("{at}.rego {}: {e}", m.name)))?;
            }
        }
        Ok(())
    }

    /// The gate for an environment: its own, else `"*"`.
    pub fn gate(&self, env: &str) -> Option<&Gate> {
        self.gates.get(env).or_else(|| self.gates.get("*"))
    }
}

/// SHA-256 of the RFC 8785 form of a policy's JSON: what a gate decision cites.
pub fn digest(json: &Value) -> Digest {
    Digest::of(&canonical_bytes(json))
}

fn toml_to_json(v: &toml::Value, path: &mut String) -> Result<Value, PolicyError> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Float(_) => {
            return Err(PolicyError::Invalid(format!(
                "{path}: numbers must be whole (no floats in signed data)"
            )));
        }
        toml::Value::Datetime(_) => {
            return Err(PolicyError::Invalid(format!(
                "{path}: write instants as quoted RFC 3339 strings"
            )));
        }
        toml::Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, x) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(toml_to_json(x, path)?);
                path.truncate(len);
            }
            Value::Array(out)
        }
        toml::Value::Table(t) => {
            let mut out = serde_json::Map::new();
            for (k, x) in t {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                out.insert(k.clone(), toml_to_json(x, path)?);
                path.truncate(len);
            }
            Value::Object(out)
        }
    })
}
