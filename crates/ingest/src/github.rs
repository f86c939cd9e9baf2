//! GitHub webhooks (the body of a delivery; the event name comes from `X-GitHub-Event` in
//! [`Context::event`], or is inferred from the payload's shape).
//!
//! Each record keeps a compact, normalized payload with the audit-relevant fields only: the raw
//! webhook is stored content-addressed beside the log, so nothing is lost by leaving out the
//! hundreds of URL fields GitHub sends.
//!
//! Relations used (`links`): `in_repo` (repo), `references` (ticket), `head` / `base` /
//! `merged_as` (PR commits), `reviews` (the commit a review looked at), `builds` (the commit a
//! check/workflow ran on), `part_of` (job → run, check run → suite), `for_pr`, `deploys`
//! (commit), `deployed_by` (deployment → build), `deploys_as` / `deploys_to` (job → deployment /
//! environment), `gates` (deployment review → waiting job), `previous` / `contains` (push),
//! `tags` (release → commit), `publishes` (release → artifact digest).

use serde_json::{Map, Value, json};

use crate::{Context, Draft, Format, IngestError, Parsed, Skipped};

const F: Format = Format::Github;

/// The events turned into evidence; any other event name is refused with [`IngestError::Event`].
const EVENTS: &[&str] = &[
    "push",
    "pull_request",
    "pull_request_review",
    "check_run",
    "check_suite",
    "workflow_run",
    "workflow_job",
    "status",
    "deployment",
    "deployment_status",
    "deployment_review",
    "deployment_protection_rule",
    "release",
    "branch_protection_rule",
    "repository_ruleset",
    "member",
];

/// Parses one GitHub webhook body.
pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    from_value(
        &parse_object_with(bytes, F, Some((unread_link, READ)))?,
        ctx,
    )
}

/// The records of a parsed GitHub body.
fn from_value(v: &Value, ctx: &Context) -> Result<Parsed, IngestError> {
    let event = match ctx.event.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => e.to_ascii_lowercase(),
        None => infer_event(v)
            .ok_or_else(|| {
                IngestError::schema(
                    F,
                    "not a recognizable GitHub webhook body (no `pull_request`, `commits`, `check_run`, \
                     `workflow_run`, `deployment`, `release`, ... object); pass the X-GitHub-Event name",
                )
            })?
            .to_owned(),
    };
    if !EVENTS.contains(&event.as_str()) {
        return Err(IngestError::Event { format: F, event });
    }
    let mut out = Out {
        ctx,
        parsed: Parsed::default(),
    };
    // Organization rulesets have no repository; everything else is scoped to one.
    if event == "repository_ruleset" && v.get("repository").is_none_or(Value::is_null) {
        ruleset(v, None, &mut out)?;
        return Ok(out.parsed);
    }
    let repo = Repo::of(v)?;
    match event.as_str() {
        "push" => push(v, &repo, &mut out)?,
        "pull_request" => pull_request(v, &repo, &mut out)?,
        "pull_request_review" => review(v, &repo, &mut out)?,
        "check_run" => check_run(v, &repo, &mut out)?,
        "check_suite" => check_suite(v, &repo, &mut out)?,
        "workflow_run" => workflow_run(v, &repo, &mut out)?,
        "workflow_job" => workflow_job(v, &repo, &mut out)?,
        "status" => status(v, &repo, &mut out)?,
        "deployment" | "deployment_status" => deployment(v, &repo, &event, &mut out)?,
        "deployment_review" => deployment_review(v, &repo, &mut out)?,
        "deployment_protection_rule" => protection_rule(v, &repo, &mut out)?,
        "release" => release(v, &repo, &mut out)?,
        "branch_protection_rule" => branch_protection(v, &repo, &mut out)?,
        "repository_ruleset" => ruleset(v, Some(&repo), &mut out)?,
        "member" => member(v, &repo, &mut out)?,
        _ => return Err(IngestError::Event { format: F, event }),
    }
    Ok(out.parsed)
}

/// Guesses the `X-GitHub-Event` name from the payload's top-level keys, for inputs saved without
/// their headers. The order matters: a `deployment_status` body also carries `deployment`,
/// `workflow_run` and `check_run`.
pub fn infer_event(v: &Value) -> Option<&'static str> {
    let has = |k: &str| v.get(k).is_some_and(|x| !x.is_null());
    let event = if has("deployment_callback_url") {
        "deployment_protection_rule"
    } else if has("deployment_status") {
        "deployment_status"
    } else if has("workflow_job") {
        "workflow_job"
    } else if has("workflow_job_run")
        || has("workflow_job_runs")
        || has("approver")
        || (has("reviewers") && has("workflow_run"))
    {
        "deployment_review"
    } else if has("deployment") {
        "deployment"
    } else if has("check_run") {
        "check_run"
    } else if has("check_suite") {
        "check_suite"
    } else if has("workflow_run") {
        "workflow_run"
    } else if has("pull_request") && has("review") {
        "pull_request_review"
    } else if has("pull_request") && has("comment") {
        "pull_request_review_comment"
    } else if has("pull_request") {
        "pull_request"
    } else if has("issue") && has("comment") {
        "issue_comment"
    } else if has("release") {
        "release"
    } else if has("rule") {
        "branch_protection_rule"
    } else if has("repository_ruleset") {
        "repository_ruleset"
    } else if has("member") && has("team") {
        "membership"
    } else if has("member") {
        "member"
    } else if has("pusher") || (has("ref") && has("before") && has("after") && has("commits")) {
        "push"
    } else if has("sha") && has("state") && has("context") {
        "status"
    } else if has("zen") || has("hook_id") {
        "ping"
    } else if has("issue") {
        "issues"
    } else if has("ref_type") {
        "create"
    } else {
        return None;
    };
    Some(event)
}

// ---------------------------------------------------------------------------------------------
// Helpers shared with the GitLab adapter.

/// Parses the body as a JSON object (a UTF-8 BOM is tolerated).
pub(crate) fn parse_object(bytes: &[u8], format: Format) -> Result<Value, IngestError> {
    parse_object_with(bytes, format, None)
}

/// The API-link members of GitHub objects (`hooks_url`, `followers_url`, … — about half of
/// every repository, user and organization object) that no handler reads. The raw body is kept
/// beside the records, so leaving them out of the parsed value loses nothing.
fn unread_link(key: &str) -> bool {
    const READ: &[&str] = &[
        "html_url",
        "target_url",
        "log_url",
        "environment_url",
        "deployment_callback_url",
    ];
    key.ends_with("_url") && !READ.contains(&key)
}

/// Which members of the objects of a body the parse keeps, by where they are: every member
/// (but those the skip predicate names), and the rules for some of them; or only the members
/// named. A member not kept is still checked for syntax, but costs no allocation.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Every member; those named are read with their own shape, the rest with [`Shape::ALL`].
    Within(&'static [(&'static str, Shape)]),
    /// Only the members named, each with its shape.
    Only(&'static [(&'static str, Shape)]),
}

impl Shape {
    const ALL: Shape = Shape::Within(&[]);

    /// The shape of member `key`, or `None` when it is not kept.
    fn member(self, key: &str) -> Option<Shape> {
        let find = |m: &[(&str, Shape)]| m.iter().find(|(k, _)| *k == key).map(|(_, s)| *s);
        match self {
            Shape::Within(m) => Some(find(m).unwrap_or(Shape::ALL)),
            Shape::Only(m) => find(m),
        }
    }
}

/// A repository object as the handlers read it: [`Repo::of`] and the PR id of another
/// repository's PR ([`pr_id`]).
const REPO: Shape = Shape::Only(&[
    ("full_name", Shape::ALL),
    ("name", Shape::ALL),
    ("html_url", Shape::ALL),
    ("pushed_at", Shape::ALL),
    (
        "owner",
        Shape::Only(&[("login", Shape::ALL), ("name", Shape::ALL)]),
    ),
]);

