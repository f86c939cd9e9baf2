//! CDEvents adapter (spec v0.3-v0.5, and v0.6 drafts: any 0.x spec; event type versions 0.x).
//!
//! Accepts a CDEvent (`{context, subject}`) or a CloudEvent in structured mode whose `data`
//! is one (or whose `type` is a CDEvents type and whose `data` holds the `subject`). One
//! record per event, kind `cdevents.<subject>_<predicate>`, e.g. `cdevents.service_deployed`.
//!
//! | subject | predicates | record subjects | links |
//! |---|---|---|---|
//! | pipelinerun, taskrun, build | queued, started, finished | `build:<source>/<id>` | build: `produces` → artifact |
//! | testsuiterun | queued, started, finished | `build:<source>/<id>` | `in` → environment |
//! | artifact | packaged, signed, published, downloaded, deleted | `artifact:sha256:..` (from the purl) and/or `component:<purl>` | |
//! | service | deployed, upgraded, rolledback, removed, published | `deployment:<source>/<id>`, `environment:<id>` | `deploys` → artifact |
//! | environment | created, modified, deleted | `environment:<id>` | |
//! | change | created, updated, reviewed, merged, abandoned | `pr:<host/repo>#<id>` | `in_repo` → repo, `implements` → tickets |
//! | incident | detected, reported, resolved | `incident:<source>/<id>` | `in` → environment, `affects` → artifact |
//! | approval (custom: `dev.cdevents.approval.*` or `dev.cdeventsx.<tool>-approval.*`) | requested, approved, rejected | `approval:<source>/<id>` | `approves` → artifact / pr / tickets, `in` → environment |
//!
//! `<source>` is the event source without URL scheme and outer slashes. The artifact of an
//! `artifactId` purl is `sha256:<hex>` when the purl's version (or `digest` qualifier) is a
//! digest, else `component:<purl>`. A spec or event version with a major other than 0 is
//! refused with [`IngestError::Version`].

use serde_json::{Value, json};

use crate::{Context, Draft, Format, IngestError, Parsed, Skipped};

const F: Format = Format::Cdevents;

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `source` without scheme and outer slashes, joined with `id`.
fn scoped(source: Option<&str>, id: &str) -> String {
    let src = source.unwrap_or("");
    let src = src.split_once("://").map_or(src, |(_, r)| r);
    let src = src.trim_matches('/');
    if src.is_empty() {
        id.to_owned()
    } else {
        format!("{src}/{id}")
    }
}

