//! Change-request frequency and the AI intervention rate.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use trailmark_model::{Record, Timestamp};

use crate::Ctx;
use crate::evidence::{event_time, full_sha, links, subject, text};
use crate::output::{
    AiIntervention, BucketAi, BucketChangeRequests, ChangeRequests, OverrideReasons,
};
use crate::stats::Ratio;

const M_CR: &str = "change_requests";
const M_AI: &str = "ai_intervention";

/// The label that marks a pull/merge request as AI-generated (compared case-insensitively).
pub const AI_LABEL: &str = "ai-generated";
/// A record of this kind about a `pr` or `commit` subject marks it as AI-generated, for tools
/// whose own records cannot carry the mark.
pub const AI_ANNOTATION_KIND: &str = "ai.generated";

const COMMIT_KINDS: &[&str] = &["git.commit", "github.commit", "gitlab.commit"];

pub(crate) fn change_requests(records: &[&Record], cx: &mut Ctx<'_>) -> ChangeRequests {
    let q = cx.query;
    let nb = q.buckets.len();
    // First opening per subject: a redelivered or re-ingested webhook is one change request.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut per_bucket = vec![
        BucketChangeRequests {
            tickets: 0,
            pull_requests: 0
        };
        nb
    ];
    for &r in records {
        let kind = r.kind.as_str();
        let (ty, ticket) = match kind {
            "jira.issue_created" => ("ticket", true),
            "cdevents.change_created" => ("pr", false),
            "github.pull_request" | "gitlab.merge_request" => {
                let Some(p) = cx.payload(M_CR, r) else {
                    continue;
                };
                let opened = matches!(text(&p, "/action"), Some("opened" | "open"));
                if !opened {
                    continue;
                }
                ("pr", false)
            }
            _ => continue,
        };
        let Some(id) = subject(r, ty) else {
            cx.skips.add(M_CR, format!("{kind} names no {ty}"), r);
            continue;
        };
        if !seen.insert(format!("{ty}:{id}")) {
            continue;
        }
        let Some(b) = q.bucket_of(event_time(r)) else {
            continue;
        };
        if ticket {
            per_bucket[b].tickets += 1;
        } else {
            per_bucket[b].pull_requests += 1;
        }
    }
    let tickets: u64 = per_bucket.iter().map(|b| b.tickets).sum();
    let pull_requests: u64 = per_bucket.iter().map(|b| b.pull_requests).sum();
    let total = tickets + pull_requests;
    ChangeRequests {
        total,
        tickets,
        pull_requests,
        per_bucket,
        unavailable: (total == 0)
            .then(|| "no tickets or pull/merge requests opened in the window".into()),
    }
}

/// Whether a payload marks its change as AI output: `ai_generated: true`,
/// `generated_by.type == "ai"`, or the [`AI_LABEL`] among `labels`.
pub(crate) fn ai_marked(p: &Value) -> bool {
    p.get("ai_generated").and_then(Value::as_bool) == Some(true)
        || text(p, "/generated_by/type").is_some_and(|t| t.eq_ignore_ascii_case("ai"))
        || p.get("labels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str().or_else(|| l.get("name").and_then(Value::as_str)))
            .any(|l| l.trim().eq_ignore_ascii_case(AI_LABEL))
}

/// A pull or merge request, as far as its records tell.
#[derive(Debug, Default)]
struct Pr<'r> {
    first: Option<(Timestamp, &'r Record)>,
    author: Option<String>,
    ai: bool,
    merged_at: Option<Timestamp>,
    /// Closed without being merged, by whom.
    closed_by: Vec<String>,
    /// New commits pushed to it: by whom and when.
    pushes: Vec<(String, Timestamp)>,
    /// Reviewers who requested changes.
    changes_requested_by: Vec<String>,
    /// Its head and merge commits.
    shas: BTreeSet<String>,
}

#[derive(Debug)]
struct Commit<'r> {
    at: Timestamp,
    record: &'r Record,
    ai: bool,
}

