//! GitLab webhooks. The event is the `X-Gitlab-Event` header in [`Context::event`] (`Push Hook`,
//! `Merge Request Hook`, ...) or, when absent, the body's `object_kind`.
//!
//! Subjects follow the crate conventions with the project's web URL as `host/group/project`:
//! merge requests are `pr` `host/group/project#iid` (GitLab shows `!iid`, but one PR id shape
//! across tools lets evidence link), pipelines and jobs are `build`
//! `host/group/project/-/pipelines/ID` and `.../-/jobs/ID` (as in GitLab's own URLs).
//! Relations are the GitHub adapter's (`in_repo`, `references`, `head`, `merged_as`, `reviews`,
//! `builds`, `part_of`, `for_pr`, `deploys`, `deployed_by`, `deploys_to`, `previous`, `contains`, `tags`),
//! plus `comments_on` (note → MR or commit) and `triggered_by` (multi-project pipelines).
//!
//! GitLab sends several time formats (`2021-02-25 21:23:34 UTC`, `... +0200`, RFC 3339); they are
//! normalized to RFC 3339, and a time that cannot be read is left out rather than refusing.

use serde_json::{Value, json};

use crate::github::{
    Out, at, compact, full_sha, host_path, parse_object, text, timestamp, with_tickets,
};
use crate::{Context, Draft, Format, IngestError, Parsed, Skipped};

const F: Format = Format::Gitlab;

/// Parses one GitLab webhook body.
pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    let v = parse_object(bytes, F)?;
    // `System Hook` deliveries carry many kinds: the body says which.
    let header = ctx
        .event
        .as_deref()
        .map(event_name)
        .filter(|e| !e.is_empty() && e != "system");
    let event = match header {
        Some(e) => e,
        None => infer_event(&v).map(event_name).ok_or_else(|| {
            IngestError::schema(F, "not a GitLab webhook body: `object_kind` is missing (or pass the X-Gitlab-Event name)")
        })?,
    };
    let event = match event.as_str() {
        "job" => "build".to_owned(),
        "confidential_note" => "note".to_owned(),
        _ => event,
    };
    if !matches!(
        event.as_str(),
        "push"
            | "tag_push"
            | "merge_request"
            | "pipeline"
            | "build"
            | "deployment"
            | "release"
            | "note"
            | "feature_flag"
    ) {
        return Err(IngestError::Event { format: F, event });
    }
    let project = Project::of(&v)?;
    let mut out = Out {
        ctx,
        parsed: Parsed::default(),
    };
    match event.as_str() {
        "push" | "tag_push" => push(&v, &project, event == "tag_push", &mut out)?,
        "merge_request" => merge_request(&v, &project, &mut out)?,
        "pipeline" => pipeline(&v, &project, &mut out)?,
        "build" => job(&v, &project, &mut out)?,
        "deployment" => deployment(&v, &project, &mut out)?,
        "release" => release(&v, &project, &mut out)?,
        "note" => note(&v, &project, &mut out)?,
        "feature_flag" => feature_flag(&v, &project, &mut out)?,
        _ => return Err(IngestError::Event { format: F, event }),
    }
    Ok(out.parsed)
}

/// The event from the body: `object_kind` (`event_name` / `event_type` in older and system
/// hooks). Legacy job hooks say `build`.
pub fn infer_event(v: &Value) -> Option<&str> {
    text(v, "/object_kind")
        .or_else(|| text(v, "/event_name"))
        .or_else(|| text(v, "/event_type"))
}

/// `Merge Request Hook` → `merge_request`; `merge_request` stays as it is.
fn event_name(s: &str) -> String {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix(" hook").unwrap_or(&s);
    s.split_whitespace().collect::<Vec<_>>().join("_")
}

/// The project a delivery is about, `host/group/project`, from its web URL.
#[derive(Debug)]
struct Project {
    id: String,
}