/// What the handlers read of the objects that make up most of a body: the delivery's
/// repository, sender and organization (two thirds of the shared fixtures' bytes with the
/// repositories of a PR's head and base), the PR and review of PR events, the users and apps
/// of runs, checks and deployments, and none of the installation, the enterprise or a workflow
/// run's repositories. The raw body is kept beside the records, so nothing is lost. A handler
/// that reads more of these objects must name it here: the pruned-parse test over the shared
/// fixtures fails until it does, where a fixture carries what it reads.
const READ: Shape = Shape::Within(&[
    ("repository", REPO),
    ("sender", LOGIN),
    (
        "organization",
        Shape::Only(&[("login", Shape::ALL), ("html_url", Shape::ALL)]),
    ),
    ("installation", Shape::Only(&[])),
    ("enterprise", Shape::Only(&[])),
    // `pull_request` and `pull_request_review`: the PR as `pull_request` and `review` read it
    // (not its `_links`, assignees, requested reviewers, body or the head's and base's users).
    (
        "pull_request",
        Shape::Only(&[
            ("number", Shape::ALL),
            ("title", Shape::ALL),
            ("state", Shape::ALL),
            ("draft", Shape::ALL),
            ("merged", Shape::ALL),
            ("merged_at", Shape::ALL),
            ("merged_by", LOGIN),
            ("merge_commit_sha", Shape::ALL),
            ("created_at", Shape::ALL),
            ("closed_at", Shape::ALL),
            ("updated_at", Shape::ALL),
            ("user", LOGIN),
            ("labels", Shape::ALL),
            ("html_url", Shape::ALL),
            ("head", BRANCH),
            ("base", BRANCH),
        ]),
    ),
    (
        "review",
        Shape::Only(&[
            ("id", Shape::ALL),
            ("state", Shape::ALL),
            ("user", LOGIN),
            ("author_association", Shape::ALL),
            ("commit_id", Shape::ALL),
            ("body", Shape::ALL),
            ("html_url", Shape::ALL),
            ("submitted_at", Shape::ALL),
        ]),
    ),
    (
        "workflow_run",
        Shape::Within(&[
            ("repository", Shape::Only(&[])),
            ("head_repository", Shape::Only(&[])),
            ("head_commit", Shape::Only(&[])),
            ("actor", LOGIN),
            ("triggering_actor", LOGIN),
        ]),
    ),
    (
        "check_run",
        Shape::Within(&[
            ("app", APP),
            ("check_suite", Shape::Within(&[("app", Shape::Only(&[]))])),
        ]),
    ),
    ("check_suite", Shape::Within(&[("app", APP)])),
    (
        "deployment",
        Shape::Within(&[
            ("creator", LOGIN),
            ("performed_via_github_app", Shape::Only(&[])),
        ]),
    ),
    (
        "deployment_status",
        Shape::Within(&[
            ("creator", LOGIN),
            ("performed_via_github_app", Shape::Only(&[])),
        ]),
    ),
]);

/// A user as the handlers read one: its login.
const LOGIN: Shape = Shape::Only(&[("login", Shape::ALL)]);

/// A PR's head or base: the branch, the commit and the repository.
const BRANCH: Shape = Shape::Only(&[("ref", Shape::ALL), ("sha", Shape::ALL), ("repo", REPO)]);

/// The GitHub App behind a check: its slug or name.
const APP: Shape = Shape::Only(&[("slug", Shape::ALL), ("name", Shape::ALL)]);

/// What a parse leaves out: the members whose key the predicate names, anywhere, and those the
/// shape does not keep.
type Prune = (fn(&str) -> bool, Shape);

/// [`parse_object`], skipping (still checking the syntax of) every object member `prune`
/// leaves out: each would cost allocations for a string nobody reads.
fn parse_object_with(
    bytes: &[u8],
    format: Format,
    prune: Option<Prune>,
) -> Result<Value, IngestError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    // UTF-8 is checked once for the whole body, so that the parser does not check it again
    // string by string (a quarter of parsing a GitHub body). A body that is not UTF-8 is parsed
    // as bytes, for the parser's own error, which says where.
    let v: Value = match std::str::from_utf8(bytes) {
        Ok(text) => parse_json(serde_json::Deserializer::from_str(text), prune),
        Err(_) => parse_json(serde_json::Deserializer::from_slice(bytes), prune),
    }
    .map_err(|e| IngestError::json(format, &e))?;
    if !v.is_object() {
        let found = match v {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(IngestError::schema(
            format,
            format!("expected a webhook body (a JSON object), found {found}"),
        ));
    }
    Ok(v)
}

/// The one JSON value `de` reads (nothing but whitespace may follow), pruned as `prune` says.
fn parse_json<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    prune: Option<Prune>,
) -> Result<Value, serde_json::Error> {
    let v = match prune {
        None => serde::Deserialize::deserialize(&mut de)?,
        Some((skip, shape)) => {
            serde::de::DeserializeSeed::deserialize(Pruned { skip, shape }, &mut de)?
        }
    };
    de.end()?;
    Ok(v)
}

/// A JSON value without the object members `skip` names or `shape` does not keep (see
/// [`parse_object_with`]).
#[derive(Clone, Copy)]
struct Pruned {
    skip: fn(&str) -> bool,
    shape: Shape,
}

