//! The four DORA metrics. Kinds and fields used are listed in the crate documentation.

use std::collections::BTreeMap;

use trailmark_model::{Record, Timestamp};

use crate::Ctx;
use crate::evidence::{event_time, full_sha, links, subject, text};
use crate::output::{
    BucketDuration, BucketRate, ChangeFailureRate, DeploymentFrequency, FailureCauses, LeadTime,
    TimeToRestore,
};
use crate::stats::{DurationStat, Ratio, Seconds, median};

const M_DEPLOY: &str = "deployments";
const M_LEAD: &str = "lead_time";
const M_CFR: &str = "change_failure_rate";
const M_TTR: &str = "time_to_restore";

/// Deployment records, as the dossier's audit recognises them.
pub(crate) const DEPLOY_KINDS: &[&str] = &[
    "github.deployment_status",
    "gitlab.deployment",
    "cdevents.service_deployed",
];
const COMMIT_KINDS: &[&str] = &["git.commit", "github.commit", "gitlab.commit"];
const PUSH_KINDS: &[&str] = &["github.push", "gitlab.push"];
const INCIDENT_KINDS: &[&str] = &["cdevents.incident_detected", "cdevents.incident_reported"];
const INCIDENT_RESOLVED: &str = "cdevents.incident_resolved";
const ROLLBACK_DECIDED: &str = "rollback.decided";
const SERVICE_ROLLEDBACK: &str = "cdevents.service_rolledback";

/// One deployment (a tool's deployment id, or one record when the tool gives none) to an
/// environment the query covers.
#[derive(Debug)]
struct Attempt<'r> {
    env: String,
    /// The first success, or the first failure while no success is known.
    at: Timestamp,
    ok: bool,
    commit: Option<String>,
    artifact: Option<String>,
    record: &'r Record,
    /// Failure statuses reported after the success (a deployment that broke after going
    /// live).
    failed_after: bool,
}

/// Something that says a deployment went wrong.
#[derive(Debug)]
struct Signal<'r> {
    at: Timestamp,
    env: Option<String>,
    deployments: Vec<String>,
    artifacts: Vec<String>,
    record: &'r Record,
}

#[derive(Debug)]
struct Rollback<'r> {
    signal: Signal<'r>,
    cancelled: bool,
    executed_at: Option<Timestamp>,
}

pub(crate) struct Dora {
    pub deployment_frequency: DeploymentFrequency,
    pub lead_time: LeadTime,
    pub change_failure_rate: ChangeFailureRate,
    pub time_to_restore: TimeToRestore,
}

fn environment(r: &Record, p: &serde_json::Value, ptrs: &[&str]) -> Option<String> {
    subject(r, "environment")
        .or_else(|| ptrs.iter().find_map(|ptr| text(p, ptr)))
        .map(str::to_owned)
}

