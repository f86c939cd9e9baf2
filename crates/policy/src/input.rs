//! The gate's input document: everything a decision depends on, captured at the moment of
//! evaluation (including the approval state). Its digest is recorded with every decision and
//! its bytes are kept beside the log, so the decision can be recomputed offline from it and
//! the policy version alone. Custom Rego rules see exactly this document as `input`.
//!
//! People are person ids after identity resolution (mapping file, noreply addresses), so
//! `commits[].authors` and `approval.decisions[].person` compare across tools.

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "trailmark.gate-input/v1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateInput {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub release: ReleaseInfo,
    pub environment: String,
    /// When the evaluation happened (RFC 3339, the log's clock).
    pub evaluated_at: String,
    /// The person deploying, when the caller said.
    pub deployer: Option<String>,
    pub commits: Vec<CommitInfo>,
    pub tickets: Vec<TicketInfo>,
    pub prs: Vec<PrInfo>,
    pub tests: Vec<TestInfo>,
    pub scans: Vec<ScanInfo>,
    pub sboms: Vec<u64>,
    pub artifacts: Vec<ArtifactInfo>,
    pub documents: Vec<DocumentInfo>,
    pub approval: ApprovalState,
    pub exceptions: Vec<ExceptionInfo>,
    pub branch_protection: Vec<ProtectionEvent>,
    /// Repositories of the included commits (branch protection is checked per repository).
    pub repos: Vec<String>,
    /// The log index of the identity map version people were resolved with (an
    /// `identity.map` record), when the map in use is the recorded one in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_map: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub project: String,
    pub environments: Vec<String>,
    /// The person who created (requested) the release.
    pub requested_by: Option<String>,
    pub created_at: String,
    /// Log index of the `release.created` record.
    pub record: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitInfo {
    pub sha: String,
    pub authors: Vec<String>,
    pub committers: Vec<String>,
    pub tickets: Vec<String>,
    pub prs: Vec<String>,
    /// When the commit was linked to the release, and whether after the first gate evaluation.
    pub linked_at: String,
    pub late: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketInfo {
    pub key: String,
    /// Status transitions in log order: `to` state and when the log recorded it.
    pub transitions: Vec<Transition>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub to: String,
    pub recorded_at: String,
    pub by: Option<String>,
    pub record: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrInfo {
    pub id: String,
    pub author: Option<String>,
    /// The last head commit the log saw for this pull request.
    pub head: Option<String>,
    pub reviews: Vec<Review>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub reviewer: Option<String>,
    /// `approved`, `changes_requested`, `commented`, `dismissed`.
    pub state: String,
    pub commit: Option<String>,
    pub record: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestInfo {
    pub record: u64,
    pub subject: String,
    pub name: Option<String>,
    pub tests: i64,
    pub passed: i64,
    pub failures: i64,
    pub errors: i64,
    pub skipped: i64,
    pub flaky: i64,
    /// Cases that could not run (skipped with an error-like reason is still "skipped";
    /// "blocked" counts reports' declared-but-unlisted cases).
    pub blocked: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanInfo {
    pub record: u64,
    pub subject: String,
    pub tool: Option<String>,
    pub findings: Vec<Finding>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub rule: Option<String>,
    pub severity: crate::policy::Severity,
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactInfo {
    pub digest: String,
    /// Provenance attestations naming this artifact (record indices).
    pub provenance: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentInfo {
    /// `runbook`, `slo`, `test_plan`, `prd`, `spec`, ...
    #[serde(rename = "type")]
    pub doc_type: String,
    pub id: String,
    pub version: Option<String>,
    pub linked_at: String,
    pub late: bool,
}

/// The release's approval state at evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalState {
    /// The digest of the release's content now; an approval counts only for this digest.
    pub evidence_digest: String,
    /// When approval was requested (the release's creation).
    pub requested_at: String,
    pub decisions: Vec<ApprovalDecision>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecision {
    pub record: u64,
    pub person: String,
    /// `approve` or `reject`.
    pub decision: String,
    pub evidence_digest: String,
    pub recorded_at: String,
    /// The approver's roles on the release's scope when they decided.
    pub roles: Vec<String>,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionInfo {
    pub id: String,
    pub record: u64,
    pub requested_by: Option<String>,
    pub reason: String,
    pub environments: Vec<String>,
    /// The release it covers; `None` covers every release of the project.
    pub release: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub retro_due: String,
    /// Approvals recorded on the exception (its retrospective approval).
    pub approvals: Vec<ApprovalDecision>,
    pub closed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectionEvent {
    pub repo: String,
    /// `created`, `edited` or `deleted`.
    pub action: String,
    pub recorded_at: String,
    pub record: u64,
}