impl<'de> serde::de::DeserializeSeed<'de> for Pruned {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Pruned {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        // Shapes name object members; an array's items are read whole.
        let item = Pruned {
            shape: Shape::ALL,
            ..self
        };
        while let Some(v) = seq.next_element_seed(item)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match self.shape.member(&key.0) {
                Some(shape) if !(self.skip)(&key.0) => {
                    let v = map.next_value_seed(Pruned { shape, ..self })?;
                    out.insert(key.0.into_owned(), v);
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// An object key, borrowed from the body when it has no escapes (checking a key that is then
/// skipped should not allocate).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The string at a JSON pointer, trimmed; `None` when absent, not a string, or blank.
pub(crate) fn text<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The value at a JSON pointer, `null` when absent (for payload building).
pub(crate) fn at(v: &Value, ptr: &str) -> Value {
    trailmark_model::json_at(v, ptr)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A full commit SHA, lowercased; `None` for short SHAs, branch names and the all-zero SHA
/// that stands for "no commit" (branch creation/deletion).
pub(crate) fn full_sha(s: Option<&str>) -> Option<String> {
    let s = s?.trim();
    let ok = (s.len() == 40 || s.len() == 64)
        && s.bytes().all(|b| b.is_ascii_hexdigit())
        && s.bytes().any(|b| b != b'0');
    ok.then(|| s.to_ascii_lowercase())
}

/// A timestamp as RFC 3339, accepting GitLab's `2021-02-25 21:23:34 UTC` and
/// `2021-04-28 21:50:00 +0200` forms and Unix seconds (GitHub's `pushed_at` in push events).
/// `None` when it cannot be read, so a bad time never refuses the evidence.
pub(crate) fn timestamp(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => n
            .as_i64()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map(|t| t.to_string()),
        Value::String(s) => timestamp_text(s.trim()),
        _ => None,
    }
}

fn timestamp_text(s: &str) -> Option<String> {
    if s.parse::<jiff::Timestamp>().is_ok() {
        return Some(s.to_owned());
    }
    let mut parts = s.split_whitespace();
    let (date, time, zone) = (parts.next()?, parts.next()?, parts.next().unwrap_or("Z"));
    if parts.next().is_some() {
        return None;
    }
    let zone = match zone {
        "UTC" | "Z" | "GMT" => "Z".to_owned(),
        // `+0200` → `+02:00`; `get` keeps odd (non-ASCII) input from panicking.
        z if (z.starts_with('+') || z.starts_with('-')) && z.len() == 5 => {
            format!("{}:{}", z.get(..3)?, z.get(3..)?)
        }
        z => z.to_owned(),
    };
    let candidate = format!("{date}T{time}{zone}");
    candidate
        .parse::<jiff::Timestamp>()
        .is_ok()
        .then_some(candidate)
}

/// Drops `null` members, so payloads only hold what the tool actually said.
pub(crate) fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

/// `host/path` of a web URL (`https://github.example.com/octo/hello` →
/// `github.example.com/octo/hello`), dropping credentials, a trailing `/` and `.git`.
pub(crate) fn host_path(url: &str) -> Option<(String, String)> {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, r)| r);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_ascii_lowercase();
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    (!host.is_empty()).then(|| (host, path.to_owned()))
}

/// Adds `references` links to the ticket keys found in `texts`.
pub(crate) fn with_tickets(mut d: Draft, ctx: &Context, texts: &[Option<&str>]) -> Draft {
    for t in texts.iter().flatten() {
        for key in ctx.tickets.find(t) {
            d = d.link("references", "ticket", key);
        }
    }
    d
}

/// Collects records; a record the model refuses (e.g. a subject id with control characters)
/// becomes a [`Skipped`] entry instead of refusing the whole delivery.
#[derive(Debug)]
pub(crate) struct Out<'a> {
    pub ctx: &'a Context,
    pub parsed: Parsed,
}

impl Out<'_> {
    pub fn push(&mut self, what: impl Into<String>, draft: Draft) {
        match draft.build() {
            Ok(r) => self.parsed.records.push(r),
            Err(reason) => self.parsed.skipped.push(Skipped {
                what: what.into(),
                reason,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// The repository a delivery is about: `host/owner/name`.
#[derive(Debug)]
struct Repo {
    id: String,
}

impl Repo {
    fn of(v: &Value) -> Result<Repo, IngestError> {
        let r = v
            .get("repository")
            .filter(|r| r.is_object())
            .ok_or_else(|| {
                IngestError::schema(
                    F,
                    "not a GitHub repository webhook: `repository` is missing",
                )
            })?;
        let full = text(r, "/full_name").map(str::to_owned).or_else(|| {
            let owner = text(r, "/owner/login").or_else(|| text(r, "/owner/name"))?;
            Some(format!("{owner}/{}", text(r, "/name")?))
        });
        let full =
            full.ok_or_else(|| IngestError::schema(F, "`repository.full_name` is missing"))?;
        Ok(Repo {
            id: format!("{}/{full}", host_of(r)),
        })
    }

    /// A PR id in this repository.
    fn pr(&self, number: &Value) -> Option<String> {
        number_text(number).map(|n| format!("{}#{n}", self.id))
    }
}

/// The GitHub host (github.com, or a GitHub Enterprise Server name) from `html_url`.
fn host_of(repo: &Value) -> String {
    text(repo, "/html_url")
        .and_then(host_path)
        .map_or_else(|| "github.com".to_owned(), |(h, _)| h)
}

/// A number (or numeric string) as text, for ids.
fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// `github:login` of the user object at `ptr`.
fn login(v: &Value, ptr: &str) -> Option<String> {
    text(v, &format!("{ptr}/login")).map(|l| format!("github:{l}"))
}

/// The user who triggered the delivery.
fn sender(v: &Value) -> Option<String> {
    login(v, "/sender")
}

/// The PR id of a `pull_request` object: the base repository's (where the PR lives) number,
/// falling back to the delivery's repository. `html_url` is not trusted: it can point elsewhere.
fn pr_id(pr: &Value, repo: &Repo) -> Option<String> {
    let number = pr.get("number")?;
    match (
        pr.pointer("/base/repo").filter(|r| r.is_object()),
        text(pr, "/base/repo/full_name"),
    ) {
        (Some(base), Some(full)) => {
            number_text(number).map(|n| format!("{}/{full}#{n}", host_of(base)))
        }
        _ => repo.pr(number),
    }
}

/// PR ids of the short `pull_requests` entries in checks and workflow runs, whose `url` is the
/// API URL `.../repos/owner/name/pulls/N` (the PR may live in another repository).
fn short_prs(list: Option<&Value>, repo: &Repo) -> Vec<String> {
    let host = repo.id.split('/').next().unwrap_or("github.com");
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let from_url = text(p, "/url").and_then(|u| {
                let (_, tail) = u.split_once("/repos/")?;
                let mut it = tail.split('/');
                let (owner, name, kind, n) = (it.next()?, it.next()?, it.next()?, it.next()?);
                (kind == "pulls").then(|| format!("{host}/{owner}/{name}#{n}"))
            });
            from_url.or_else(|| repo.pr(p.get("number")?))
        })
        .collect()
}

fn user_name(u: &Value) -> Value {
    compact(
        json!({"name": at(u, "/name"), "email": at(u, "/email"), "username": at(u, "/username")}),
    )
}

fn push(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let git_ref =
        text(v, "/ref").ok_or_else(|| IngestError::schema(F, "push: `ref` is missing"))?;
    let branch = git_ref.strip_prefix("refs/heads/");
    let commits: &[Value] = v
        .get("commits")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let mut ids = Vec::new();
    for (i, c) in commits.iter().enumerate() {
        let Some(id) = full_sha(text(c, "/id")) else {
            out.parsed.skipped.push(Skipped {
                what: format!("commit {} of the push", i + 1),
                reason: "no full commit SHA in `id`".into(),
            });
            continue;
        };
        ids.push(id.clone());
        let message = text(c, "/message");
        let actor = text(c, "/author/username")
            .map(|u| format!("github:{u}"))
            .or_else(|| text(c, "/author/email").map(|e| format!("email:{e}")));
        let d = Draft::new("github.commit")
            .subject("commit", &id)
            .link("in_repo", "repo", &repo.id)
            .actor(actor)
            .occurred_at(timestamp(c.get("timestamp")))
            .payload(compact(json!({
                "repo": repo.id,
                "ref": git_ref,
                "message": message,
                "author": user_name(c.get("author").unwrap_or(&Value::Null)),
                "committer": user_name(c.get("committer").unwrap_or(&Value::Null)),
                "distinct": at(c, "/distinct"),
                "url": at(c, "/url"),
            })));
        let d = with_tickets(d, out.ctx, &[message, branch]);
        out.push(format!("commit {id}"), d);
    }
    let mut d = Draft::new("github.push")
        .subject("repo", &repo.id)
        .subject_opt("commit", full_sha(text(v, "/after")))
        .link("in_repo", "repo", &repo.id)
        .link_opt("previous", "commit", full_sha(text(v, "/before")))
        .actor(sender(v).or_else(|| text(v, "/pusher/name").map(|n| format!("github:{n}"))))
        .occurred_at(
            timestamp(v.pointer("/repository/pushed_at"))
                .or_else(|| timestamp(v.pointer("/head_commit/timestamp"))),
        )
        .payload(compact(json!({
            "ref": git_ref,
            "before": at(v, "/before"),
            "after": at(v, "/after"),
            "created": at(v, "/created"),
            "deleted": at(v, "/deleted"),
            "forced": at(v, "/forced"),
            "base_ref": at(v, "/base_ref"),
            "compare": at(v, "/compare"),
            "pusher": user_name(v.get("pusher").unwrap_or(&Value::Null)),
            "sender": at(v, "/sender/login"),
            "commits": ids,
        })));
    for id in &ids {
        d = d.link("contains", "commit", id);
    }
    let d = with_tickets(d, out.ctx, &[branch]);
    out.push(format!("push to {git_ref}"), d);
    Ok(())
}

fn pull_request(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let pr = v
        .get("pull_request")
        .filter(|p| p.is_object())
        .ok_or_else(|| IngestError::schema(F, "pull_request: `pull_request` is missing"))?;
    let id = pr_id(pr, repo)
        .ok_or_else(|| IngestError::schema(F, "pull_request: `pull_request.number` is missing"))?;
    let action = text(v, "/action").unwrap_or("");
    let merged = pr.get("merged").and_then(Value::as_bool) == Some(true)
        || !pr.get("merged_at").is_none_or(Value::is_null);
    let when = match action {
        "opened" | "reopened" => timestamp(pr.get("created_at")),
        "closed" if merged => timestamp(pr.get("merged_at")),
        "closed" => timestamp(pr.get("closed_at")),
        _ => None,
    }
    .or_else(|| timestamp(pr.get("updated_at")));
    let title = text(pr, "/title");
    let head_ref = text(pr, "/head/ref");
    let labels: Vec<Value> = pr
        .get("labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("name").cloned())
        .collect();
    let d = Draft::new("github.pull_request")
        .subject("pr", &id)
        .link("in_repo", "repo", &repo.id)
        .link_opt("head", "commit", full_sha(text(pr, "/head/sha")))
        .link_opt("base", "commit", full_sha(text(pr, "/base/sha")))
        // Before the merge, `merge_commit_sha` is only GitHub's test merge: not evidence.
        .link_opt("merged_as", "commit", if merged { full_sha(text(pr, "/merge_commit_sha")) } else { None })
        .actor(sender(v))
        .occurred_at(when)
        .payload(compact(json!({
            "action": action,
            "number": at(pr, "/number"),
            "title": title,
            "state": at(pr, "/state"),
            "draft": at(pr, "/draft"),
            "merged": merged,
            "merged_at": at(pr, "/merged_at"),
            "merged_by": at(pr, "/merged_by/login"),
            "merge_commit_sha": if merged { at(pr, "/merge_commit_sha") } else { Value::Null },
            "author": at(pr, "/user/login"),
            "head": compact(json!({"ref": head_ref, "sha": at(pr, "/head/sha"), "repo": at(pr, "/head/repo/full_name")})),
            "base": compact(json!({"ref": at(pr, "/base/ref"), "sha": at(pr, "/base/sha")})),
            "before": at(v, "/before"),
            "after": at(v, "/after"),
            "requested_reviewer": v.pointer("/requested_reviewer/login").or_else(|| v.pointer("/requested_team/slug")).cloned(),
            "labels": labels,
            "url": at(pr, "/html_url"),
            "sender": at(v, "/sender/login"),
        })));
    let d = with_tickets(d, out.ctx, &[title, head_ref]);
    out.push(format!("pull request {id}"), d);
    Ok(())
}

fn review(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let pr = v.get("pull_request").filter(|p| p.is_object());
    let r = v
        .get("review")
        .filter(|r| r.is_object())
        .ok_or_else(|| IngestError::schema(F, "pull_request_review: `review` is missing"))?;
    let id = pr.and_then(|p| pr_id(p, repo)).ok_or_else(|| {
        IngestError::schema(F, "pull_request_review: `pull_request.number` is missing")
    })?;
    let title = pr.and_then(|p| text(p, "/title"));
    let head_ref = pr.and_then(|p| text(p, "/head/ref"));
    let d = Draft::new("github.pull_request_review")
        .subject("pr", &id)
        .link("in_repo", "repo", &repo.id)
        .link_opt("reviews", "commit", full_sha(text(r, "/commit_id")))
        .actor(login(r, "/user").or_else(|| sender(v)))
        .occurred_at(timestamp(r.get("submitted_at")))
        .payload(compact(json!({
            "action": at(v, "/action"),
            "review_id": at(r, "/id"),
            "state": at(r, "/state"),
            "reviewer": at(r, "/user/login"),
            "author_association": at(r, "/author_association"),
            "commit_id": at(r, "/commit_id"),
            "body": at(r, "/body"),
            "url": at(r, "/html_url"),
            "sender": at(v, "/sender/login"),
        })));
    let d = with_tickets(d, out.ctx, &[title, head_ref]);
    out.push(format!("review of {id}"), d);
    Ok(())
}

fn check_run(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let c = v
        .get("check_run")
        .filter(|c| c.is_object())
        .ok_or_else(|| IngestError::schema(F, "check_run: `check_run` is missing"))?;
    let id = c
        .get("id")
        .and_then(number_text)
        .ok_or_else(|| IngestError::schema(F, "check_run: `check_run.id` is missing"))?;
    let build = format!("{}/check-runs/{id}", repo.id);
    let mut d = Draft::new("github.check_run")
        .subject("build", &build)
        .link("in_repo", "repo", &repo.id)
        .link_opt("builds", "commit", full_sha(text(c, "/head_sha")))
        .link_opt(
            "part_of",
            "build",
            c.pointer("/check_suite/id")
                .and_then(number_text)
                .map(|s| format!("{}/check-suites/{s}", repo.id)),
        )
        .actor(sender(v))
        .occurred_at(timestamp(c.get("completed_at")).or_else(|| timestamp(c.get("started_at"))))
        .payload(compact(json!({
            "action": at(v, "/action"),
            "name": at(c, "/name"),
            "status": at(c, "/status"),
            "conclusion": at(c, "/conclusion"),
            "head_sha": at(c, "/head_sha"),
            "head_branch": at(c, "/check_suite/head_branch"),
            "app": c.pointer("/app/slug").or_else(|| c.pointer("/app/name")).cloned(),
            "started_at": at(c, "/started_at"),
            "completed_at": at(c, "/completed_at"),
            "requested_action": at(v, "/requested_action/identifier"),
            "url": at(c, "/html_url"),
            "sender": at(v, "/sender/login"),
        })));
    for pr in short_prs(c.get("pull_requests"), repo) {
        d = d.link("for_pr", "pr", pr);
    }
    out.push(format!("check run {build}"), d);
    Ok(())
}

fn check_suite(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let c = v
        .get("check_suite")
        .filter(|c| c.is_object())
        .ok_or_else(|| IngestError::schema(F, "check_suite: `check_suite` is missing"))?;
    let id = c
        .get("id")
        .and_then(number_text)
        .ok_or_else(|| IngestError::schema(F, "check_suite: `check_suite.id` is missing"))?;
    let build = format!("{}/check-suites/{id}", repo.id);
    let mut d = Draft::new("github.check_suite")
        .subject("build", &build)
        .link("in_repo", "repo", &repo.id)
        .link_opt("builds", "commit", full_sha(text(c, "/head_sha")))
        .actor(sender(v))
        .occurred_at(timestamp(c.get("updated_at")).or_else(|| timestamp(c.get("created_at"))))
        .payload(compact(json!({
            "action": at(v, "/action"),
            "status": at(c, "/status"),
            "conclusion": at(c, "/conclusion"),
            "head_sha": at(c, "/head_sha"),
            "head_branch": at(c, "/head_branch"),
            "before": at(c, "/before"),
            "after": at(c, "/after"),
            "app": c.pointer("/app/slug").or_else(|| c.pointer("/app/name")).cloned(),
            "sender": at(v, "/sender/login"),
        })));
    for pr in short_prs(c.get("pull_requests"), repo) {
        d = d.link("for_pr", "pr", pr);
    }
    out.push(format!("check suite {build}"), d);
    Ok(())
}

fn workflow_run(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let w = v
        .get("workflow_run")
        .filter(|w| w.is_object())
        .ok_or_else(|| IngestError::schema(F, "workflow_run: `workflow_run` is missing"))?;
    let id = w
        .get("id")
        .and_then(number_text)
        .ok_or_else(|| IngestError::schema(F, "workflow_run: `workflow_run.id` is missing"))?;
    let build = format!("{}/actions/runs/{id}", repo.id);
    let mut d = Draft::new("github.workflow_run")
        .subject("build", &build)
        .link("in_repo", "repo", &repo.id)
        .link_opt("builds", "commit", full_sha(text(w, "/head_sha")))
        .actor(
            login(w, "/triggering_actor")
                .or_else(|| login(w, "/actor"))
                .or_else(|| sender(v)),
        )
        .occurred_at(timestamp(w.get("updated_at")).or_else(|| timestamp(w.get("created_at"))))
        .payload(compact(json!({
            "action": at(v, "/action"),
            "name": at(w, "/name"),
            "workflow": w.get("path").or_else(|| v.pointer("/workflow/path")).cloned(),
            "workflow_id": at(w, "/workflow_id"),
            "run_number": at(w, "/run_number"),
            "run_attempt": at(w, "/run_attempt"),
            "event": at(w, "/event"),
            "status": at(w, "/status"),
            "conclusion": at(w, "/conclusion"),
            "head_branch": at(w, "/head_branch"),
            "head_sha": at(w, "/head_sha"),
            "actor": at(w, "/actor/login"),
            "triggering_actor": at(w, "/triggering_actor/login"),
            "run_started_at": at(w, "/run_started_at"),
            "url": at(w, "/html_url"),
        })));
    for pr in short_prs(w.get("pull_requests"), repo) {
        d = d.link("for_pr", "pr", pr);
    }
    out.push(format!("workflow run {build}"), d);
    Ok(())
}

fn workflow_job(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let j = v
        .get("workflow_job")
        .filter(|j| j.is_object())
        .ok_or_else(|| IngestError::schema(F, "workflow_job: `workflow_job` is missing"))?;
    let id = j
        .get("id")
        .and_then(number_text)
        .ok_or_else(|| IngestError::schema(F, "workflow_job: `workflow_job.id` is missing"))?;
    let build = format!("{}/actions/jobs/{id}", repo.id);
    let steps: Vec<Value> = j
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| compact(json!({"number": at(s, "/number"), "name": at(s, "/name"), "status": at(s, "/status"), "conclusion": at(s, "/conclusion")})))
        .collect();
    let deployment = v.get("deployment").filter(|d| d.is_object());
    let d = Draft::new("github.workflow_job")
        .subject("build", &build)
        .link("in_repo", "repo", &repo.id)
        .link_opt("builds", "commit", full_sha(text(j, "/head_sha")))
        .link_opt(
            "part_of",
            "build",
            j.get("run_id")
                .and_then(number_text)
                .map(|r| format!("{}/actions/runs/{r}", repo.id)),
        )
        .link_opt(
            "deploys_as",
            "deployment",
            deployment
                .and_then(|d| d.get("id"))
                .and_then(number_text)
                .map(|d| format!("{}/deployments/{d}", repo.id)),
        )
        .link_opt(
            "deploys_to",
            "environment",
            deployment.and_then(|d| text(d, "/environment")),
        )
        .actor(sender(v))
        .occurred_at(
            timestamp(j.get("completed_at"))
                .or_else(|| timestamp(j.get("started_at")))
                .or_else(|| timestamp(j.get("created_at"))),
        )
        .payload(compact(json!({
            "action": at(v, "/action"),
            "name": at(j, "/name"),
            "workflow_name": at(j, "/workflow_name"),
            "run_id": at(j, "/run_id"),
            "run_attempt": at(j, "/run_attempt"),
            "status": at(j, "/status"),
            "conclusion": at(j, "/conclusion"),
            "head_branch": at(j, "/head_branch"),
            "head_sha": at(j, "/head_sha"),
            "labels": at(j, "/labels"),
            "runner_name": at(j, "/runner_name"),
            "runner_group_name": at(j, "/runner_group_name"),
            "started_at": at(j, "/started_at"),
            "completed_at": at(j, "/completed_at"),
            "steps": steps,
            "environment": deployment.map(|d| at(d, "/environment")),
            "url": at(j, "/html_url"),
        })));
    out.push(format!("workflow job {build}"), d);
    Ok(())
}

fn status(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let sha = full_sha(text(v, "/sha"))
        .ok_or_else(|| IngestError::schema(F, "status: `sha` is missing"))?;
    let id = v
        .get("id")
        .and_then(number_text)
        .ok_or_else(|| IngestError::schema(F, "status: `id` is missing"))?;
    let build = format!("{}/statuses/{id}", repo.id);
    let branches: Vec<Value> = v
        .get("branches")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("name").cloned())
        .collect();
    let d = Draft::new("github.status")
        .subject("build", &build)
        .link("in_repo", "repo", &repo.id)
        .link("builds", "commit", &sha)
        .actor(sender(v))
        .occurred_at(timestamp(v.get("updated_at")).or_else(|| timestamp(v.get("created_at"))))
        .payload(compact(json!({
            "sha": sha,
            "state": at(v, "/state"),
            "context": at(v, "/context"),
            "description": at(v, "/description"),
            "target_url": at(v, "/target_url"),
            "branches": branches,
            "sender": at(v, "/sender/login"),
        })));
    out.push(format!("status {build}"), d);
    Ok(())
}

/// `deployment` (created) and `deployment_status` (state changes): subjects are the deployment
/// and its environment, the deployed commit is linked with `deploys`.
fn deployment(v: &Value, repo: &Repo, event: &str, out: &mut Out) -> Result<(), IngestError> {
    let dep = v
        .get("deployment")
        .filter(|d| d.is_object())
        .ok_or_else(|| IngestError::schema(F, format!("{event}: `deployment` is missing")))?;
    let dep_id = dep
        .get("id")
        .and_then(number_text)
        .map(|d| format!("{}/deployments/{d}", repo.id))
        .ok_or_else(|| IngestError::schema(F, format!("{event}: `deployment.id` is missing")))?;
    let st = v.get("deployment_status").filter(|s| s.is_object());
    if event == "deployment_status" && st.is_none() {
        return Err(IngestError::schema(
            F,
            "deployment_status: `deployment_status` is missing",
        ));
    }
    let env = st
        .and_then(|s| text(s, "/environment"))
        .or_else(|| text(dep, "/environment"));
    let run = v
        .pointer("/workflow_run/id")
        .and_then(number_text)
        .map(|r| format!("{}/actions/runs/{r}", repo.id));
    let deployment = compact(json!({
        "id": at(dep, "/id"),
        "ref": at(dep, "/ref"),
        "sha": at(dep, "/sha"),
        "task": at(dep, "/task"),
        "environment": at(dep, "/environment"),
        "original_environment": at(dep, "/original_environment"),
        "production_environment": at(dep, "/production_environment"),
        "transient_environment": at(dep, "/transient_environment"),
        "description": at(dep, "/description"),
        "creator": at(dep, "/creator/login"),
        "created_at": at(dep, "/created_at"),
    }));
    let d = Draft::new(&format!("github.{event}"))
        .subject("deployment", &dep_id)
        .subject_opt("environment", env)
        .link("in_repo", "repo", &repo.id)
        .link_opt("deploys", "commit", full_sha(text(dep, "/sha")))
        .link_opt("deployed_by", "build", run);
    let d = match st {
        Some(s) => d
            .actor(login(s, "/creator").or_else(|| sender(v)))
            .occurred_at(timestamp(s.get("updated_at")).or_else(|| timestamp(s.get("created_at"))))
            .payload(compact(json!({
                "action": at(v, "/action"),
                "state": at(s, "/state"),
                "environment": env,
                "environment_url": at(s, "/environment_url"),
                "target_url": at(s, "/target_url"),
                "log_url": at(s, "/log_url"),
                "description": at(s, "/description"),
                "creator": at(s, "/creator/login"),
                "deployment": deployment,
                "sender": at(v, "/sender/login"),
            }))),
        None => d
            .actor(login(dep, "/creator").or_else(|| sender(v)))
            .occurred_at(timestamp(dep.get("created_at")))
            .payload(compact(json!({
                "action": at(v, "/action"),
                "environment": env,
                "deployment": deployment,
                "workflow": at(v, "/workflow/path"),
                "sender": at(v, "/sender/login"),
            }))),
    };
    out.push(format!("{event} {dep_id}"), d);
    Ok(())
}

/// Approvals of deployments gated by environment protection rules: who asked, who approved or
/// rejected, for which environments and which workflow run (and so which commit).
fn deployment_review(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let action = text(v, "/action").unwrap_or("");
    let run = v.get("workflow_run").filter(|w| w.is_object());
    let mut jobs: Vec<&Value> = v
        .get("workflow_job_runs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if let Some(j) = v.get("workflow_job_run").filter(|j| j.is_object()) {
        jobs.push(j);
    }
    let mut envs: Vec<&str> = text(v, "/environment").into_iter().collect();
    for e in jobs.iter().filter_map(|j| text(j, "/environment")) {
        if !envs.contains(&e) {
            envs.push(e);
        }
    }
    if envs.is_empty() && run.is_none() {
        return Err(IngestError::schema(
            F,
            "deployment_review: neither `environment` nor `workflow_run` is present",
        ));
    }
    let mut d = Draft::new("github.deployment_review").link("in_repo", "repo", &repo.id);
    for e in &envs {
        d = d.subject("environment", e);
    }
    let run_id = run
        .and_then(|r| r.get("id"))
        .and_then(number_text)
        .map(|r| format!("{}/actions/runs/{r}", repo.id));
    d = d.subject_opt("build", run_id.as_deref());
    for j in &jobs {
        if let Some(id) = j.get("id").and_then(number_text) {
            d = d.link("gates", "build", format!("{}/actions/jobs/{id}", repo.id));
        }
    }
    let reviewers: Vec<Value> = v
        .get("reviewers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            compact(json!({
                "type": at(r, "/type"),
                "login": r.pointer("/reviewer/login").or_else(|| r.pointer("/reviewer/slug")).cloned(),
            }))
        })
        .collect();
    let job_summaries: Vec<Value> = jobs
        .iter()
        .map(|j| compact(json!({"id": at(j, "/id"), "name": at(j, "/name"), "environment": at(j, "/environment"), "status": at(j, "/status"), "conclusion": at(j, "/conclusion")})))
        .collect();
    let actor = match action {
        "approved" | "rejected" => login(v, "/approver"),
        "requested" => login(v, "/requestor"),
        _ => None,
    };
    let when = if action == "requested" {
        timestamp(v.get("since"))
    } else {
        None
    }
    .or_else(|| run.and_then(|r| timestamp(r.get("updated_at"))))
    .or_else(|| timestamp(v.get("since")));
    let d = d
        .link_opt(
            "deploys",
            "commit",
            run.and_then(|r| full_sha(text(r, "/head_sha"))),
        )
        .actor(actor.or_else(|| sender(v)))
        .occurred_at(when)
        .payload(compact(json!({
            "action": action,
            "environments": envs,
            "approver": at(v, "/approver/login"),
            "comment": at(v, "/comment"),
            "requestor": at(v, "/requestor/login"),
            "reviewers": reviewers,
            "since": at(v, "/since"),
            "workflow_run": run.map(|r| compact(json!({
                "id": at(r, "/id"),
                "name": at(r, "/name"),
                "head_branch": at(r, "/head_branch"),
                "head_sha": at(r, "/head_sha"),
                "status": at(r, "/status"),
            }))),
            "jobs": job_summaries,
            "sender": at(v, "/sender/login"),
        })));
    out.push(format!("deployment review ({action})"), d);
    Ok(())
}