/// A change without a repository: `<source>#<id>`, or the bare id without a source.
fn pr_id(source: Option<&str>, id: &str) -> String {
    let base = scoped(source, "");
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        id.to_owned()
    } else {
        format!("{base}#{id}")
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'%')
            && let Some(h) = b.get(i + 1..i + 3)
            && let Ok(h) = std::str::from_utf8(h)
            && let Ok(x) = u8::from_str_radix(h, 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        if let Some(&c) = b.get(i) {
            out.push(c);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `algo:hex` when `s` is a digest (sha256/sha384/sha512/sha1 with the right hex length).
fn as_digest(s: &str) -> Option<String> {
    let (algo, hex) = s.split_once(':')?;
    let algo = algo.to_ascii_lowercase();
    let len = match algo.as_str() {
        "sha1" => 40,
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return None,
    };
    (hex.len() == len && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("{algo}:{}", hex.to_ascii_lowercase()))
}

/// The digest a package URL pins, from its version (`pkg:oci/app@sha256%3A...`) or its
/// `digest`/`checksum` qualifier.
pub(crate) fn purl_digest(purl: &str) -> Option<String> {
    let rest = purl.strip_prefix("pkg:")?;
    let (main, qualifiers) = match rest.split_once('?') {
        Some((m, q)) => (m, q.split('#').next().unwrap_or("")),
        None => (rest.split('#').next().unwrap_or(rest), ""),
    };
    if let Some((_, version)) = main.rsplit_once('@')
        && let Some(d) = as_digest(&percent_decode(version))
    {
        return Some(d);
    }
    qualifiers
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "digest" || *k == "checksum")
        .flat_map(|(_, v)| {
            percent_decode(v)
                .split(',')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find_map(|d| as_digest(&d))
}

/// `(type, id)` for an artifact reference: a digest, a purl pinned to a digest, or a purl.
fn artifact_ref(id: &str) -> Option<(&'static str, String)> {
    if let Some(d) = as_digest(id) {
        return Some(("artifact", d));
    }
    if let Some(d) = purl_digest(id) {
        return Some(("artifact", d));
    }
    id.starts_with("pkg:").then(|| ("component", id.to_owned()))
}

fn is_token(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn major(version: &str) -> Option<u64> {
    version
        .trim_start_matches('v')
        .split(['.', '-'])
        .next()?
        .parse()
        .ok()
}

const SUPPORTED: &[(&str, &[&str])] = &[
    ("pipelinerun", &["queued", "started", "finished"]),
    ("taskrun", &["started", "finished"]),
    ("build", &["queued", "started", "finished"]),
    ("testsuiterun", &["queued", "started", "finished"]),
    (
        "artifact",
        &["packaged", "signed", "published", "downloaded", "deleted"],
    ),
    (
        "service",
        &["deployed", "upgraded", "rolledback", "removed", "published"],
    ),
    ("environment", &["created", "modified", "deleted"]),
    (
        "change",
        &["created", "updated", "reviewed", "merged", "abandoned"],
    ),
    ("incident", &["detected", "reported", "resolved"]),
    ("approval", &["requested", "approved", "rejected"]),
];

/// `(subject, predicate, version)` from a CDEvents type.
fn split_type(ty: &str) -> Result<(String, String, String), IngestError> {
    let (custom, rest) = if let Some(r) = ty.strip_prefix("dev.cdevents.") {
        (false, r)
    } else if let Some(r) = ty.strip_prefix("dev.cdeventsx.") {
        (true, r)
    } else {
        return Err(IngestError::schema(
            F,
            format!(
                "context.type {ty:?} is not a CDEvents type (dev.cdevents.<subject>.<predicate>.<version>)"
            ),
        ));
    };
    let mut parts = rest.splitn(3, '.');
    let (Some(subject), Some(predicate), Some(version)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(IngestError::schema(
            F,
            format!("context.type {ty:?} lacks <subject>.<predicate>.<version>"),
        ));
    };
    // Custom events name the tool first: `dev.cdeventsx.<tool>-<subject>.<predicate>.<version>`.
    let subject = if custom {
        subject.rsplit_once('-').map_or(subject, |(_, s)| s)
    } else {
        subject
    };
    if custom && subject != "approval" {
        return Err(IngestError::Event {
            format: F,
            event: ty.to_owned(),
        });
    }
    Ok((subject.to_owned(), predicate.to_owned(), version.to_owned()))
}

pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let v: Value = serde_json::from_slice(bytes).map_err(|e| IngestError::json(F, &e))?;
    if !v.is_object() {
        return Err(IngestError::schema(F, "expected a JSON object (a CDEvent)"));
    }
    // A CloudEvent envelope: attributes at the top, the CDEvent (or its subject) in `data`.
    let data = v.get("data").filter(|d| d.is_object());
    let event = if v.get("context").is_some() {
        &v
    } else {
        data.unwrap_or(&v)
    };
    let envelope = |k: &str| {
        if v.get("specversion").is_some() {
            s(&v, &format!("/{k}"))
        } else {
            None
        }
    };
    let context = event.get("context").filter(|c| c.is_object());
    let cx = |k: &str| context.and_then(|c| s(c, &format!("/{k}")));
    let ty = cx("type")
        .or_else(|| envelope("type"))
        .ok_or_else(|| IngestError::schema(F, "missing context.type"))?;
    let spec = cx("specversion").or_else(|| cx("version"));
    if let Some(sv) = spec
        && major(sv) != Some(0)
    {
        return Err(IngestError::Version {
            format: F,
            version: format!("{sv} (CDEvents spec)"),
        });
    }
    let (subject_ty, predicate, version) = split_type(ty)?;
    if major(&version) != Some(0) {
        return Err(IngestError::Version {
            format: F,
            version: format!("{version} of {subject_ty}.{predicate}"),
        });
    }
    if !is_token(&subject_ty) || !is_token(&predicate) {
        return Err(IngestError::Event {
            format: F,
            event: ty.to_owned(),
        });
    }
    if !SUPPORTED
        .iter()
        .any(|(s, ps)| *s == subject_ty && ps.contains(&predicate.as_str()))
    {
        return Err(IngestError::Event {
            format: F,
            event: ty.to_owned(),
        });
    }
    let subject = event
        .get("subject")
        .filter(|s| s.is_object())
        .ok_or_else(|| IngestError::schema(F, "missing subject"))?;
    let id = s(subject, "/id").ok_or_else(|| IngestError::schema(F, "missing subject.id"))?;
    let source = s(subject, "/source")
        .or_else(|| cx("source"))
        .or_else(|| envelope("source"));
    let null = Value::Null;
    let content = subject.get("content").unwrap_or(&null);
    let c = |ptr: &str| s(content, ptr);
    let mut out = Parsed::default();

    let mut timestamp = cx("timestamp").or_else(|| envelope("time"));
    if let Some(t) = timestamp
        && t.parse::<jiff::Timestamp>().is_err()
    {
        out.skipped.push(Skipped {
            what: format!("context.timestamp {t:?}"),
            reason: "not an RFC 3339 time with offset; the record has no occurred_at".into(),
        });
        timestamp = None;
    }
    let actor = ["/user", "/author", "/approver", "/reviewer"]
        .iter()
        .find_map(|p| c(p));

    let kind = format!("cdevents.{subject_ty}_{predicate}");
    let payload = json!({
        "event_id": cx("id").or_else(|| envelope("id")),
        "type": ty,
        "spec_version": spec,
        "source": source,
        "chain_id": cx("chainId"),
        "subject_id": id,
        "subject_type": s(subject, "/type"),
        "content": content,
        "custom_data": event.get("customData").cloned().unwrap_or(Value::Null),
    });
    let mut d = Draft::new(&kind)
        .occurred_at(timestamp)
        .actor(actor)
        .payload(payload);
    let env = c("/environment/id");
    let artifact = c("/artifactId").and_then(artifact_ref);
    let commit = ctx
        .commit
        .as_deref()
        .filter(|c| (c.len() == 40 || c.len() == 64) && c.bytes().all(|b| b.is_ascii_hexdigit()));

    match subject_ty.as_str() {
        "pipelinerun" | "taskrun" | "build" | "testsuiterun" => {
            d = d.subject("build", scoped(source, id));
            if let Some((t, a)) = &artifact {
                d = d.link("produces", t, a);
            }
            let rel = if subject_ty == "testsuiterun" {
                "tests"
            } else {
                "builds"
            };
            d = d
                .link_opt(rel, "commit", commit)
                .link_opt("in", "environment", env);
        }
        "artifact" => {
            match artifact_ref(id) {
                Some(("artifact", dg)) => {
                    d = d.subject("artifact", dg);
                    if id.starts_with("pkg:") {
                        d = d.subject("component", id);
                    }
                }
                Some((_, purl)) => d = d.subject("component", purl),
                None => d = d.subject("component", id),
            }
            d = d.link_opt("built_from", "commit", commit);
        }
        "service" => {
            d = d
                .subject("deployment", scoped(source, id))
                .subject_opt("environment", env);
            if let Some((t, a)) = &artifact {
                d = d.link("deploys", t, a);
            }
        }
        "environment" => {
            d = d.subject("environment", id);
        }
        "change" => {
            let repo = c("/repository/id").map(|r| {
                let host = c("/repository/source")
                    .map(|s| s.split_once("://").map_or(s, |(_, r)| r).trim_matches('/'));
                match host {
                    Some(h) if !h.is_empty() => format!("{h}/{r}"),
                    _ => r.to_owned(),
                }
            });
            let pr = match &repo {
                Some(r) => format!("{r}#{id}"),
                None => pr_id(source, id),
            };
            d = d.subject("pr", pr).link_opt("in_repo", "repo", repo);
            for t in [c("/description"), c("/title"), Some(id)]
                .into_iter()
                .flatten()
                .flat_map(|t| ctx.tickets.find(t))
            {
                d = d.link("implements", "ticket", t);
            }
        }
        "incident" => {
            d = d
                .subject("incident", scoped(source, id))
                .link_opt("in", "environment", env);
            if let Some((t, a)) = &artifact {
                d = d.link("affects", t, a);
            }
        }
        _ => {
            // approval
            d = d
                .subject("approval", scoped(source, id))
                .link_opt("in", "environment", env);
            if let Some((t, a)) = &artifact {
                d = d.link("approves", t, a);
            }
            if let Some(ch) = c("/change/id") {
                let src = c("/change/source");
                d = d.link("approves", "pr", pr_id(src, ch));
            }
            for t in [c("/ticket"), c("/ticket/id"), c("/reason")]
                .into_iter()
                .flatten()
                .flat_map(|t| ctx.tickets.find(t))
            {
                d = d.link("approves", "ticket", t);
            }
        }
    }
    match d.build() {
        Ok(r) => out.records.push(r),
        Err(reason) => out.skipped.push(Skipped {
            what: format!("{ty} {id}"),
            reason,
        }),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(ty: &str, content: Value) -> Value {
        json!({
            "context": {"specversion": "0.5.0", "id": "e1", "source": "https://ci.example.com/", "type": ty,
                        "timestamp": "2024-01-02T03:04:05Z"},
            "subject": {"id": "run-1", "source": "https://ci.example.com/", "content": content}
        })
    }

    fn one(v: Value) -> Value {
        let p = parse(v.to_string().as_bytes(), &Context::default()).unwrap();
        assert_eq!(p.records.len(), 1, "{:?}", p.skipped);
        trailmark_model::input::to_value(&p.records[0])
    }

    fn err(v: Value) -> IngestError {
        parse(v.to_string().as_bytes(), &Context::default()).unwrap_err()
    }

    const OCI: &str =
        "pkg:oci/app@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427";
    const DIGEST: &str = "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427";

    #[test]
    fn purls() {
        assert_eq!(purl_digest(OCI).as_deref(), Some(DIGEST));
        let q = format!(
            "pkg:generic/app@1.0?checksum=sha1:{},sha256:{}",
            "a".repeat(40),
            "b".repeat(64)
        );
        assert_eq!(
            purl_digest(&q).as_deref(),
            Some(&*format!("sha1:{}", "a".repeat(40)))
        );
        assert_eq!(purl_digest("pkg:npm/x@1.2.3"), None);
        assert_eq!(purl_digest("pkg:npm/x@%zz"), None);
    }

    #[test]
    fn pipelinerun_queued_and_started() {
        for p in ["queued", "started"] {
            let r = one(ev(
                &format!("dev.cdevents.pipelinerun.{p}.0.2.0"),
                json!({"pipelineName": "p", "url": "u"}),
            ));
            assert_eq!(r["kind"], format!("cdevents.pipelinerun_{p}"));
            assert_eq!(
                r["subjects"][0],
                json!({"type": "build", "id": "ci.example.com/run-1"})
            );
            assert_eq!(r["occurred_at"], "2024-01-02T03:04:05Z");
        }
    }

    #[test]
    fn build_started_and_taskrun() {
        let r = one(ev("dev.cdevents.build.started.0.2.0", json!({})));
        assert_eq!(r["kind"], "cdevents.build_started");
        let r = one(ev(
            "dev.cdevents.taskrun.finished.0.2.0",
            json!({"outcome": "success"}),
        ));
        assert_eq!(r["payload"]["content"]["outcome"], "success");
    }

    #[test]
    fn service_rolledback_links_artifact_and_environment() {
        let r = one(ev(
            "dev.cdevents.service.rolledback.0.2.0",
            json!({"environment": {"id": "prod"}, "artifactId": OCI}),
        ));
        assert_eq!(r["kind"], "cdevents.service_rolledback");
        assert_eq!(r["subjects"][0]["type"], "deployment");
        assert_eq!(
            r["subjects"][1],
            json!({"type": "environment", "id": "prod"})
        );
        assert_eq!(
            r["links"][0],
            json!({"rel": "deploys", "to": {"type": "artifact", "id": DIGEST}})
        );
    }

    #[test]
    fn testsuiterun_started_environment_and_artifact_packaged() {
        let r = one(ev(
            "dev.cdevents.testsuiterun.started.0.2.0",
            json!({"environment": {"id": "dev"}}),
        ));
        assert_eq!(
            r["links"][0]["to"],
            json!({"type": "environment", "id": "dev"})
        );
        let mut v = ev("dev.cdevents.artifact.packaged.0.2.0", json!({}));
        v["subject"]["id"] = json!(OCI);
        let r = one(v);
        assert_eq!(r["subjects"][0], json!({"type": "artifact", "id": DIGEST}));
        assert_eq!(r["subjects"][1], json!({"type": "component", "id": OCI}));
    }

    #[test]
    fn incident_and_approval_and_change() {
        let r = one(ev(
            "dev.cdevents.incident.detected.0.1.0",
            json!({"environment": {"id": "prod"}, "artifactId": OCI, "description": "down"}),
        ));
        assert_eq!(r["kind"], "cdevents.incident_detected");
        assert_eq!(r["subjects"][0]["type"], "incident");
        let r = one(ev(
            "dev.cdeventsx.acme-approval.approved.0.1.0",
            json!({"approver": "alice", "artifactId": OCI, "ticket": "OPS-12", "environment": {"id": "prod"}}),
        ));
        assert_eq!(r["kind"], "cdevents.approval_approved");
        assert_eq!(r["actor"], "alice");
        assert!(r["links"].to_string().contains("OPS-12"));
        let r = one(ev(
            "dev.cdevents.change.created.0.3.0",
            json!({"description": "PAY-3 fix"}),
        ));
        assert_eq!(
            r["subjects"][0],
            json!({"type": "pr", "id": "ci.example.com#run-1"})
        );
        assert!(r["links"].to_string().contains("PAY-3"));
    }

    #[test]
    fn cloudevent_envelope() {
        let v = json!({"specversion": "1.0", "id": "x", "source": "/s", "type": "dev.cdevents.build.finished.0.1.0",
            "time": "2024-01-02T03:04:05Z", "data": {"subject": {"id": "b1", "content": {}}}});
        let r = one(v);
        assert_eq!(r["subjects"][0], json!({"type": "build", "id": "s/b1"}));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            err(ev("dev.cdevents.build.finished.1.0.0", json!({}))),
            IngestError::Version { .. }
        ));
        let mut v = ev("dev.cdevents.build.finished.0.1.0", json!({}));
        v["context"]["specversion"] = json!("1.0.0");
        assert!(matches!(err(v), IngestError::Version { .. }));
        assert!(matches!(
            err(ev("dev.cdevents.repository.created.0.1.0", json!({}))),
            IngestError::Event { .. }
        ));
        assert!(matches!(
            err(ev("dev.cdeventsx.acme-thing.done.0.1.0", json!({}))),
            IngestError::Event { .. }
        ));
        assert!(matches!(
            err(ev("com.example.x", json!({}))),
            IngestError::Schema { .. }
        ));
        assert!(matches!(
            err(json!({"context": {}})),
            IngestError::Schema { .. }
        ));
        let mut v = ev("dev.cdevents.build.finished.0.1.0", json!({}));
        v["subject"] = json!({"content": {}});
        assert!(err(v).to_string().contains("subject.id"));
        assert!(matches!(
            parse(b"{\"context\":", &Context::default()),
            Err(IngestError::Json { .. })
        ));
        let _ = parse(
            b"{\"context\": {\"type\": \"dev.cdevents.\"}, \"subject\": 1}",
            &Context::default(),
        );
        let _ = parse(
            b"{\"context\": {\"type\": \"dev.cdevents.a.b.c\"}, \"subject\": {\"id\": 3}}",
            &Context::default(),
        );
    }
}
