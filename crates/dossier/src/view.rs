//! What a dossier says about a release: the auditor's five questions, the release story, the
//! traceability matrix, the control mapping and the gaps. A pure function of the records (and
//! blobs) in the dossier, so a verifier rebuilds it and compares.

use serde::{Deserialize, Serialize};

/// Which view computation a dossier file's `format` names. The verifier recomputes a dossier's
/// view with the computation it was exported with, so an honest dossier keeps verifying after
/// the computation changes: a change to what the view says is a new version, and the versions
/// before it stay computable here (`tests/data` pins a dossier of each version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ViewVersion {
    /// `trailmark.dossier/v1`.
    V1,
    /// `trailmark.dossier/v2`: the gaps also name a person who set the identity map in force
    /// and took part in the release (owned or approved it).
    V2,
    /// `trailmark.dossier/v3`: the view as v2 computes it. The file keeps each distinct proof
    /// hash once, in `proof_hashes`, and each record's inclusion proof lists positions in that
    /// table (`proof_refs`) instead of repeating the hashes: neighbouring records share most of
    /// their audit paths, which were ~40 % of a large v2 file.
    V3,
}

impl Default for ViewVersion {
    fn default() -> ViewVersion {
        ViewVersion::LATEST
    }
}

impl ViewVersion {
    /// What a new dossier is exported as.
    pub const LATEST: ViewVersion = ViewVersion::V3;
    /// Every version this build computes and verifies, oldest first.
    pub const ALL: [ViewVersion; 3] = [ViewVersion::V1, ViewVersion::V2, ViewVersion::V3];

    /// The dossier file's `format` for this version.
    pub fn format(self) -> &'static str {
        match self {
            ViewVersion::V1 => "trailmark.dossier/v1",
            ViewVersion::V2 => "trailmark.dossier/v2",
            ViewVersion::V3 => "trailmark.dossier/v3",
        }
    }

    /// Whether the file's inclusion proofs are positions in its table of proof hashes (v3 on)
    /// rather than base64 hashes per record.
    pub fn shares_proof_hashes(self) -> bool {
        self >= ViewVersion::V3
    }

    /// The version a `format` names, if this build knows it.
    pub fn of_format(format: &str) -> Option<ViewVersion> {
        ViewVersion::ALL.into_iter().find(|v| v.format() == format)
    }
}

/// The derived view of one release. (`Default` is an empty view, a placeholder while a
/// verifier parses the file's own.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct View {
    pub release: trailmark_policy::input::ReleaseInfo,
    /// The instant the view describes (RFC 3339).
    pub as_of: String,
    /// The environment whose gate the view evaluates (the release's first target).
    pub environment: String,
    /// The release's evidence digest at `as_of` (what approvals are of).
    pub evidence_digest: String,
    pub questions: Vec<Question>,
    pub story: Story,
    pub matrix: Vec<MatrixRow>,
    pub controls: Vec<Control>,
    /// Negative evidence, stated explicitly ("commit abc123 has no linked ticket").
    pub gaps: Vec<String>,
    pub gate_decisions: Vec<GateLine>,
    pub deployments: Vec<Deployment>,
}

/// One of the five auditor questions, answered with evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// `change_authorization`, `access_governance`, `test_and_validation`,
    /// `release_certification`, `monitoring_and_response`.
    pub id: String,
    pub title: String,
    /// `yes`, `partial` or `no`.
    pub answer: String,
    pub summary: Vec<String>,
    /// Log indices of the records that answer it.
    pub evidence: Vec<u64>,
}

/// The release story, in the order an auditor asks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Story {
    /// What was requested: the tickets.
    pub requested: Vec<String>,
    /// Who owned it: the person who created the release.
    pub owner: Option<String>,
    /// What changed: commits (short) with their pull requests.
    pub changed: Vec<String>,
    /// Which tests validated it.
    pub validated: Vec<String>,
    /// Which approvals were completed, and why (comments).
    pub approvals: Vec<ApprovalLine>,
    /// The approval state captured by the last allowing gate decision (at deploy time).
    pub approval_at_deploy: Option<trailmark_policy::eval::Tally>,
    /// Exceptions and risk acceptances open for the release.
    pub exceptions: Vec<String>,
    /// Whether, when and for which environment the release was certified.
    pub certified: Vec<String>,
    /// What happened after deploy: deployments, rollbacks, incidents.
    pub after_deploy: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalLine {
    pub record: u64,
    pub person: String,
    pub decision: String,
    pub recorded_at: String,
    pub comment: Option<String>,
    /// Whether it approved the content as it is at `as_of`.
    pub current: bool,
}

/// requirement/ticket → commits → reviews → builds → tests → scans → approvals → deployments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixRow {
    /// The ticket, or `(no ticket)` for commits linked to none.
    pub ticket: String,
    pub ticket_approved_at: Option<String>,
    pub commits: Vec<MatrixCommit>,
    pub approvals: Vec<String>,
    pub deployments: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixCommit {
    pub sha: String,
    pub prs: Vec<String>,
    /// `approved by hubot on ec26c3e5`, ...
    pub reviews: Vec<String>,
    /// Build runs (workflow runs, pipelines, jobs) and their outcome.
    pub builds: Vec<String>,
    pub tests: TestSummary,
    /// Scan findings that are not suppressed: `high TEST1001 (Sarif.UnitTests)`.
    pub findings: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSummary {
    pub reports: u64,
    pub tests: i64,
    pub passed: i64,
    pub failures: i64,
    pub errors: i64,
    pub skipped: i64,
    pub flaky: i64,
    pub blocked: i64,
    /// Passed of executed (tests − skipped − blocked), in per mille (no floats in signed data).
    pub pass_rate_permille: Option<i64>,
    /// Test cases that failed in more than one report.
    pub repeated_failures: Vec<String>,
    /// Failed test cases whose report links to a follow-up ticket.
    pub failures_with_follow_up: Vec<String>,
}

/// A control and how the evidence meets it. Ids are the frameworks'; titles are short
/// paraphrases of our own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// `SOC 2`, `SOX ITGC`, `PCI DSS`, `ISO 27001`, `NIST 800-53`.
    pub framework: String,
    pub id: String,
    pub title: String,
    /// `met`, `partial` or `gap`.
    pub status: String,
    pub evidence: Vec<u64>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateLine {
    pub record: u64,
    pub environment: String,
    /// `allow`, `deny` or `allow_with_exception`.
    pub decision: String,
    pub recorded_at: String,
    pub input_digest: String,
    pub policy_digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub record: u64,
    pub environment: String,
    pub recorded_at: String,
    pub commit: Option<String>,
    /// `success`, `failure`, `created`... as the tool said.
    pub status: String,
    /// Whether an allowing gate decision for this environment was recorded before it.
    pub gated: bool,
}

/// What an export says about where its evidence comes from (the dossier's log anchor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportMeta {
    /// The log's origin (first line of its checkpoints).
    pub origin: String,
    /// Size and root (base64) of the signed checkpoint every proof in the dossier leads to.
    pub checkpoint_size: u64,
    pub checkpoint_root: String,
    /// How many records the dossier carries (each with an inclusion proof).
    pub records: u64,
    /// When the dossier was generated (RFC 3339).
    pub generated_at: String,
    /// The certification (DSSE-enveloped SLSA VSA), when the release has one: its record.
    pub certification_record: Option<u64>,
    /// The recorded version of the identity map people were resolved with, as
    /// "record N, set by WHO at TIME"; `None` when the dossier names none.
    pub identity_map: Option<String>,
}
