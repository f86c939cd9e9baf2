//! The computed metrics, as the UI and the JSON API show them. Every per-bucket vector is aligned
//! with [`Metrics::buckets`]. A metric that cannot be computed says why in `unavailable`
//! instead of showing a zero.

use serde::Serialize;

use crate::evidence::Skipped;
use crate::query::BucketSpan;
use crate::stats::{DurationStat, Ratio, Seconds};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// The environment names asked for; empty means every environment.
    pub environments: Vec<String>,
    pub from: String,
    pub to: String,
    /// `day`, `iso-week` or `<n>d`.
    pub bucket: String,
    pub buckets: Vec<BucketSpan>,
    pub deployment_frequency: DeploymentFrequency,
    pub lead_time: LeadTime,
    pub change_failure_rate: ChangeFailureRate,
    pub time_to_restore: TimeToRestore,
    pub approvals: Approvals,
    pub change_requests: ChangeRequests,
    pub ai_intervention: AiIntervention,
    /// Records that could not be used and samples left out, with the reason (sorted by metric,
    /// then reason).
    pub skipped: Vec<Skipped>,
}

/// Successful deployments to the environments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeploymentFrequency {
    pub total: u64,
    pub per_bucket: Vec<u64>,
    pub unavailable: Option<String>,
}

/// Commit time → successful deploy time, one sample per deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadTime {
    #[serde(flatten)]
    pub stat: DurationStat,
    /// Samples whose commit time came from a push (no commit record for the SHA): the push is
    /// later than the commit, so these understate the lead time.
    pub from_push_time: u64,
    pub per_bucket: Vec<BucketDuration>,
    pub unavailable: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BucketDuration {
    pub samples: u64,
    pub median: Option<Seconds>,
}

/// Deployment attempts that failed or were followed by an incident or a rollback, over all
/// deployment attempts (successful or failed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeFailureRate {
    pub rate: Option<Ratio>,
    /// Attempts (successful and failed deployments) in the window.
    pub deployments: u64,
    pub failures: u64,
    /// Why they count as failures; a deployment may have several causes.
    pub causes: FailureCauses,
    pub per_bucket: Vec<BucketRate>,
    pub unavailable: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailureCauses {
    /// The deployment itself ended failed (or a failure status followed its success).
    pub failed_deployment: u64,
    pub incident: u64,
    pub rollback: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BucketRate {
    pub deployments: u64,
    pub failures: u64,
    pub rate: Option<Ratio>,
}

/// Incident detected → service restored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimeToRestore {
    #[serde(flatten)]
    pub stat: DurationStat,
    /// Incidents detected in the window with no restoring event in the records supplied.
    pub open: u64,
    pub per_bucket: Vec<BucketDuration>,
    pub unavailable: Option<String>,
}

/// Approval decisions and how long they took from the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approvals {
    pub decisions: u64,
    pub approved: u64,
    pub rejected: u64,
    /// Over decisions whose request is in the records.
    pub time_to_decision: DurationStat,
    /// Why there is no time to decision although there may be decisions.
    pub time_to_decision_unavailable: Option<String>,
    /// Median time to decision per bucket (`samples`: decisions with a known request).
    pub per_bucket: Vec<BucketDuration>,
    /// Most decisions first (then by name).
    pub approvers: Vec<Approver>,
    pub unavailable: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approver {
    /// The person (through [`crate::Query::with_people`]) or the raw identity.
    pub approver: String,
    pub decisions: u64,
    pub approved: u64,
    pub rejected: u64,
    /// Of all decisions in the window.
    pub share: Option<Ratio>,
    pub median_time_to_decision: Option<Seconds>,
}

/// Tickets and change requests (PRs, MRs) opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeRequests {
    pub total: u64,
    pub tickets: u64,
    pub pull_requests: u64,
    pub per_bucket: Vec<BucketChangeRequests>,
    pub unavailable: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BucketChangeRequests {
    pub tickets: u64,
    pub pull_requests: u64,
}

/// AI-generated changes whose human review overrode them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AiIntervention {
    pub rate: Option<Ratio>,
    pub ai_changes: u64,
    pub overridden: u64,
    /// Changes per override reason; a change may have several.
    pub reasons: OverrideReasons,
    pub per_bucket: Vec<BucketAi>,
    pub unavailable: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OverrideReasons {
    pub changes_requested: u64,
    pub closed_unmerged: u64,
    pub human_follow_up: u64,
    pub reverted: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BucketAi {
    pub ai_changes: u64,
    pub overridden: u64,
    pub rate: Option<Ratio>,
}
