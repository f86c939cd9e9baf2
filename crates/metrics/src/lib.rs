//! Delivery metrics from evidence records, and deterministic SVG charts of them.
//!
//! Pure: no I/O, clock, randomness, async or store. [`compute`] reads a slice of records (the
//! caller queries them; give it records from before the window too, so commits, requests and
//! earlier deployments are known, and after it, so late failure signals are seen) and a
//! [`Query`]; the result is a [`Metrics`] value that serializes the same way every time.
//! Nothing is ever guessed into a zero: a metric that cannot be computed says why
//! (`unavailable`), and records or samples that had to be left out are counted with their
//! reason in [`Metrics::skipped`].
//!
//! # Time
//! A record's time is its `occurred_at` (the tool's time) when present, else `recorded_at`.
//! The window is `[from, to)`; days and ISO weeks are UTC.
//!
//! # Deployments (`deployment_frequency`)
//! Kinds (as the dossier's audit): `github.deployment_status` (payload `state`),
//! `gitlab.deployment` (payload `status`), `cdevents.service_deployed` (always a success).
//! Environment: the `environment` subject, else payload `environment`
//! (`deployment.environment`, CDEvents `content.environment.id`), matched case-insensitively.
//! Outcome: `success` is a success; `failure`/`error` (GitHub) and `failed` (GitLab) a failure;
//! every other state (queued, pending, in_progress, running, inactive, canceled) is not an
//! outcome and is ignored. A deployment is the `deployment` subject (GitHub and GitLab
//! deployment ids; CDEvents name a service, so each CDEvents record is one deployment): its
//! statuses are one deployment, successful from its first `success`, failed if only failures
//! were reported. Frequency counts successful deployments per bucket.
//!
//! # Lead time for changes (`lead_time`)
//! For each successful deployment: the deployed commit is the `deploys` → `commit` link (else
//! payload `deployment.sha` / `sha`), or for an artifact deployment (`deploys` → `artifact`) the
//! commit the artifact was built from (`built_from` → `commit` on a record about the artifact,
//! or a record that `builds` → commit and `produces` → the artifact). Its time is the earliest
//! `occurred_at` of `git.commit`, `github.commit`, `gitlab.commit` records about that commit
//! (the committer's or the webhook's commit timestamp); failing those, the earliest time of a
//! `github.push` / `gitlab.push` whose subject is the commit or that `contains` it (counted in
//! `from_push_time`, as it understates the lead time). Median, p90 (nearest rank) and mean.
//!
//! # Change failure rate (`change_failure_rate`)
//! Over deployment attempts in the window (successful and failed). An attempt failed if it
//! ended failed, a failure status followed its success, or a failure signal is blamed on it:
//! `cdevents.incident_detected` / `incident_reported` (the earlier per `incident` subject),
//! `rollback.decided` (per `rollback` subject, unless its latest status is `cancelled`), or
//! `cdevents.service_rolledback`. A signal is blamed on the latest successful deployment at or
//! before it that it names — a link to the `deployment` (rollbacks: `of_deployment` or payload
//! `deployment`), then a linked `artifact` (incidents: `affects`) — else the latest successful
//! deployment to its environment (incidents: `in` → environment or `content.environment.id`;
//! rollbacks: `in_environment` or payload `environment`). So a deployment is "followed by" a
//! failure when the failure strikes before the next successful deployment there.
//!
//! # Time to restore (`time_to_restore`)
//! For each incident detected in the window (in the environments, directly or through the
//! deployment it is blamed on): until the earliest of its `cdevents.incident_resolved`, the
//! next successful deployment to its environment, an executed `rollback.decided` (status
//! `executed`) or a `cdevents.service_rolledback` there. Incidents with none are `open`.
//!
//! # Approvals (`approvals`)
//! Decisions: `approval.decided` (payload `decision` `approve`/`reject`, approver = `actor`,
//! about its first non-`project` subject), `cdevents.approval_approved` / `_rejected`, and
//! `github.deployment_review` with action `approved`/`rejected` (approver = payload
//! `approver`). Requests, matched by the same subject: `release.created` (a release's approval
//! is requested when it is created, as the policy's SLA counts it), `exception.raised`,
//! `policy.version`, `cdevents.approval_requested`, `github.deployment_review` with action
//! `requested` — the latest request at or before the decision. Decisions about something whose
//! request (or the decision itself) names environments count only if one is in the filter.
//! Approvers are mapped to people with [`Query::with_people`]; the bottleneck table gives each
//! approver's decisions, share of all decisions and median time to decide, largest share first.
//!
//! # Change requests (`change_requests`)
//! `jira.issue_created` (tickets), `github.pull_request` with action `opened`,
//! `gitlab.merge_request` with action `open` and `cdevents.change_created` (pull requests),
//! counted once per subject when first opened. Not filtered by environment.
//!
//! # AI intervention (`ai_intervention`)
//! The convention for AI output. A change is a pull/merge request, or a commit that is not the
//! head or merge commit of a known one. It is AI-generated when any of its records
//! (`github.pull_request`, `gitlab.merge_request`, `git.commit`, `github.commit`,
//! `gitlab.commit`) has payload `ai_generated: true` or `generated_by: {"type": "ai", ...}`,
//! carries the label [`changes::AI_LABEL`] (`ai-generated`), an [`changes::AI_ANNOTATION_KIND`]
//! (`ai.generated`) record names its `pr`/`commit` subject, or it was opened/authored by an
//! identity given to [`Query::with_ai_actors`]; a PR whose head or merge commit is
//! AI-generated is too. It is counted in the bucket of its first record (PR) or commit time.
//! A human is any actor not among the AI actors (records without an actor say nothing). Human
//! review overrode it when:
//! - `changes_requested`: a human's `github.pull_request_review` with state
//!   `changes_requested`;
//! - `closed_unmerged`: a human closed it without merging;
//! - `human_follow_up`: before the merge, a human other than its author pushed commits to it
//!   (`github.pull_request` `synchronize`, `gitlab.merge_request` `update` with `oldrev`);
//! - `reverted`: a human's commit says `This reverts commit <sha>` of its commit (a PR's head
//!   or merge commit).
//!
//! Rate = overridden / AI-generated changes.
#![forbid(unsafe_code)]