/// A custom deployment protection rule asked to gate a deployment.
fn protection_rule(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let dep = v.get("deployment").filter(|d| d.is_object());
    let env = text(v, "/environment").or_else(|| dep.and_then(|d| text(d, "/environment")));
    let dep_id = dep
        .and_then(|d| d.get("id"))
        .and_then(number_text)
        .map(|d| format!("{}/deployments/{d}", repo.id));
    if env.is_none() && dep_id.is_none() {
        return Err(IngestError::schema(
            F,
            "deployment_protection_rule: neither `environment` nor `deployment` is present",
        ));
    }
    let sha = dep
        .and_then(|d| full_sha(text(d, "/sha")))
        .or_else(|| full_sha(text(v, "/sha")));
    let mut d = Draft::new("github.deployment_protection_rule")
        .subject_opt("deployment", dep_id)
        .subject_opt("environment", env)
        .link("in_repo", "repo", &repo.id)
        .link_opt("deploys", "commit", sha)
        .actor(sender(v))
        .occurred_at(dep.and_then(|d| {
            timestamp(d.get("updated_at")).or_else(|| timestamp(d.get("created_at")))
        }))
        // The callback URL carries a token: left out on purpose.
        .payload(compact(json!({
            "action": at(v, "/action"),
            "environment": env,
            "event": at(v, "/event"),
            "ref": dep.map(|d| at(d, "/ref")),
            "sha": dep.map(|d| at(d, "/sha")),
            "creator": dep.map(|d| at(d, "/creator/login")),
            "sender": at(v, "/sender/login"),
        })));
    for pr in short_prs(v.get("pull_requests"), repo) {
        d = d.link("for_pr", "pr", pr);
    }
    out.push("deployment protection rule", d);
    Ok(())
}