impl Project {
    fn of(v: &Value) -> Result<Project, IngestError> {
        let url = text(v, "/project/web_url")
            .or_else(|| text(v, "/project/homepage"))
            .or_else(|| text(v, "/repository/homepage"))
            .or_else(|| {
                v.get("object_attributes")
                    .and_then(|oa| attr(oa, "target"))
                    .and_then(|t| text(t, "/web_url"))
            });
        let (host, path) = url.and_then(host_path).filter(|(_, p)| !p.is_empty()).ok_or_else(|| {
            IngestError::schema(F, "not a GitLab project webhook: `project.web_url` (or `repository.homepage`) is missing")
        })?;
        Ok(Project {
            id: format!("{host}/{path}"),
        })
    }

    fn pr(&self, iid: &str) -> String {
        format!("{}#{iid}", self.id)
    }
}

/// A member of a GitLab object, tolerating the stray spaces some senders put in keys
/// (`"iid ": 1402` appears in real group-hook bodies).
fn attr<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key)
        .or_else(|| {
            obj.as_object()?
                .iter()
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// A string member, trimmed (the same senders pad values: `"merged "`).
fn attr_text<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    attr(obj, key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A member for a payload: strings trimmed, `null` when absent.
fn attr_value(obj: &Value, key: &str) -> Value {
    match attr(obj, key) {
        Some(Value::String(s)) => Value::String(s.trim().to_owned()),
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

/// A numeric id (or numeric string) as text.
fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// `gitlab:username` of the user object at `ptr`.
fn user_actor(v: &Value, ptr: &str) -> Option<String> {
    text(v, &format!("{ptr}/username")).map(|u| format!("gitlab:{u}"))
}

/// The raw identity of a user object (username, name, email).
fn user(v: &Value, ptr: &str) -> Value {
    compact(json!({
        "username": at(v, &format!("{ptr}/username")),
        "name": at(v, &format!("{ptr}/name")),
        "email": at(v, &format!("{ptr}/email")),
    }))
}

fn push(v: &Value, p: &Project, tag: bool, out: &mut Out) -> Result<(), IngestError> {
    let git_ref =
        text(v, "/ref").ok_or_else(|| IngestError::schema(F, "push: `ref` is missing"))?;
    let branch = git_ref.strip_prefix("refs/heads/");
    let actor = text(v, "/user_username").map(|u| format!("gitlab:{u}"));
    let commits: &[Value] = v
        .get("commits")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let mut ids = Vec::new();
    // A tag push lists the tagged history, not new commits: only branch pushes record commits.
    for (i, c) in commits.iter().enumerate().filter(|_| !tag) {
        let Some(id) = full_sha(text(c, "/id")) else {
            out.parsed.skipped.push(Skipped {
                what: format!("commit {} of the push", i + 1),
                reason: "no full commit SHA in `id`".into(),
            });
            continue;
        };
        ids.push(id.clone());
        let message = text(c, "/message");
        let d = Draft::new("gitlab.commit")
            .subject("commit", &id)
            .link("in_repo", "repo", &p.id)
            .actor(text(c, "/author/email").map(|e| format!("email:{e}")))
            .occurred_at(timestamp(c.get("timestamp")))
            .payload(compact(json!({
                "repo": p.id,
                "ref": git_ref,
                "title": at(c, "/title"),
                "message": message,
                "author": compact(json!({"name": at(c, "/author/name"), "email": at(c, "/author/email")})),
                "url": at(c, "/url"),
            })));
        let d = with_tickets(d, out.ctx, &[message, branch]);
        out.push(format!("commit {id}"), d);
    }
    let after = full_sha(text(v, "/after"));
    let user = compact(json!({
        "username": at(v, "/user_username"),
        "name": at(v, "/user_name"),
        "email": at(v, "/user_email"),
    }));
    // GitLab push hooks carry no push time: `occurred_at` is left to the receiver.
    let d = if tag {
        let commit = full_sha(text(v, "/checkout_sha")).or(after);
        Draft::new("gitlab.tag_push")
            .subject("repo", &p.id)
            .subject_opt("commit", commit.as_deref())
            .link("in_repo", "repo", &p.id)
            .link_opt("tags", "commit", commit.as_deref())
            .payload(compact(json!({
                "ref": git_ref,
                "tag": git_ref.strip_prefix("refs/tags/"),
                "before": at(v, "/before"),
                "after": at(v, "/after"),
                "checkout_sha": at(v, "/checkout_sha"),
                "deleted": commit.is_none(),
                "user": user,
            })))
    } else {
        let mut d = Draft::new("gitlab.push")
            .subject("repo", &p.id)
            .subject_opt("commit", after.as_deref())
            .link("in_repo", "repo", &p.id)
            .link_opt("previous", "commit", full_sha(text(v, "/before")));
        for id in &ids {
            d = d.link("contains", "commit", id);
        }
        let d = d.payload(compact(json!({
            "ref": git_ref,
            "before": at(v, "/before"),
            "after": at(v, "/after"),
            "checkout_sha": at(v, "/checkout_sha"),
            "user": user,
            "total_commits_count": at(v, "/total_commits_count"),
            "commits": ids,
        })));
        with_tickets(d, out.ctx, &[branch])
    };
    out.push(
        format!("{} {git_ref}", if tag { "tag push" } else { "push to" }),
        d.actor(actor),
    );
    Ok(())
}

fn merge_request(v: &Value, p: &Project, out: &mut Out) -> Result<(), IngestError> {
    let oa = v
        .get("object_attributes")
        .filter(|o| o.is_object())
        .ok_or_else(|| IngestError::schema(F, "merge_request: `object_attributes` is missing"))?;
    let iid = id_text(attr(oa, "iid")).ok_or_else(|| {
        IngestError::schema(F, "merge_request: `object_attributes.iid` is missing")
    })?;
    let id = p.pr(&iid);
    let action = attr_text(oa, "action").unwrap_or("");
    let state = attr_text(oa, "state").unwrap_or("");
    let approval = matches!(
        action,
        "approved" | "unapproved" | "approval" | "unapproval"
    );
    let merged = action == "merge" || state == "merged";
    let last_commit = attr(oa, "last_commit").and_then(|c| full_sha(text(c, "/id")));
    let merge_sha = if merged {
        attr_text(oa, "merge_commit_sha").and_then(|s| full_sha(Some(s)))
    } else {
        None
    };
    let title = attr_text(oa, "title");
    let source_branch = attr_text(oa, "source_branch");
    let when = match action {
        "merge" => timestamp(attr(oa, "merged_at")),
        "close" => timestamp(attr(oa, "closed_at")),
        "open" => timestamp(attr(oa, "created_at")),
        _ => None,
    }
    .or_else(|| timestamp(attr(oa, "updated_at")))
    .or_else(|| timestamp(attr(oa, "created_at")));
    let names = |key: &str, field: &str| -> Vec<Value> {
        v.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|u| u.get(field).cloned())
            .collect()
    };
    let d = if approval {
        Draft::new("gitlab.merge_request_approval").link_opt("reviews", "commit", last_commit)
    } else {
        Draft::new("gitlab.merge_request").link_opt("head", "commit", last_commit)
    };
    let d = d
        .subject("pr", &id)
        .link("in_repo", "repo", &p.id)
        .link_opt("merged_as", "commit", merge_sha)
        .actor(user_actor(v, "/user"))
        .occurred_at(when)
        .payload(compact(json!({
            "action": action,
            "iid": attr_value(oa, "iid"),
            "title": title,
            "state": state,
            "merge_status": attr_value(oa, "merge_status"),
            "detailed_merge_status": attr_value(oa, "detailed_merge_status"),
            "source_branch": source_branch,
            "target_branch": attr_value(oa, "target_branch"),
            "last_commit": attr(oa, "last_commit").map(|c| at(c, "/id")),
            "oldrev": attr_value(oa, "oldrev"),
            "merge_commit_sha": if merged { attr_value(oa, "merge_commit_sha") } else { Value::Null },
            "draft": attr(oa, "draft").or_else(|| attr(oa, "work_in_progress")).cloned(),
            "user": user(v, "/user"),
            "reviewers": names("reviewers", "username"),
            "assignees": names("assignees", "username"),
            "labels": names("labels", "title"),
            "changed": v.get("changes").and_then(Value::as_object).map(|m| m.keys().cloned().collect::<Vec<_>>()),
            "url": attr_value(oa, "url"),
        })));
    let d = with_tickets(d, out.ctx, &[title, source_branch]);
    out.push(format!("merge request {id}"), d);
    Ok(())
}

fn pipeline(v: &Value, p: &Project, out: &mut Out) -> Result<(), IngestError> {
    let oa = v
        .get("object_attributes")
        .filter(|o| o.is_object())
        .ok_or_else(|| IngestError::schema(F, "pipeline: `object_attributes` is missing"))?;
    let id = id_text(attr(oa, "id"))
        .ok_or_else(|| IngestError::schema(F, "pipeline: `object_attributes.id` is missing"))?;
    let build = format!("{}/-/pipelines/{id}", p.id);
    let upstream = v.get("source_pipeline").and_then(|s| {
        let (host, path) = text(s, "/project/web_url").and_then(host_path)?;
        Some(format!(
            "{host}/{path}/-/pipelines/{}",
            id_text(s.get("pipeline_id"))?
        ))
    });
    let jobs: Vec<Value> = v
        .get("builds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| {
            compact(json!({
                "id": at(b, "/id"),
                "name": at(b, "/name"),
                "stage": at(b, "/stage"),
                "status": at(b, "/status"),
                "allow_failure": at(b, "/allow_failure"),
                "environment": at(b, "/environment/name"),
                "finished_at": at(b, "/finished_at"),
            }))
        })
        .collect();
    // Variable values can be secrets: only their names are kept.
    let variables: Vec<Value> = attr(oa, "variables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.get("key").cloned())
        .collect();
    let d = Draft::new("gitlab.pipeline")
        .subject("build", &build)
        .link("in_repo", "repo", &p.id)
        .link_opt("builds", "commit", full_sha(attr_text(oa, "sha")))
        .link_opt(
            "for_pr",
            "pr",
            v.get("merge_request")
                .and_then(|m| id_text(m.get("iid")))
                .map(|i| p.pr(&i)),
        )
        .link_opt("triggered_by", "build", upstream)
        .actor(user_actor(v, "/user"))
        .occurred_at(
            timestamp(attr(oa, "finished_at")).or_else(|| timestamp(attr(oa, "created_at"))),
        )
        .payload(compact(json!({
            "id": attr_value(oa, "id"),
            "iid": attr_value(oa, "iid"),
            "status": attr_value(oa, "status"),
            "detailed_status": attr_value(oa, "detailed_status"),
            "ref": attr_value(oa, "ref"),
            "tag": attr_value(oa, "tag"),
            "sha": attr_value(oa, "sha"),
            "before_sha": attr_value(oa, "before_sha"),
            "source": attr_value(oa, "source"),
            "stages": attr_value(oa, "stages"),
            "duration": attr_value(oa, "duration"),
            "created_at": attr_value(oa, "created_at"),
            "finished_at": attr_value(oa, "finished_at"),
            "variables": variables,
            "jobs": jobs,
            "user": user(v, "/user"),
        })));
    out.push(format!("pipeline {build}"), d);
    Ok(())
}

/// Job hooks (`object_kind` `build`, the legacy name GitLab still sends).
fn job(v: &Value, p: &Project, out: &mut Out) -> Result<(), IngestError> {
    let id = id_text(v.get("build_id"))
        .ok_or_else(|| IngestError::schema(F, "job: `build_id` is missing"))?;
    let build = format!("{}/-/jobs/{id}", p.id);
    let status = text(v, "/build_status");
    let d = Draft::new("gitlab.job")
        .subject("build", &build)
        .link("in_repo", "repo", &p.id)
        .link_opt("builds", "commit", full_sha(text(v, "/sha")))
        .link_opt("part_of", "build", id_text(v.get("pipeline_id")).map(|i| format!("{}/-/pipelines/{i}", p.id)))
        .link_opt("deploys_to", "environment", text(v, "/environment/name"))
        .actor(user_actor(v, "/user"))
        .occurred_at(
            timestamp(v.get("build_finished_at"))
                .or_else(|| timestamp(v.get("build_started_at")))
                .or_else(|| timestamp(v.get("build_created_at"))),
        )
        .payload(compact(json!({
            "name": at(v, "/build_name"),
            "stage": at(v, "/build_stage"),
            "status": status,
            // GitLab fills this even for jobs that did not fail: only meaningful on failure.
            "failure_reason": if status == Some("failed") { at(v, "/build_failure_reason") } else { Value::Null },
            "allow_failure": at(v, "/build_allow_failure"),
            "duration": at(v, "/build_duration"),
            "ref": at(v, "/ref"),
            "tag": at(v, "/tag"),
            "sha": at(v, "/sha"),
            "pipeline_id": at(v, "/pipeline_id"),
            "retries_count": at(v, "/retries_count"),
            "created_at": at(v, "/build_created_at"),
            "started_at": at(v, "/build_started_at"),
            "finished_at": at(v, "/build_finished_at"),
            "runner": v.get("runner").filter(|r| r.is_object()).map(|r| compact(json!({
                "id": at(r, "/id"),
                "description": at(r, "/description"),
                "type": at(r, "/runner_type"),
                "tags": at(r, "/tags"),
            }))),
            "environment": at(v, "/environment"),
            "user": user(v, "/user"),
        })));
    out.push(format!("job {build}"), d);
    Ok(())
}

fn deployment(v: &Value, p: &Project, out: &mut Out) -> Result<(), IngestError> {
    let id = id_text(v.get("deployment_id"))
        .ok_or_else(|| IngestError::schema(F, "deployment: `deployment_id` is missing"))?;
    let dep = format!("{}/-/deployments/{id}", p.id);
    // The hook gives only a short SHA, but the commit URL ends with the full one.
    let sha = text(v, "/commit_url").and_then(|u| full_sha(u.rsplit('/').next()));
    let d = Draft::new("gitlab.deployment")
        .subject("deployment", &dep)
        .subject_opt("environment", text(v, "/environment"))
        .link("in_repo", "repo", &p.id)
        .link_opt("deploys", "commit", sha.as_deref())
        .link_opt(
            "deployed_by",
            "build",
            id_text(v.get("deployable_id")).map(|j| format!("{}/-/jobs/{j}", p.id)),
        )
        .actor(user_actor(v, "/user"))
        .occurred_at(timestamp(v.get("status_changed_at")))
        .payload(compact(json!({
            "status": at(v, "/status"),
            "environment": at(v, "/environment"),
            "environment_slug": at(v, "/environment_slug"),
            "environment_tier": at(v, "/environment_tier"),
            "environment_external_url": at(v, "/environment_external_url"),
            "ref": at(v, "/ref"),
            "sha": sha,
            "short_sha": at(v, "/short_sha"),
            "commit_title": at(v, "/commit_title"),
            "deployable_url": at(v, "/deployable_url"),
            "status_changed_at": at(v, "/status_changed_at"),
            "user": user(v, "/user"),
        })));
    out.push(format!("deployment {dep}"), d);
    Ok(())
}

fn release(v: &Value, p: &Project, out: &mut Out) -> Result<(), IngestError> {
    let tag = text(v, "/tag").ok_or_else(|| IngestError::schema(F, "release: `tag` is missing"))?;
    let id = format!("{}@{tag}", p.id);
    let links: Vec<Value> = v
        .pointer("/assets/links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|l| compact(json!({"name": at(l, "/name"), "url": at(l, "/url"), "link_type": at(l, "/link_type")})))
        .collect();
    let d = Draft::new("gitlab.release")
        .subject("release", &id)
        .link("in_repo", "repo", &p.id)
        .link_opt("tags", "commit", full_sha(text(v, "/commit/id")))
        .occurred_at(timestamp(v.get("released_at")).or_else(|| timestamp(v.get("created_at"))))
        .payload(compact(json!({
            "action": at(v, "/action"),
            "tag": tag,
            "name": at(v, "/name"),
            "description": at(v, "/description"),
            "released_at": at(v, "/released_at"),
            "created_at": at(v, "/created_at"),
            "commit": compact(json!({"id": at(v, "/commit/id"), "title": at(v, "/commit/title")})),
            "asset_links": links,
            "url": at(v, "/url"),
        })));
    out.push(format!("release {id}"), d);
    Ok(())
}

/// Comments. A comment on a merge request is about that MR (subject and `comments_on`), one on
/// a commit about the commit; others (issues, snippets) are recorded against the project.
fn note(v: &Value, p: &Project, out: &mut Out) -> Result<(), IngestError> {
    let oa = v
        .get("object_attributes")
        .filter(|o| o.is_object())
        .ok_or_else(|| IngestError::schema(F, "note: `object_attributes` is missing"))?;
    let kind = attr_text(oa, "noteable_type").unwrap_or("");
    let mr = v.get("merge_request").filter(|m| m.is_object());
    let target: Option<(&str, String)> = match kind {
        "MergeRequest" => mr
            .and_then(|m| id_text(m.get("iid")))
            .map(|i| ("pr", p.pr(&i))),
        "Commit" => full_sha(attr_text(oa, "commit_id"))
            .or_else(|| full_sha(text(v, "/commit/id")))
            .map(|c| ("commit", c)),
        _ => None,
    };
    let mut d = Draft::new("gitlab.note").link("in_repo", "repo", &p.id);
    d = match &target {
        Some((ty, id)) => d.subject(ty, id).link("comments_on", ty, id),
        None => d.subject("repo", &p.id),
    };
    let when = if attr_text(oa, "action") == Some("update") {
        timestamp(attr(oa, "updated_at"))
    } else {
        timestamp(attr(oa, "created_at"))
    };
    let d = d
        .actor(user_actor(v, "/user"))
        .occurred_at(when.or_else(|| timestamp(attr(oa, "updated_at"))))
        .payload(compact(json!({
            "action": attr_value(oa, "action"),
            "note_id": attr_value(oa, "id"),
            "noteable_type": kind,
            "note": attr_value(oa, "note"),
            "system": attr_value(oa, "system"),
            "url": attr_value(oa, "url"),
            "merge_request": mr.map(|m| compact(json!({
                "iid": at(m, "/iid"),
                "title": at(m, "/title"),
                "state": at(m, "/state"),
                "last_commit": at(m, "/last_commit/id"),
            }))),
            "issue": v.get("issue").filter(|i| i.is_object()).map(|i| compact(json!({"iid": at(i, "/iid"), "title": at(i, "/title")}))),
            "user": user(v, "/user"),
        })));
    out.push(
        format!("note on {}", target.map_or(p.id.clone(), |(_, id)| id)),
        d,
    );
    Ok(())
}

/// Feature flags switch behaviour in production without a deployment, so who turned which flag
/// on or off is change evidence: recorded with a `feature_flag` subject.
fn feature_flag(v: &Value, p: &Project, out: &mut Out) -> Result<(), IngestError> {
    let oa = v
        .get("object_attributes")
        .filter(|o| o.is_object())
        .ok_or_else(|| IngestError::schema(F, "feature_flag: `object_attributes` is missing"))?;
    let name = attr_text(oa, "name").ok_or_else(|| {
        IngestError::schema(F, "feature_flag: `object_attributes.name` is missing")
    })?;
    let d = Draft::new("gitlab.feature_flag")
        .subject("feature_flag", format!("{}/-/feature_flags/{name}", p.id))
        .link("in_repo", "repo", &p.id)
        .actor(user_actor(v, "/user"))
        .payload(compact(json!({
            "id": attr_value(oa, "id"),
            "name": name,
            "description": attr_value(oa, "description"),
            "active": attr_value(oa, "active"),
            "user": user(v, "/user"),
        })));
    out.push(format!("feature flag {name}"), d);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SHA: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";

    fn project() -> Value {
        json!({"web_url": "https://gitlab.example.com/group/app", "path_with_namespace": "group/app"})
    }

    fn run(event: Option<&str>, body: Value) -> Vec<Value> {
        let ctx = Context {
            event: event.map(Into::into),
            ..Context::default()
        };
        let parsed = parse(body.to_string().as_bytes(), &ctx).unwrap();
        parsed
            .records
            .iter()
            .map(trailmark_model::input::to_value)
            .collect()
    }

    #[test]
    fn invalid_inputs_are_refused_without_panicking() {
        let c = Context::default();
        assert!(matches!(
            parse(b"{\"object_kind\": \"pu", &c),
            Err(IngestError::Json { .. })
        ));
        assert!(
            parse(b"[]", &c)
                .unwrap_err()
                .to_string()
                .contains("found an array")
        );
        let e = parse(br#"{"object_kind": "push", "ref": "refs/heads/x"}"#, &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("project.web_url"), "{e}");
        let e = parse(br#"{"ref": "x"}"#, &c).unwrap_err().to_string();
        assert!(e.contains("object_kind"), "{e}");
        let e = parse(
            br#"{"object_kind": "issue", "project": {"web_url": "http://h/g/p"}}"#,
            &c,
        )
        .unwrap_err();
        assert_eq!(
            e,
            IngestError::Event {
                format: F,
                event: "issue".into()
            }
        );
        let e = parse(br#"{"object_kind": "merge_request", "project": {"web_url": "http://h/g/p"}, "object_attributes": 3}"#, &c);
        assert!(e.unwrap_err().to_string().contains("object_attributes"));
    }

    #[test]
    fn header_names_select_the_event() {
        assert_eq!(event_name("Merge Request Hook"), "merge_request");
        assert_eq!(event_name("Tag Push Hook"), "tag_push");
        let body = json!({"object_kind": "build", "build_id": 5, "pipeline_id": 2, "sha": SHA, "build_status": "failed",
            "build_failure_reason": "script_failure", "repository": {"homepage": "https://gitlab.example.com/group/app"}});
        let r = &run(Some("Job Hook"), body)[0];
        assert_eq!(r["kind"], "gitlab.job");
        assert_eq!(r["payload"]["failure_reason"], "script_failure");
        assert_eq!(
            r["subjects"][0]["id"],
            "gitlab.example.com/group/app/-/jobs/5"
        );
    }

    #[test]
    fn approvals_link_the_reviewed_commit_and_tickets() {
        let body = json!({"object_kind": "merge_request", "project": project(), "user": {"username": "rev", "email": "r@x"},
            "object_attributes": {"iid": 4, "title": "PAY-9 new checkout", "source_branch": "feature/OPS-2", "action": "approved",
                "state": "opened", "updated_at": "2024-01-01 10:00:00 UTC", "last_commit": {"id": SHA}}});
        let r = &run(None, body)[0];
        assert_eq!(r["kind"], "gitlab.merge_request_approval");
        assert_eq!(r["subjects"][0]["id"], "gitlab.example.com/group/app#4");
        assert_eq!(r["actor"], "gitlab:rev");
        assert_eq!(r["occurred_at"], "2024-01-01T10:00:00Z");
        let rels: Vec<(String, String)> = r["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["rel"].as_str().unwrap().into(),
                    l["to"]["id"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert!(rels.contains(&("reviews".into(), SHA.into())));
        assert!(rels.contains(&("references".into(), "PAY-9".into())));
        assert!(rels.contains(&("references".into(), "OPS-2".into())));
    }

    #[test]
    fn notes_on_commits_are_about_the_commit() {
        let body = json!({"object_kind": "note", "project": project(), "user": {"username": "u"},
            "object_attributes": {"id": 1, "note": "looks odd", "noteable_type": "Commit", "commit_id": SHA,
                "created_at": "2015-05-17 18:21:36 UTC"}});
        let r = &run(Some("Note Hook"), body)[0];
        assert_eq!(r["subjects"][0], json!({"type": "commit", "id": SHA}));
        let issue = json!({"object_kind": "note", "project": project(), "object_attributes": {"noteable_type": "Issue", "note": "x"}});
        assert_eq!(run(None, issue)[0]["subjects"][0]["type"], "repo");
    }
}
