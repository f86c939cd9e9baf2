//! Time to decision and approval bottlenecks.

use std::collections::BTreeMap;

use serde_json::Value;
use trailmark_model::{Record, Timestamp};

use crate::Ctx;
use crate::dora::per_bucket_durations;
use crate::evidence::{event_time, links, subject, text};
use crate::output::{Approvals, Approver};
use crate::stats::{DurationStat, Ratio, Seconds, median};

const M: &str = "approvals";

/// A request for a decision on a subject (`type:id`): when, and for which environments.
#[derive(Debug)]
struct Request {
    at: Timestamp,
    envs: Vec<String>,
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = String> + '_ {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn key(r: &Record, ty: &str) -> Option<String> {
    subject(r, ty).map(|id| format!("{ty}:{id}"))
}

/// The subject a governance record is about: the first that is not the tenant's project.
fn governed(r: &Record) -> Option<String> {
    r.subjects
        .iter()
        .find(|s| s.ty.as_str() != "project")
        .map(|s| format!("{}:{}", s.ty, s.id))
}

pub(crate) fn compute(records: &[&Record], cx: &mut Ctx<'_>) -> Approvals {
    let q = cx.query;
    let nb = q.buckets.len();
    let mut requests: BTreeMap<String, Request> = BTreeMap::new();
    // (bucket, approver, approve?, seconds from the request)
    let mut decisions: Vec<(usize, String, bool, Option<i64>)> = Vec::new();
    for &r in records {
        let kind = r.kind.as_str();
        let at = event_time(r);
        // Requests. Records are in time order, so the map holds the latest request before any
        // decision that follows: an approval asked again is measured from the new request.
        let request = match kind {
            "release.created" | "exception.raised" => {
                let Some(p) = cx.payload(M, r) else {
                    continue;
                };
                let ty = if kind == "release.created" {
                    "release"
                } else {
                    "exception"
                };
                let mut envs: Vec<String> = strings(p.get("environments")).collect();
                envs.extend(links(r, Some("targets"), "environment").map(str::to_owned));
                key(r, ty).map(|k| (k, envs))
            }
            "policy.version" => key(r, "policy").map(|k| (k, Vec::new())),
            "cdevents.approval_requested" => key(r, "approval").map(|k| {
                let envs = links(r, Some("in"), "environment")
                    .map(str::to_owned)
                    .collect();
                (k, envs)
            }),
            "github.deployment_review" => {
                let Some(p) = cx.payload(M, r) else {
                    continue;
                };
                if text(&p, "/action") == Some("requested") {
                    key(r, "build").map(|k| (k, strings(p.get("environments")).collect()))
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some((k, envs)) = request {
            requests.insert(k, Request { at, envs });
            continue;
        }
        // Decisions.
        let decision = match kind {
            "approval.decided" => {
                let Some(p) = cx.payload(M, r) else {
                    continue;
                };
                let approve = match text(&p, "/decision")
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    Some("approve") => true,
                    Some("reject") => false,
                    _ => {
                        cx.skips
                            .add(M, "approval.decided has no approve/reject decision", r);
                        continue;
                    }
                };
                (governed(r), r.actor.clone(), approve, Vec::new())
            }
            "cdevents.approval_approved" | "cdevents.approval_rejected" => (
                key(r, "approval"),
                r.actor.clone(),
                kind == "cdevents.approval_approved",
                links(r, Some("in"), "environment")
                    .map(str::to_owned)
                    .collect(),
            ),
            "github.deployment_review" => {
                let Some(p) = cx.payload(M, r) else {
                    continue;
                };
                let approve = match text(&p, "/action") {
                    Some("approved") => true,
                    Some("rejected") => false,
                    _ => continue,
                };
                let who = text(&p, "/approver")
                    .map(|l| format!("github:{l}"))
                    .or_else(|| r.actor.clone());
                (
                    key(r, "build"),
                    who,
                    approve,
                    strings(p.get("environments")).collect(),
                )
            }
            _ => continue,
        };
        let (subject_key, approver, approve, own_envs) = decision;
        let Some(approver) = approver else {
            cx.skips.add(M, format!("{kind} names no approver"), r);
            continue;
        };
        let request = subject_key.as_ref().and_then(|k| requests.get(k));
        let envs = if own_envs.is_empty() {
            request.map(|x| x.envs.as_slice()).unwrap_or_default()
        } else {
            own_envs.as_slice()
        };
        // Decisions about something bound for other environments are not this page's; those
        // naming none (policy versions, exceptions without environments) always count.
        if !envs.is_empty() && !envs.iter().any(|e| q.envs.matches(e)) {
            continue;
        }
        let Some(b) = q.bucket_of(at) else {
            continue;
        };
        let wait = match request {
            Some(req) if req.at <= at => Some(Seconds::from_micros(
                at.as_micros().saturating_sub(req.at.as_micros()),
            )),
            Some(_) => {
                cx.skips.add(M, "decision recorded before its request", r);
                None
            }
            None => {
                cx.skips.add(
                    M,
                    format!("{kind}: no request for the decided subject in the records"),
                    r,
                );
                None
            }
        };
        decisions.push((b, q.person(&approver), approve, wait.map(|s| s.0)));
    }

    let total = decisions.len() as u64;
    let approved = decisions.iter().filter(|d| d.2).count() as u64;
    let waits: Vec<(usize, i64)> = decisions
        .iter()
        .filter_map(|d| d.3.map(|w| (d.0, w)))
        .collect();
    let mut by: BTreeMap<&str, (u64, u64, Vec<i64>)> = BTreeMap::new();
    for (_, who, approve, wait) in &decisions {
        let e = by.entry(who.as_str()).or_default();
        e.0 += 1;
        e.1 += u64::from(*approve);
        e.2.extend(wait);
    }
    let mut approvers: Vec<Approver> = by
        .into_iter()
        .map(|(who, (n, ok, mut waits))| {
            waits.sort_unstable();
            Approver {
                approver: who.to_owned(),
                decisions: n,
                approved: ok,
                rejected: n - ok,
                share: Ratio::new(n, total),
                median_time_to_decision: median(&waits).map(Seconds),
            }
        })
        .collect();
    // Largest share first; the map already ordered names, and the sort is stable.
    approvers.sort_by_key(|a| std::cmp::Reverse(a.decisions));
    Approvals {
        decisions: total,
        approved,
        rejected: total - approved,
        time_to_decision: DurationStat::of(waits.iter().map(|w| w.1).collect()),
        per_bucket: per_bucket_durations(nb, &waits),
        approvers,
        time_to_decision_unavailable: if total == 0 {
            Some("no approval decisions in the window".into())
        } else if waits.is_empty() {
            Some("no decision in the window has its request in the records".into())
        } else {
            None
        },
        unavailable: (total == 0).then(|| "no approval decisions in the window".into()),
    }
}