fn release(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let r = v
        .get("release")
        .filter(|r| r.is_object())
        .ok_or_else(|| IngestError::schema(F, "release: `release` is missing"))?;
    let tag = text(r, "/tag_name")
        .ok_or_else(|| IngestError::schema(F, "release: `release.tag_name` is missing"))?;
    let id = format!("{}@{tag}", repo.id);
    let assets: Vec<&Value> = r
        .get("assets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let mut d = Draft::new("github.release")
        .subject("release", &id)
        .link("in_repo", "repo", &repo.id)
        .link_opt("tags", "commit", full_sha(text(r, "/target_commitish")))
        .actor(sender(v))
        .occurred_at(timestamp(r.get("published_at")).or_else(|| timestamp(r.get("created_at"))));
    for a in &assets {
        if let Some(digest) = text(a, "/digest").filter(|s| s.contains(':')) {
            d = d.link("publishes", "artifact", digest);
        }
    }
    let asset_summaries: Vec<Value> = assets
        .iter()
        .map(|a| {
            compact(
                json!({"name": at(a, "/name"), "size": at(a, "/size"), "digest": at(a, "/digest")}),
            )
        })
        .collect();
    let changed: Vec<&String> = v
        .get("changes")
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let d = d.payload(compact(json!({
        "action": at(v, "/action"),
        "tag": tag,
        "name": at(r, "/name"),
        "target_commitish": at(r, "/target_commitish"),
        "draft": at(r, "/draft"),
        "prerelease": at(r, "/prerelease"),
        "author": at(r, "/author/login"),
        "created_at": at(r, "/created_at"),
        "published_at": at(r, "/published_at"),
        "assets": asset_summaries,
        "changed": changed,
        "url": at(r, "/html_url"),
    })));
    out.push(format!("release {id}"), d);
    Ok(())
}

/// A snapshot of a classic branch protection rule, so an auditor can show it was never off.
fn branch_protection(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let rule = v
        .get("rule")
        .filter(|r| r.is_object())
        .ok_or_else(|| IngestError::schema(F, "branch_protection_rule: `rule` is missing"))?;
    let d = Draft::new("github.branch_protection")
        .subject("repo", &repo.id)
        .actor(sender(v))
        .occurred_at(
            timestamp(rule.get("updated_at")).or_else(|| timestamp(rule.get("created_at"))),
        )
        .payload(compact(json!({
            "action": at(v, "/action"),
            "pattern": at(rule, "/name"),
            "rule": without(rule, &["node_id"]),
            "changes": at(v, "/changes"),
            "sender": at(v, "/sender/login"),
        })));
    out.push("branch protection rule", d);
    Ok(())
}

/// A snapshot of a repository (or organization) ruleset.
fn ruleset(v: &Value, repo: Option<&Repo>, out: &mut Out) -> Result<(), IngestError> {
    let rs = v
        .get("repository_ruleset")
        .filter(|r| r.is_object())
        .ok_or_else(|| {
            IngestError::schema(F, "repository_ruleset: `repository_ruleset` is missing")
        })?;
    let d = Draft::new("github.repository_ruleset");
    let d = match repo {
        Some(r) => d.subject("repo", &r.id),
        None => {
            let org = text(v, "/organization/login").ok_or_else(|| {
                IngestError::schema(
                    F,
                    "repository_ruleset: neither `repository` nor `organization` is present",
                )
            })?;
            let host = v
                .get("organization")
                .map_or_else(|| "github.com".to_owned(), host_of);
            d.subject("org", format!("{host}/{org}"))
        }
    };
    let d = d
        .actor(sender(v))
        .occurred_at(timestamp(rs.get("updated_at")).or_else(|| timestamp(rs.get("created_at"))))
        .payload(compact(json!({
            "action": at(v, "/action"),
            "name": at(rs, "/name"),
            "enforcement": at(rs, "/enforcement"),
            "ruleset": without(rs, &["node_id", "_links"]),
            "changes": at(v, "/changes"),
            "sender": at(v, "/sender/login"),
        })));
    out.push("repository ruleset", d);
    Ok(())
}

/// Who was given (or lost) access to the repository.
fn member(v: &Value, repo: &Repo, out: &mut Out) -> Result<(), IngestError> {
    let who = login(v, "/member")
        .ok_or_else(|| IngestError::schema(F, "member: `member.login` is missing"))?;
    let d = Draft::new("github.member")
        .subject("repo", &repo.id)
        .subject("person", &who)
        .actor(sender(v))
        .payload(compact(json!({
            "action": at(v, "/action"),
            "member": at(v, "/member/login"),
            "permission": v.pointer("/changes/permission/to").cloned(),
            "role_name": v.pointer("/changes/role_name/to").cloned(),
            "changes": at(v, "/changes"),
            "sender": at(v, "/sender/login"),
        })));
    out.push(format!("member {who}"), d);
    Ok(())
}

/// A copy of an object without some keys.
fn without(v: &Value, keys: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Skipping the API links no handler reads changes no record: every GitHub body in the
    /// shared fixtures gives exactly the same records (and skips) parsed whole and pruned.
    #[test]
    fn pruned_parsing_gives_the_records_of_the_whole_body() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/ingest/github");
        let mut files = Vec::new();
        let mut dirs = vec![root];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "json") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() >= 30, "{} GitHub fixtures", files.len());
        let mut compared = 0;
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let event = f
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .unwrap()
                .to_owned();
            for ctx in [ctx(&event), Context::default()] {
                let whole = parse_object(&bytes, F).and_then(|v| from_value(&v, &ctx));
                let pruned = parse(&bytes, &ctx);
                match (whole, pruned) {
                    (Ok(w), Ok(p)) => {
                        let json = |x: &Parsed| {
                            x.records
                                .iter()
                                .map(|r| format!("{r:?}"))
                                .collect::<Vec<_>>()
                        };
                        assert_eq!(json(&w), json(&p), "{}", f.display());
                        assert_eq!(w.skipped, p.skipped, "{}", f.display());
                        compared += 1;
                    }
                    (Err(w), Err(p)) => assert_eq!(w.to_string(), p.to_string()),
                    (w, p) => panic!("{}: whole {w:?}, pruned {p:?}", f.display()),
                }
            }
        }
        assert!(compared >= 30, "{compared} bodies compared");
        // The links really are left out.
        let v = parse_object_with(
            br#"{"repository": {"hooks_url": "h", "html_url": "x", "name": "n"}, "a": [{"b_url": 1}]}"#,
            F,
            Some((unread_link, READ)),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"repository": {"html_url": "x", "name": "n"}, "a": [{}]})
        );
        // ... and so are the members of the objects `READ` shapes that no handler reads, where
        // they are, and only there.
        let body = json!({
            "repository": {"id": 1, "full_name": "o/r", "owner": {"login": "o", "id": 2}, "topics": ["x"]},
            "sender": {"login": "s", "id": 3, "type": "User"},
            "organization": {"login": "o", "description": "d"},
            "installation": {"id": 4},
            "pull_request": {"number": 5, "id": 6, "head": {"sha": "h", "user": {"login": "x"}, "repo": {"full_name": "f/r", "id": 7}},
                "base": {"repo": {"html_url": "u", "fork": false}}, "user": {"login": "u", "id": 8},
                "_links": {"self": {"href": "h"}}, "labels": [{"name": "l", "id": 13}]},
            "review": {"id": 14, "user": {"login": "r", "id": 15}, "node_id": "n"},
            "workflow_run": {"id": 9, "repository": {"full_name": "o/r"}, "head_repository": 10, "actor": {"login": "a", "id": 16}},
            "check_run": {"repository": {"id": 11}, "app": {"slug": "s", "owner": {"login": "o"}},
                "check_suite": {"id": 17, "app": {"slug": "s"}}},
            "list": [{"repository": {"id": 12}}]
        });
        let v = parse_object_with(body.to_string().as_bytes(), F, Some((unread_link, READ)));
        assert_eq!(
            v.unwrap(),
            json!({
                "repository": {"full_name": "o/r", "owner": {"login": "o"}},
                "sender": {"login": "s"},
                "organization": {"login": "o"},
                "installation": {},
                "pull_request": {"number": 5, "head": {"sha": "h", "repo": {"full_name": "f/r"}},
                    "base": {"repo": {"html_url": "u"}}, "user": {"login": "u"},
                    "labels": [{"name": "l", "id": 13}]},
                "review": {"id": 14, "user": {"login": "r"}},
                "workflow_run": {"id": 9, "repository": {}, "head_repository": 10, "actor": {"login": "a"}},
                "check_run": {"repository": {"id": 11}, "app": {"slug": "s"}, "check_suite": {"id": 17, "app": {}}},
                "list": [{"repository": {"id": 12}}]
            })
        );
        // And a skipped member is still parsed: bad JSON there is still an error.
        let prune: Option<Prune> = Some((unread_link, READ));
        assert!(parse_object_with(br#"{"hooks_url": [1,}"#, F, prune).is_err());
        assert!(parse_object_with(br#"{"sender": {"id": [1,}}"#, F, prune).is_err());
        assert!(parse_object_with(br#"{"a": 1} x"#, F, prune).is_err());
    }

    const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    const SHA2: &str = "c4295bd74fb0f4fda03689c3df3f2803b658fd85";

    fn repo() -> Value {
        json!({"full_name": "octo/hello", "name": "hello", "owner": {"login": "octo"}, "html_url": "https://github.com/octo/hello"})
    }

    fn ctx(event: &str) -> Context {
        Context {
            event: Some(event.into()),
            ..Context::default()
        }
    }

    fn run(event: &str, body: Value) -> Vec<Value> {
        let parsed = parse(body.to_string().as_bytes(), &ctx(event)).unwrap();
        assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
        parsed
            .records
            .iter()
            .map(trailmark_model::input::to_value)
            .collect()
    }

    fn links(r: &Value, rel: &str) -> Vec<String> {
        r["links"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["rel"] == rel)
            .map(|l| l["to"]["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn invalid_inputs_are_refused_without_panicking() {
        let c = ctx("push");
        assert!(matches!(
            parse(b"{\"ref\": \"refs/heads/ma", &c),
            Err(IngestError::Json { .. })
        ));
        let e = parse(b"[1, 2]", &c).unwrap_err().to_string();
        assert!(e.contains("found an array"), "{e}");
        let e = parse(br#"{"ref": "refs/heads/main", "commits": []}"#, &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`repository` is missing"), "{e}");
        let e = parse(br#"{"repository": {"name": "x"}, "ref": "r"}"#, &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("full_name"), "{e}");
        let e = parse(
            br#"{"repository": {"full_name": "a/b"}}"#,
            &ctx("pull_request"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`pull_request` is missing"), "{e}");
        // Wrong types everywhere: still no panic, just a refusal or fewer fields.
        let odd = json!({"repository": {"full_name": "a/b"}, "ref": 7, "commits": {"x": 1}, "before": [], "after": {}});
        assert!(parse(odd.to_string().as_bytes(), &c).is_err());
        let odd = json!({"repository": {"full_name": "a/b"}, "ref": "refs/heads/x", "commits": [1, null, {"id": 5}]});
        let p = parse(odd.to_string().as_bytes(), &c).unwrap();
        assert_eq!((p.records.len(), p.skipped.len()), (1, 3));
        // Not UTF-8, in a string or outside one: the parser's own error, saying where.
        for bad in [
            &b"{\"ref\": \"a\xffb\"}"[..],
            b"{\"ref\": 1}\xff",
            b"\xef\xbb\xbf\xff{}",
        ] {
            let e = parse(bad, &c).unwrap_err();
            assert!(matches!(e, IngestError::Json { .. }), "{e:?}");
            assert!(e.to_string().contains("column"), "{e}");
        }
        // A byte-order mark before a UTF-8 body is still allowed.
        let push = json!({"repository": repo(), "ref": "refs/heads/main", "commits": []});
        let body = [&b"\xef\xbb\xbf"[..], push.to_string().as_bytes()].concat();
        assert!(parse(&body, &c).is_ok());
    }

    #[test]
    fn events_without_evidence_are_refused_by_name() {
        let body = json!({"zen": "Keep it logically awesome.", "hook_id": 1, "repository": repo()})
            .to_string();
        let e = parse(body.as_bytes(), &Context::default()).unwrap_err();
        assert_eq!(
            e,
            IngestError::Event {
                format: F,
                event: "ping".into()
            }
        );
        let e = parse(body.as_bytes(), &ctx("star")).unwrap_err();
        assert_eq!(e.to_string(), "github: unsupported event \"star\"");
        let e = parse(br#"{"hello": 1}"#, &Context::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("X-GitHub-Event"), "{e}");
    }

    #[test]
    fn the_event_is_inferred_from_the_shape() {
        let cases = [
            (
                json!({"ref": "r", "before": "a", "after": "b", "commits": []}),
                "push",
            ),
            (json!({"pull_request": {}, "number": 1}), "pull_request"),
            (
                json!({"pull_request": {}, "review": {}}),
                "pull_request_review",
            ),
            (
                json!({"deployment_status": {}, "deployment": {}, "check_run": {}, "workflow_run": {}}),
                "deployment_status",
            ),
            (json!({"deployment": {}, "workflow_run": {}}), "deployment"),
            (
                json!({"workflow_job": {}, "deployment": {}}),
                "workflow_job",
            ),
            (
                json!({"approver": {}, "workflow_run": {}}),
                "deployment_review",
            ),
            (
                json!({"deployment_callback_url": "u", "deployment": {}}),
                "deployment_protection_rule",
            ),
            (
                json!({"sha": "s", "state": "success", "context": "ci"}),
                "status",
            ),
            (json!({"rule": {}}), "branch_protection_rule"),
            (json!({"repository_ruleset": {}}), "repository_ruleset"),
            (json!({"member": {}, "action": "added"}), "member"),
            (json!({"release": {}}), "release"),
        ];
        for (v, want) in cases {
            assert_eq!(infer_event(&v), Some(want), "{v}");
        }
        assert_eq!(infer_event(&json!({"a": 1})), None);
    }

    #[test]
    fn tickets_come_from_messages_titles_and_branches() {
        let push = json!({
            "ref": "refs/heads/feature/PAY-7-login", "before": SHA2, "after": SHA, "forced": true,
            "repository": repo(), "sender": {"login": "mona"}, "pusher": {"name": "mona", "email": "m@x"},
            "commits": [{"id": SHA, "message": "PAY-142: fix rounding", "timestamp": "2024-01-02T03:04:05+01:00",
                         "author": {"name": "Mona", "email": "m@x", "username": "mona"}}]
        });
        let recs = run("push", push);
        assert_eq!(recs.len(), 2);
        assert_eq!(links(&recs[0], "references"), ["PAY-142", "PAY-7"]);
        assert_eq!(recs[0]["occurred_at"], "2024-01-02T02:04:05Z");
        assert_eq!(links(&recs[1], "references"), ["PAY-7"]);
        assert_eq!(links(&recs[1], "previous"), [SHA2]);
        assert_eq!(recs[1]["payload"]["forced"], true);

        let pr = json!({"action": "closed", "repository": repo(), "sender": {"login": "mona"}, "pull_request": {
            "number": 9, "title": "OPS-3 tidy", "merged": true, "merged_at": "2024-01-02T00:00:00Z",
            "merge_commit_sha": SHA2, "head": {"ref": "ABC-12-x", "sha": SHA}, "base": {"ref": "main", "sha": SHA2,
            "repo": {"full_name": "octo/hello", "html_url": "https://ghe.example.com/octo/hello"}}}});
        let recs = run("pull_request", pr);
        assert_eq!(recs[0]["subjects"][0]["id"], "ghe.example.com/octo/hello#9");
        assert_eq!(links(&recs[0], "merged_as"), [SHA2]);
        assert_eq!(links(&recs[0], "references"), ["OPS-3", "ABC-12"]);
        assert_eq!(recs[0]["occurred_at"], "2024-01-02T00:00:00Z");
    }

    #[test]
    fn status_events_are_builds_of_a_commit() {
        let body = json!({"id": 6, "sha": SHA, "state": "failure", "context": "ci/lint", "repository": repo(),
            "sender": {"login": "ci-bot"}, "updated_at": "2024-05-01T10:00:00Z", "branches": [{"name": "main"}]});
        let recs = run("status", body);
        assert_eq!(recs[0]["kind"], "github.status");
        assert_eq!(
            recs[0]["subjects"][0]["id"],
            "github.com/octo/hello/statuses/6"
        );
        assert_eq!(links(&recs[0], "builds"), [SHA]);
        assert_eq!(recs[0]["payload"]["branches"], json!(["main"]));
    }

    #[test]
    fn protection_snapshots_are_recorded() {
        let bp = json!({"action": "edited", "repository": repo(), "sender": {"login": "admin"},
            "rule": {"id": 1, "node_id": "x", "name": "main", "admin_enforced": false,
                     "required_approving_review_count": 2, "updated_at": "2024-05-01T10:00:00Z"},
            "changes": {"admin_enforced": {"from": true}}});
        let r = &run("branch_protection_rule", bp)[0];
        assert_eq!(r["kind"], "github.branch_protection");
        assert_eq!(r["payload"]["pattern"], "main");
        assert_eq!(r["payload"]["rule"]["required_approving_review_count"], 2);
        assert!(r["payload"]["rule"].get("node_id").is_none());
        assert_eq!(r["actor"], "github:admin");

        let rs = json!({"action": "deleted", "organization": {"login": "octo"}, "sender": {"login": "admin"},
            "repository_ruleset": {"id": 5, "name": "protect main", "enforcement": "active", "rules": [{"type": "deletion"}]}});
        let r = &run("repository_ruleset", rs.clone())[0];
        assert_eq!(
            r["subjects"][0],
            json!({"type": "org", "id": "github.com/octo"})
        );
        assert_eq!(r["payload"]["ruleset"]["rules"][0]["type"], "deletion");
        let mut with_repo = rs;
        with_repo["repository"] = repo();
        assert_eq!(
            run("repository_ruleset", with_repo)[0]["subjects"][0]["id"],
            "github.com/octo/hello"
        );
    }

    #[test]
    fn member_changes_name_the_person() {
        let body = json!({"action": "added", "member": {"login": "newbie"}, "repository": repo(),
            "sender": {"login": "admin"}, "changes": {"permission": {"to": "write"}}});
        let r = &run("member", body)[0];
        assert_eq!(
            r["subjects"][1],
            json!({"type": "person", "id": "github:newbie"})
        );
        assert_eq!(r["payload"]["permission"], "write");
    }

    #[test]
    fn deployment_approvals_name_the_approver_and_environments() {
        let body = json!({"action": "approved", "approver": {"login": "boss"}, "comment": "ship it",
            "environment": "production", "since": "2024-05-01T10:00:00Z", "repository": repo(), "sender": {"login": "boss"},
            "workflow_run": {"id": 42, "head_sha": SHA, "updated_at": "2024-05-01T10:05:00Z"},
            "workflow_job_runs": [{"id": 7, "environment": "production"}, {"id": 8, "environment": "eu-production"}]});
        let r = &run("deployment_review", body)[0];
        assert_eq!(r["actor"], "github:boss");
        assert_eq!(
            r["payload"]["environments"],
            json!(["production", "eu-production"])
        );
        assert_eq!(links(r, "deploys"), [SHA]);
        assert_eq!(
            r["subjects"][2]["id"],
            "github.com/octo/hello/actions/runs/42"
        );

        let rule = json!({"action": "requested", "environment": "production", "event": "deployment",
            "deployment_callback_url": "https://api.github.com/secret", "repository": repo(), "sender": {"login": "x"},
            "deployment": {"id": 3, "sha": SHA, "ref": "main", "created_at": "2024-05-01T10:00:00Z"}});
        let r = &run("deployment_protection_rule", rule)[0];
        assert_eq!(
            r["subjects"][0]["id"],
            "github.com/octo/hello/deployments/3"
        );
        assert_eq!(links(r, "deploys"), [SHA]);
        assert!(!r.to_string().contains("secret"));
    }

    #[test]
    fn release_assets_with_digests_are_linked() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let body = json!({"action": "published", "repository": repo(), "sender": {"login": "x"},
            "release": {"tag_name": "v1", "target_commitish": SHA, "assets": [{"name": "a.tgz", "digest": digest}]}});
        let r = &run("release", body)[0];
        assert_eq!(r["subjects"][0]["id"], "github.com/octo/hello@v1");
        assert_eq!(links(r, "tags"), [SHA]);
        assert_eq!(links(r, "publishes"), [digest]);
    }

    #[test]
    fn timestamps_are_normalized() {
        assert_eq!(
            timestamp_text("2021-02-25 21:23:34 UTC").as_deref(),
            Some("2021-02-25T21:23:34Z")
        );
        assert_eq!(
            timestamp_text("2021-04-28 21:50:00 +0200").as_deref(),
            Some("2021-04-28T21:50:00+02:00")
        );
        assert_eq!(
            timestamp_text("2019-05-15T15:19:25Z").as_deref(),
            Some("2019-05-15T15:19:25Z")
        );
        assert_eq!(timestamp_text("yesterday"), None);
        assert_eq!(timestamp_text("2021-02-25 21:23:34 +02€"), None);
        assert_eq!(
            timestamp(Some(&json!(1557933657))).as_deref(),
            Some("2019-05-15T15:20:57Z")
        );
        assert_eq!(
            full_sha(Some("0000000000000000000000000000000000000000")),
            None
        );
        assert_eq!(full_sha(Some("abc123")), None);
        assert_eq!(
            host_path("ssh://git@host:22/a/b.git/"),
            Some(("host:22".into(), "a/b".into()))
        );
    }
}
