//! Jenkins adapter: bodies sent by the Notification plugin (`{name, url, build: {phase, ...}}`).
//!
//! One `jenkins.build` record per notification, subject `build:jenkins/<job name>/<number>`;
//! links: `builds` → `commit:<sha>` (only a full SHA; a short one is kept in the payload and
//! reported as skipped), `built_from` → `repo:<host/owner/name>` for http(s)/ssh git URLs,
//! `implements` → tickets found in the branch name. Artifacts, parameters and SCM data go in
//! the payload. CSV dumps of the Jenkins REST API are refused: they are not notifications.

use serde_json::{Map, Value, json};

use crate::{Context, Draft, Format, IngestError, Parsed, Skipped};

const F: Format = Format::Jenkins;
const PHASES: [&str; 5] = ["QUEUED", "STARTED", "COMPLETED", "FINALIZED", "DELETED"];

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `host/owner/name` from a git remote URL (`https://host/o/n.git`, `git@host:o/n.git`,
/// `ssh://git@host/o/n`), or `None`.
pub(crate) fn repo_from_url(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = if let Some((_, r)) = url.split_once("://") {
        let r = r.rsplit_once('@').map_or(r, |(_, h)| h);
        r.to_owned()
    } else if let Some((user_host, path)) = url.split_once(':') {
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        format!("{host}/{path}")
    } else {
        return None;
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let (host, path) = rest.split_once('/')?;
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() || path.is_empty() || !path.contains(|c: char| c != '/') {
        return None;
    }
    Some(format!("{host}/{path}"))
}

/// `a/b/c` from a Jenkins URL path `.../job/a/job/b/job/c/17/`, or `None` when it has no
/// `job/` segments.
fn job_path_from_url(url: &str) -> Option<String> {
    let segs: Vec<&str> = url
        .split(['/', '?', '#'])
        .filter(|s| !s.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut it = segs.iter().peekable();
    while let Some(seg) = it.next() {
        if *seg == "job"
            && let Some(n) = it.next()
        {
            out.push(percent_decode_path(n));
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

fn percent_decode_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let Some(h) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
            && let Ok(x) = u8::from_str_radix(h, 16)
        {
            out.push(x);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn number_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        _ => None,
    }
}

pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    if crate::jira::looks_like_csv(bytes) {
        return Err(IngestError::schema(
            F,
            "not a Jenkins notification: CSV (rows of Jenkins REST api/json documents); configure the Notification plugin to send JSON instead",
        ));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let v: Value = serde_json::from_slice(bytes).map_err(|e| IngestError::json(F, &e))?;
    if !v.is_object() {
        return Err(IngestError::schema(
            F,
            "expected a JSON object (a Notification plugin body)",
        ));
    }
    let build = v.get("build").filter(|b| b.is_object()).ok_or_else(|| {
        IngestError::schema(F, "not a Jenkins notification: missing `build` object")
    })?;
    let name = s(&v, "/name")
        .or_else(|| s(&v, "/display_name"))
        .ok_or_else(|| IngestError::schema(F, "missing job `name`"))?;
    let phase = s(build, "/phase").ok_or_else(|| IngestError::schema(F, "missing build.phase"))?;
    let phase_up = phase.to_ascii_uppercase();
    if !PHASES.contains(&phase_up.as_str()) {
        return Err(IngestError::Event {
            format: F,
            event: format!("build phase {phase}"),
        });
    }
    // A queued build may not have its number yet: it is known by its queue item.
    let number = match (
        number_text(build.get("number")),
        number_text(build.get("queue_id")),
    ) {
        (Some(n), _) => n,
        (None, Some(q)) if phase_up == "QUEUED" => format!("queue/{q}"),
        _ => return Err(IngestError::schema(F, "missing build.number")),
    };
    // Folder and multibranch jobs: `name` is only the last segment (often just `main`), so
    // the job path comes from the URL (`job/org/job/app/job/main/7/` -> `org/app/main`).
    let job_path = s(build, "/url")
        .or_else(|| s(&v, "/url"))
        .and_then(job_path_from_url)
        .unwrap_or_else(|| name.to_owned());
    let mut out = Parsed::default();
    let build_id = format!("jenkins/{job_path}/{number}");

    let commit = s(build, "/scm/commit");
    let branch_raw = s(build, "/scm/branch");
    let branch = branch_raw.map(|b| {
        let b = b.strip_prefix("refs/heads/").unwrap_or(b);
        let b = b.strip_prefix("refs/remotes/").unwrap_or(b);
        b.strip_prefix("origin/").unwrap_or(b).to_owned()
    });
    let scm_url = s(build, "/scm/url");
    let repo = scm_url.and_then(repo_from_url);

    // The plugin sends artifacts as an object keyed by file name; they are listed by name
    // (JSON object order carries no meaning, and the parser keeps keys sorted).
    let artifacts: Vec<Value> = match build.get("artifacts") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(file, locs)| {
                let mut a = Map::new();
                a.insert("name".into(), Value::String(file.clone()));
                if let Value::Object(l) = locs {
                    for (k, x) in l {
                        a.insert(k.clone(), x.clone());
                    }
                }
                Value::Object(a)
            })
            .collect(),
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };

    let payload = json!({
        "job": name,
        "job_path": job_path,
        "job_url": v.get("url").cloned().unwrap_or(Value::Null),
        "display_name": v.get("display_name").cloned().unwrap_or(Value::Null),
        "number": build.get("number").cloned().unwrap_or(Value::Null),
        "phase": phase_up,
        "status": s(build, "/status"),
        "full_url": s(build, "/full_url"),
        "url": s(build, "/url"),
        "queue_id": build.get("queue_id").cloned().unwrap_or(Value::Null),
        "timestamp": build.get("timestamp").cloned().unwrap_or(Value::Null),
        "duration": build.get("duration").cloned().unwrap_or(Value::Null),
        "scm": {
            "url": scm_url,
            "branch": branch_raw,
            "commit": commit,
            "changes": build.pointer("/scm/changes").cloned().unwrap_or(Value::Null),
            "culprits": build.pointer("/scm/culprits").cloned().unwrap_or(Value::Null),
        },
        "branch": branch,
        "parameters": build.get("parameters").cloned().unwrap_or(Value::Null),
        "notes": build.get("notes").cloned().unwrap_or(Value::Null),
        "artifacts": artifacts,
    });

    let mut draft = Draft::new("jenkins.build")
        .subject("build", &build_id)
        .occurred_at_millis(build.get("timestamp").and_then(Value::as_i64))
        .payload(payload);
    match commit {
        Some(c) if is_full_sha(c) => draft = draft.link("builds", "commit", c),
        Some(c) => out.skipped.push(Skipped {
            what: format!("scm.commit {c:?}"),
            reason: "not a full 40- or 64-digit SHA; kept in the payload, not linked".into(),
        }),
        None => {}
    }
    if let Some(c) = ctx.commit.as_deref().filter(|c| is_full_sha(c)) {
        draft = draft.link("builds", "commit", c);
    }
    draft = draft.link_opt("built_from", "repo", repo);
    for t in branch
        .as_deref()
        .map(|b| ctx.tickets.find(b))
        .unwrap_or_default()
    {
        draft = draft.link("implements", "ticket", t);
    }
    match draft.build() {
        Ok(r) => out.records.push(r),
        Err(reason) => out.skipped.push(Skipped {
            what: format!("build {build_id}"),
            reason,
        }),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(v: Value) -> Result<Parsed, IngestError> {
        parse(v.to_string().as_bytes(), &Context::default())
    }

    #[test]
    fn repo_urls() {
        assert_eq!(
            repo_from_url("https://github.com/o/n.git").as_deref(),
            Some("github.com/o/n")
        );
        assert_eq!(
            repo_from_url("git@GitHub.com:o/n.git").as_deref(),
            Some("github.com/o/n")
        );
        assert_eq!(
            repo_from_url("ssh://git@host:22/o/n/").as_deref(),
            Some("host/o/n")
        );
        assert_eq!(repo_from_url("nonsense"), None);
    }

    #[test]
    fn short_sha_is_skipped_and_tickets_come_from_the_branch() {
        let p = run(json!({"name": "app", "build": {"number": 3, "phase": "COMPLETED", "status": "SUCCESS",
            "timestamp": 1_700_000_000_000_i64,
            "scm": {"commit": "abc123", "branch": "origin/feature/PAY-7-x", "url": "git@github.com:o/app.git"}}}))
        .unwrap();
        assert_eq!(p.skipped.len(), 1);
        let r = trailmark_model::input::to_value(&p.records[0]);
        assert_eq!(r["subjects"][0]["id"], "jenkins/app/3");
        assert_eq!(r["payload"]["branch"], "feature/PAY-7-x");
        let links = r["links"].to_string();
        assert!(
            links.contains("PAY-7") && links.contains("github.com/o/app"),
            "{links}"
        );
        assert!(r["occurred_at"].as_str().unwrap().starts_with("2023-11-14"));
    }

    #[test]
    fn folder_jobs_and_queued_builds() {
        let r = run(json!({"name": "main", "url": "job/org/job/app/job/main/",
            "build": {"number": 7, "phase": "FINALIZED", "url": "job/org/job/app/job/main/7/"}}))
        .unwrap();
        let r = trailmark_model::input::to_value(&r.records[0]);
        assert_eq!(r["subjects"][0]["id"], "jenkins/org/app/main/7");
        let r = run(json!({"name": "app", "build": {"queue_id": 12, "phase": "QUEUED"}})).unwrap();
        let r = trailmark_model::input::to_value(&r.records[0]);
        assert_eq!(r["subjects"][0]["id"], "jenkins/app/queue/12");
        assert_eq!(
            job_path_from_url("http://h/job/a%20b/3/").as_deref(),
            Some("a b")
        );
        assert_eq!(job_path_from_url("JobUrl"), None);
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            run(json!({"name": "a"})),
            Err(IngestError::Schema { .. })
        ));
        assert!(matches!(
            run(json!({"name": "a", "build": {"phase": "STARTED"}})),
            Err(IngestError::Schema { .. })
        ));
        assert!(matches!(
            run(json!({"name": "a", "build": {"number": 1, "phase": "EXPLODED"}})),
            Err(IngestError::Event { .. })
        ));
        assert!(matches!(
            parse(b"{\"name\":", &Context::default()),
            Err(IngestError::Json { .. })
        ));
        let e = parse(b"\"id\",\"data\"\n1,\"{}\"\n", &Context::default()).unwrap_err();
        assert!(e.to_string().contains("not a Jenkins notification: CSV"));
        let _ =
            run(json!({"name": 1, "build": {"number": -1, "phase": 2, "artifacts": 5, "scm": []}}));
    }
}