pub(crate) fn compute(records: &[&Record], cx: &mut Ctx<'_>) -> Dora {
    let q = cx.query;
    // ---- deployments ----
    let mut attempts: BTreeMap<String, Attempt<'_>> = BTreeMap::new();
    for &r in records
        .iter()
        .filter(|r| DEPLOY_KINDS.contains(&r.kind.as_str()))
    {
        let Some(p) = cx.payload(M_DEPLOY, r) else {
            continue;
        };
        let kind = r.kind.as_str();
        let (env, state) = match kind {
            "github.deployment_status" => (
                environment(r, &p, &["/environment", "/deployment/environment"]),
                text(&p, "/state"),
            ),
            "gitlab.deployment" => (environment(r, &p, &["/environment"]), text(&p, "/status")),
            // A CDEvents `service.deployed` is only sent for a deployment that happened.
            _ => (
                environment(r, &p, &["/content/environment/id"]),
                Some("success"),
            ),
        };
        let Some(env) = env else {
            cx.skips
                .add(M_DEPLOY, format!("{kind} names no environment"), r);
            continue;
        };
        if !q.envs.matches(&env) {
            continue;
        }
        let Some(state) = state else {
            cx.skips
                .add(M_DEPLOY, format!("{kind} has no deployment state"), r);
            continue;
        };
        let ok = match state.to_ascii_lowercase().as_str() {
            "success" => true,
            "failure" | "error" | "failed" => false,
            // queued, pending, in_progress, running, inactive (superseded), canceled: not an
            // outcome.
            _ => continue,
        };
        let commit = links(r, Some("deploys"), "commit")
            .next()
            .map(str::to_owned)
            .or_else(|| {
                text(&p, "/deployment/sha")
                    .or_else(|| text(&p, "/sha"))
                    .and_then(full_sha)
            });
        let artifact = links(r, Some("deploys"), "artifact")
            .next()
            .map(str::to_owned);
        // A CDEvents deployment subject names the service, not one deployment of it: each
        // event is its own deployment.
        let key = match subject(r, "deployment") {
            Some(d) if kind != "cdevents.service_deployed" => d.to_owned(),
            _ => format!("record:{}", r.index),
        };
        let at = event_time(r);
        match attempts.get_mut(&key) {
            None => {
                attempts.insert(
                    key,
                    Attempt {
                        env,
                        at,
                        ok,
                        commit,
                        artifact,
                        record: r,
                        failed_after: false,
                    },
                );
            }
            Some(a) if !a.ok && ok => {
                // A retried deployment that went through: it is a success, from now.
                a.ok = true;
                a.at = at;
                a.record = r;
                a.commit = a.commit.take().or(commit);
            }
            Some(a) if a.ok && !ok => a.failed_after = true,
            Some(_) => {}
        }
    }
    let mut attempts: Vec<Attempt<'_>> = attempts.into_values().collect();
    attempts.sort_by_key(|a| (a.at, a.record.index));
    let nb = q.buckets.len();

    let mut per_bucket = vec![0u64; nb];
    for a in attempts.iter().filter(|a| a.ok) {
        if let Some(b) = q.bucket_of(a.at) {
            per_bucket[b] += 1;
        }
    }
    let total: u64 = per_bucket.iter().sum();
    let no_deploys = format!("no successful deployments to {} in the window", q.envs);
    let deployment_frequency = DeploymentFrequency {
        total,
        per_bucket,
        unavailable: (total == 0).then(|| no_deploys.clone()),
    };

    // ---- lead time ----
    let mut commit_at: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut push_at: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut artifact_commit: BTreeMap<String, String> = BTreeMap::new();
    for &r in records {
        let kind = r.kind.as_str();
        if COMMIT_KINDS.contains(&kind) {
            let Some(sha) = subject(r, "commit") else {
                continue;
            };
            // `recorded_at` of a commit is when it was imported, not when it was made: only
            // the tool's time will do.
            match r.occurred_at {
                Some(t) => {
                    let e = commit_at.entry(sha.to_owned()).or_insert(t);
                    *e = (*e).min(t);
                }
                None => cx.skips.add(
                    M_LEAD,
                    format!("{kind} has no commit time (occurred_at)"),
                    r,
                ),
            }
        } else if PUSH_KINDS.contains(&kind) {
            let t = event_time(r);
            for sha in subject(r, "commit")
                .into_iter()
                .chain(links(r, Some("contains"), "commit"))
            {
                let e = push_at.entry(sha.to_owned()).or_insert(t);
                *e = (*e).min(t);
            }
        } else {
            // Which commit an artifact was built from: stated by the artifact's own records, or
            // by a build that both builds the commit and produces the artifact.
            let built_from = links(r, Some("built_from"), "commit").next();
            if let (Some(a), Some(c)) = (subject(r, "artifact"), built_from) {
                artifact_commit
                    .entry(a.to_owned())
                    .or_insert_with(|| c.to_owned());
            }
            if let Some(c) = links(r, Some("builds"), "commit").next() {
                for a in links(r, Some("produces"), "artifact") {
                    artifact_commit
                        .entry(a.to_owned())
                        .or_insert_with(|| c.to_owned());
                }
            }
        }
    }
    let mut lead: Vec<(usize, i64)> = Vec::new();
    let mut from_push = 0u64;
    for a in attempts.iter().filter(|a| a.ok) {
        let Some(b) = q.bucket_of(a.at) else {
            continue;
        };
        let sha = a.commit.clone().or_else(|| {
            a.artifact
                .as_ref()
                .and_then(|x| artifact_commit.get(x).cloned())
        });
        let Some(sha) = sha else {
            cx.skips.add(
                M_LEAD,
                "deployment names no commit (nor an artifact built from a known commit)",
                a.record,
            );
            continue;
        };
        let (t, pushed) = match (commit_at.get(&sha), push_at.get(&sha)) {
            (Some(t), _) => (*t, false),
            (None, Some(t)) => (*t, true),
            (None, None) => {
                cx.skips.add(
                    M_LEAD,
                    "no commit or push record for the deployed commit",
                    a.record,
                );
                continue;
            }
        };
        let us = a.at.as_micros().saturating_sub(t.as_micros());
        if us < 0 {
            cx.skips
                .add(M_LEAD, "the commit time is after the deployment", a.record);
            continue;
        }
        from_push += u64::from(pushed);
        lead.push((b, Seconds::from_micros(us).0));
    }
    let lead_time = LeadTime {
        stat: DurationStat::of(lead.iter().map(|x| x.1).collect()),
        from_push_time: from_push,
        per_bucket: per_bucket_durations(nb, &lead),
        unavailable: if total == 0 {
            Some(no_deploys.clone())
        } else if lead.is_empty() {
            Some("no deployment in the window has a known commit time".into())
        } else {
            None
        },
    };

    // ---- failure signals ----
    let mut incidents: BTreeMap<String, Signal<'_>> = BTreeMap::new();
    let mut resolved: BTreeMap<String, Vec<Timestamp>> = BTreeMap::new();
    let mut rollbacks: BTreeMap<String, Rollback<'_>> = BTreeMap::new();
    let mut rolledback: Vec<Signal<'_>> = Vec::new();
    for &r in records {
        let kind = r.kind.as_str();
        let at = event_time(r);
        if INCIDENT_KINDS.contains(&kind) {
            let key =
                subject(r, "incident").map_or_else(|| format!("record:{}", r.index), str::to_owned);
            if incidents.contains_key(&key) {
                continue; // detected and reported: the earlier one counts
            }
            let env = match links(r, Some("in"), "environment").next() {
                Some(e) => Some(e.to_owned()),
                None => match cx.payload(M_TTR, r) {
                    Some(p) => environment(r, &p, &["/content/environment/id"]),
                    None => continue,
                },
            };
            incidents.insert(
                key,
                Signal {
                    at,
                    env,
                    deployments: links(r, None, "deployment").map(str::to_owned).collect(),
                    artifacts: links(r, None, "artifact").map(str::to_owned).collect(),
                    record: r,
                },
            );
        } else if kind == INCIDENT_RESOLVED {
            if let Some(key) = subject(r, "incident") {
                resolved.entry(key.to_owned()).or_default().push(at);
            }
        } else if kind == ROLLBACK_DECIDED {
            let Some(p) = cx.payload(M_CFR, r) else {
                continue;
            };
            let Some(key) = subject(r, "rollback") else {
                cx.skips
                    .add(M_CFR, "rollback.decided names no rollback subject", r);
                continue;
            };
            let status = text(&p, "/status").map(str::to_ascii_lowercase);
            let Some(status) = status else {
                cx.skips.add(M_CFR, "rollback.decided has no status", r);
                continue;
            };
            let rb = rollbacks.entry(key.to_owned()).or_insert_with(|| Rollback {
                signal: Signal {
                    at,
                    env: links(r, Some("in_environment"), "environment")
                        .next()
                        .or_else(|| text(&p, "/environment"))
                        .map(str::to_owned),
                    deployments: links(r, Some("of_deployment"), "deployment")
                        .chain(text(&p, "/deployment"))
                        .map(str::to_owned)
                        .collect(),
                    artifacts: Vec::new(),
                    record: r,
                },
                cancelled: false,
                executed_at: None,
            });
            match status.as_str() {
                "cancelled" | "canceled" => rb.cancelled = true,
                "executed" => {
                    rb.executed_at.get_or_insert(at);
                }
                _ => {}
            }
        } else if kind == SERVICE_ROLLEDBACK {
            let Some(p) = cx.payload(M_CFR, r) else {
                continue;
            };
            rolledback.push(Signal {
                at,
                env: environment(r, &p, &["/content/environment/id"]),
                deployments: Vec::new(),
                artifacts: Vec::new(),
                record: r,
            });
        }
    }

    // ---- change failure rate ----
    // A signal is blamed on the latest successful deployment before it that it names (by
    // deployment, then artifact) or, failing that, to its environment: so a deployment is
    // "followed by" a failure when it strikes before the next successful deployment there.
    let blame = |s: &Signal<'_>| -> Option<usize> {
        let ok_before = |a: &Attempt<'_>| a.ok && a.at <= s.at;
        let latest = |f: &dyn Fn(&Attempt<'_>) -> bool| {
            attempts
                .iter()
                .enumerate()
                .filter(|(_, a)| ok_before(a) && f(a))
                .map(|(i, _)| i)
                .next_back()
        };
        let by_deployment = latest(&|a| {
            subject(a.record, "deployment").is_some_and(|d| s.deployments.iter().any(|x| x == d))
        });
        let by_artifact =
            || latest(&|a| a.artifact.as_ref().is_some_and(|x| s.artifacts.contains(x)));
        let by_env = || {
            s.env.as_ref().and_then(|e| {
                if !q.envs.matches(e) {
                    return None;
                }
                latest(&|a| a.env.eq_ignore_ascii_case(e))
            })
        };
        by_deployment.or_else(by_artifact).or_else(by_env)
    };
    let mut by_incident = vec![false; attempts.len()];
    let mut by_rollback = vec![false; attempts.len()];
    for s in incidents.values() {
        match blame(s) {
            Some(i) => by_incident[i] = true,
            None => unblamed(cx, q, s, "incident"),
        }
    }
    for rb in rollbacks.values().filter(|rb| !rb.cancelled) {
        match blame(&rb.signal) {
            Some(i) => by_rollback[i] = true,
            None => unblamed(cx, q, &rb.signal, "rollback decision"),
        }
    }
    for s in &rolledback {
        match blame(s) {
            Some(i) => by_rollback[i] = true,
            None => unblamed(cx, q, s, "rollback"),
        }
    }
    let mut causes = FailureCauses::default();
    let mut cfr_buckets = vec![(0u64, 0u64); nb];
    for (i, a) in attempts.iter().enumerate() {
        let Some(b) = q.bucket_of(a.at) else {
            continue;
        };
        let failed_deploy = !a.ok || a.failed_after;
        let (inc, rb) = (by_incident[i], by_rollback[i]);
        causes.failed_deployment += u64::from(failed_deploy);
        causes.incident += u64::from(inc);
        causes.rollback += u64::from(rb);
        cfr_buckets[b].0 += 1;
        cfr_buckets[b].1 += u64::from(failed_deploy || inc || rb);
    }
    let deployments: u64 = cfr_buckets.iter().map(|b| b.0).sum();
    let failures: u64 = cfr_buckets.iter().map(|b| b.1).sum();
    let change_failure_rate = ChangeFailureRate {
        rate: Ratio::new(failures, deployments),
        deployments,
        failures,
        causes,
        per_bucket: cfr_buckets
            .iter()
            .map(|&(d, f)| BucketRate {
                deployments: d,
                failures: f,
                rate: Ratio::new(f, d),
            })
            .collect(),
        unavailable: (deployments == 0)
            .then(|| format!("no deployments to {} in the window", q.envs)),
    };

    // ---- time to restore ----
    let mut ttr: Vec<(usize, i64)> = Vec::new();
    let mut open = 0u64;
    let mut considered = 0u64;
    for (key, s) in &incidents {
        let Some(b) = q.bucket_of(s.at) else {
            continue;
        };
        let blamed = blame(s);
        let env = match (&s.env, blamed) {
            (Some(e), _) if q.envs.matches(e) => e.clone(),
            (Some(_), None) => continue, // another environment
            (_, Some(i)) => attempts[i].env.clone(),
            (None, None) => {
                cx.skips.add(
                    M_TTR,
                    "incident names no environment and no deployment we know",
                    s.record,
                );
                continue;
            }
        };
        considered += 1;
        let same_env =
            |e: &Option<String>| e.as_ref().is_some_and(|x| x.eq_ignore_ascii_case(&env));
        let candidates = resolved
            .get(key)
            .into_iter()
            .flatten()
            .copied()
            .filter(|t| *t >= s.at)
            .chain(
                attempts
                    .iter()
                    .filter(|a| a.ok && a.at > s.at && a.env.eq_ignore_ascii_case(&env))
                    .map(|a| a.at),
            )
            .chain(
                rollbacks
                    .values()
                    .filter(|rb| !rb.cancelled && same_env(&rb.signal.env))
                    .filter_map(|rb| rb.executed_at)
                    .filter(|t| *t >= s.at),
            )
            .chain(
                rolledback
                    .iter()
                    .filter(|x| same_env(&x.env) && x.at >= s.at)
                    .map(|x| x.at),
            );
        match candidates.min() {
            Some(t) => ttr.push((
                b,
                Seconds::from_micros(t.as_micros().saturating_sub(s.at.as_micros())).0,
            )),
            None => open += 1,
        }
    }
    let time_to_restore = TimeToRestore {
        stat: DurationStat::of(ttr.iter().map(|x| x.1).collect()),
        open,
        per_bucket: per_bucket_durations(nb, &ttr),
        unavailable: if considered == 0 {
            Some(format!("no incidents in {} in the window", q.envs))
        } else if ttr.is_empty() {
            Some(format!(
                "none of the {open} incident(s) in the window was restored"
            ))
        } else {
            None
        },
    };
    Dora {
        deployment_frequency,
        lead_time,
        change_failure_rate,
        time_to_restore,
    }
}

/// A failure signal in the window that no deployment could be blamed for is reported, unless
/// it is about another environment.
fn unblamed(cx: &mut Ctx<'_>, q: &crate::Query, s: &Signal<'_>, what: &str) {
    if !q.in_window(s.at) {
        return;
    }
    match &s.env {
        Some(e) if !q.envs.matches(e) => {}
        Some(_) => cx.skips.add(
            M_CFR,
            format!("{what} with no earlier successful deployment to its environment"),
            s.record,
        ),
        None => cx.skips.add(
            M_CFR,
            format!("{what} names no environment and no deployment we know"),
            s.record,
        ),
    }
}

pub(crate) fn per_bucket_durations(nb: usize, samples: &[(usize, i64)]) -> Vec<BucketDuration> {
    let mut by: Vec<Vec<i64>> = vec![Vec::new(); nb];
    for &(b, s) in samples {
        if let Some(v) = by.get_mut(b) {
            v.push(s);
        }
    }
    by.into_iter()
        .map(|mut v| {
            v.sort_unstable();
            BucketDuration {
                samples: v.len() as u64,
                median: median(&v).map(Seconds),
            }
        })
        .collect()
}