mod approvals;
pub mod changes;
mod dora;
mod evidence;
mod output;
mod query;
mod stats;
pub mod svg;

use std::borrow::Cow;

use serde_json::Value;
use trailmark_model::Record;

pub use evidence::{Blobs, Skipped};
pub use output::{
    AiIntervention, Approvals, Approver, BucketAi, BucketChangeRequests, BucketDuration,
    BucketRate, ChangeFailureRate, ChangeRequests, DeploymentFrequency, FailureCauses, LeadTime,
    Metrics, OverrideReasons, TimeToRestore,
};
pub use query::{Bucket, BucketSpan, EnvFilter, MAX_BUCKETS, Query, QueryError};
pub use stats::{DurationStat, Ratio, Seconds};

/// Computes every metric. Payloads stored beside the log (over 16 KiB) are not read: records
/// that need one are reported in `skipped`; use [`compute_with_blobs`] to supply them.
pub fn compute<'r, I>(records: I, query: &Query) -> Metrics
where
    I: IntoIterator<Item = &'r Record>,
{
    run(records, query, None)
}

/// As [`compute`], reading large payloads through `blobs` (digest → the payload's JSON, e.g.
/// a closure over the store's `blob`). It is only asked for records of the kinds the metrics
/// read.
pub fn compute_with_blobs<'r, I>(records: I, query: &Query, blobs: &dyn Blobs) -> Metrics
where
    I: IntoIterator<Item = &'r Record>,
{
    run(records, query, Some(blobs))
}

/// What every metric shares: the query, the blob source and the account of what was skipped.
pub(crate) struct Ctx<'a> {
    pub(crate) query: &'a Query,
    blobs: Option<&'a dyn Blobs>,
    pub(crate) skips: evidence::Skips,
}

impl Ctx<'_> {
    /// The payload of a record the metric needs, or `None` (and the record reported).
    pub(crate) fn payload<'r>(
        &mut self,
        metric: &'static str,
        r: &'r Record,
    ) -> Option<Cow<'r, Value>> {
        let p = evidence::payload(r, self.blobs);
        if p.is_none() {
            self.skips.add(
                metric,
                format!(
                    "{}: payload stored beside the log (over 16 KiB) and not supplied",
                    r.kind
                ),
                r,
            );
        }
        p
    }
}

fn run<'r, I>(records: I, query: &Query, blobs: Option<&dyn Blobs>) -> Metrics
where
    I: IntoIterator<Item = &'r Record>,
{
    let mut records: Vec<&Record> = records.into_iter().collect();
    // Time order, ties by log order: the output does not depend on the order records came in.
    records.sort_by_key(|r| (evidence::event_time(r), r.index));
    records.dedup_by_key(|r| r.index);
    let mut cx = Ctx {
        query,
        blobs,
        skips: evidence::Skips::default(),
    };
    let dora = dora::compute(&records, &mut cx);
    let approvals = approvals::compute(&records, &mut cx);
    let change_requests = changes::change_requests(&records, &mut cx);
    let ai_intervention = changes::ai_intervention(&records, &mut cx);
    Metrics {
        environments: query.envs.as_slice().to_vec(),
        from: query.from.to_string(),
        to: query.to.to_string(),
        bucket: query.bucket.to_string(),
        buckets: query.buckets.clone(),
        deployment_frequency: dora.deployment_frequency,
        lead_time: dora.lead_time,
        change_failure_rate: dora.change_failure_rate,
        time_to_restore: dora.time_to_restore,
        approvals,
        change_requests,
        ai_intervention,
        skipped: cx.skips.into_vec(),
    }
}