/// `This reverts commit <sha>` (what `git revert` writes).
fn reverted_sha(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("This reverts commit ")?;
    let sha: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    full_sha(&sha)
}

pub(crate) fn ai_intervention(records: &[&Record], cx: &mut Ctx<'_>) -> AiIntervention {
    let q = cx.query;
    let nb = q.buckets.len();
    let is_ai_actor = |a: &str| q.ai_actors.contains(a);
    let mut prs: BTreeMap<String, Pr<'_>> = BTreeMap::new();
    let mut commits: BTreeMap<String, Commit<'_>> = BTreeMap::new();
    let mut annotated: BTreeSet<String> = BTreeSet::new();
    // Reverted SHA → the actors who reverted it.
    let mut reverts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &r in records {
        let kind = r.kind.as_str();
        let at = event_time(r);
        let actor = r.actor.as_deref();
        if kind == AI_ANNOTATION_KIND {
            for s in r
                .subjects
                .iter()
                .filter(|s| matches!(s.ty.as_str(), "pr" | "commit"))
            {
                annotated.insert(format!("{}:{}", s.ty, s.id));
            }
        } else if COMMIT_KINDS.contains(&kind) {
            let Some(p) = cx.payload(M_AI, r) else {
                continue;
            };
            let Some(sha) = subject(r, "commit") else {
                continue;
            };
            let ai = ai_marked(&p) || actor.is_some_and(is_ai_actor);
            if let Some(target) = text(&p, "/message").and_then(reverted_sha)
                && let Some(a) = actor
                && !ai
            {
                reverts.entry(target).or_default().push(a.to_owned());
            }
            let c = commits
                .entry(sha.to_owned())
                .or_insert(Commit { at, record: r, ai });
            c.ai |= ai;
        } else if kind == "github.pull_request" || kind == "gitlab.merge_request" {
            let Some(p) = cx.payload(M_AI, r) else {
                continue;
            };
            let Some(id) = subject(r, "pr") else {
                continue;
            };
            let pr = prs.entry(id.to_owned()).or_default();
            pr.first.get_or_insert((at, r));
            let github = kind == "github.pull_request";
            if github && let Some(a) = text(&p, "/author") {
                pr.author.get_or_insert_with(|| format!("github:{a}"));
            }
            let action = text(&p, "/action").unwrap_or("");
            if matches!(action, "opened" | "open")
                && let Some(a) = actor
            {
                pr.author.get_or_insert_with(|| a.to_owned());
            }
            pr.ai |= ai_marked(&p)
                || (matches!(action, "opened" | "open") && actor.is_some_and(is_ai_actor));
            pr.shas.extend(
                links(r, Some("head"), "commit")
                    .chain(links(r, Some("merged_as"), "commit"))
                    .map(str::to_owned),
            );
            let merged = p.get("merged").and_then(Value::as_bool) == Some(true)
                || action == "merge"
                || text(&p, "/state") == Some("merged");
            if merged {
                pr.merged_at.get_or_insert(at);
            }
            let closed = (github && action == "closed") || (!github && action == "close");
            if closed
                && !merged
                && let Some(a) = actor
            {
                pr.closed_by.push(a.to_owned());
            }
            // New commits on the PR: GitHub's `synchronize`, GitLab's `update` with `oldrev`.
            let pushed = (github && action == "synchronize")
                || (!github && action == "update" && p.get("oldrev").is_some_and(|v| !v.is_null()));
            if pushed && let Some(a) = actor {
                pr.pushes.push((a.to_owned(), at));
            }
        } else if kind == "github.pull_request_review" {
            let Some(p) = cx.payload(M_AI, r) else {
                continue;
            };
            let (Some(id), Some(a)) = (subject(r, "pr"), actor) else {
                continue;
            };
            if text(&p, "/state").is_some_and(|s| s.eq_ignore_ascii_case("changes_requested")) {
                prs.entry(id.to_owned())
                    .or_default()
                    .changes_requested_by
                    .push(a.to_owned());
            }
        }
    }

    let person = |a: &str| q.person(a);
    let human = |a: &str| !is_ai_actor(a);
    let ai_commit = |sha: &str| {
        commits.get(sha).is_some_and(|c| c.ai) || annotated.contains(&format!("commit:{sha}"))
    };
    let reverted_by_human = |sha: &str| {
        reverts
            .get(sha)
            .is_some_and(|who| who.iter().any(|a| human(a)))
    };
    // (bucket, reasons) per AI-generated change.
    let mut changes: Vec<(usize, OverrideReasons)> = Vec::new();
    let mut in_prs: BTreeSet<&str> = BTreeSet::new();
    for (id, pr) in &prs {
        in_prs.extend(pr.shas.iter().map(String::as_str));
        let ai = pr.ai
            || annotated.contains(&format!("pr:{id}"))
            || pr.author.as_deref().is_some_and(is_ai_actor)
            || pr.shas.iter().any(|s| ai_commit(s));
        let Some((at, _)) = pr.first else {
            continue; // reviews of a PR we never saw opened or updated
        };
        if !ai {
            continue;
        }
        let Some(b) = q.bucket_of(at) else {
            continue;
        };
        let author = pr.author.as_deref().map(person);
        let not_author = |a: &str| author.as_deref() != Some(person(a).as_str());
        let before_merge = |t: Timestamp| pr.merged_at.is_none_or(|m| t < m);
        let reasons = OverrideReasons {
            changes_requested: u64::from(pr.changes_requested_by.iter().any(|a| human(a))),
            closed_unmerged: u64::from(
                pr.merged_at.is_none() && pr.closed_by.iter().any(|a| human(a)),
            ),
            human_follow_up: u64::from(
                pr.pushes
                    .iter()
                    .any(|(a, t)| human(a) && not_author(a) && before_merge(*t)),
            ),
            reverted: u64::from(pr.shas.iter().any(|s| reverted_by_human(s))),
        };
        changes.push((b, reasons));
    }
    for (sha, c) in &commits {
        if in_prs.contains(sha.as_str()) || !ai_commit(sha) {
            continue;
        }
        let Some(b) = q.bucket_of(c.at) else {
            continue;
        };
        if c.record.occurred_at.is_none() {
            cx.skips.add(
                M_AI,
                "AI-generated commit without a commit time: bucketed by when it was recorded",
                c.record,
            );
        }
        let reasons = OverrideReasons {
            reverted: u64::from(reverted_by_human(sha)),
            ..OverrideReasons::default()
        };
        changes.push((b, reasons));
    }

    let mut reasons = OverrideReasons::default();
    let mut per_bucket = vec![(0u64, 0u64); nb];
    for (b, r) in &changes {
        reasons.changes_requested += r.changes_requested;
        reasons.closed_unmerged += r.closed_unmerged;
        reasons.human_follow_up += r.human_follow_up;
        reasons.reverted += r.reverted;
        let over = r.changes_requested + r.closed_unmerged + r.human_follow_up + r.reverted > 0;
        per_bucket[*b].0 += 1;
        per_bucket[*b].1 += u64::from(over);
    }
    let ai_changes: u64 = per_bucket.iter().map(|b| b.0).sum();
    let overridden: u64 = per_bucket.iter().map(|b| b.1).sum();
    AiIntervention {
        rate: Ratio::new(overridden, ai_changes),
        ai_changes,
        overridden,
        reasons,
        per_bucket: per_bucket
            .into_iter()
            .map(|(n, o)| BucketAi {
                ai_changes: n,
                overridden: o,
                rate: Ratio::new(o, n),
            })
            .collect(),
        unavailable: (ai_changes == 0).then(|| {
            "no AI-generated changes in the window (none marked `ai_generated`, \
             `generated_by.type: ai`, labelled `ai-generated`, annotated `ai.generated` or \
             authored by a configured AI agent)"
                .into()
        }),
    }
}
