//! Jira adapter: Cloud and Server (Data Center) webhook bodies.
//!
//! | webhook | records |
//! |---|---|
//! | `jira:issue_created` | `jira.issue_created` + one `jira.transition` per `status` changelog item |
//! | `jira:issue_updated` | `jira.issue_updated` (changed fields) + `jira.transition` per status item (+ `jira.comment` when the update carries a comment) |
//! | `jira:issue_deleted` | `jira.issue_deleted` |
//! | `comment_created` / `comment_updated` / `comment_deleted` | `jira.comment` |
//!
//! Every record's subject is `ticket:<KEY>`. The actor is `jira:<accountId>` (Cloud) or
//! `jira:<name or key>` (Server); the raw display name and e-mail stay in the payload.
//! Old Server payloads without `issue_event_type_name` are read from `webhookEvent` alone.
//! A comment webhook without an issue key (old Server `comment_created`) is refused: there is
//! no ticket to attach it to. CSV exports of the REST API are refused (not a webhook).

use serde_json::{Map, Value, json};

use crate::{Context, Draft, Format, IngestError, Parsed, Skipped};

const F: Format = Format::Jira;

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `Some(string)` for strings, the decimal text of numbers, `None` otherwise.
fn text(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Number(n)) => Value::String(n.to_string()),
        _ => Value::Null,
    }
}

/// True when the input looks like CSV (a header row of quoted or bare column names).
pub(crate) fn looks_like_csv(bytes: &[u8]) -> bool {
    let t = String::from_utf8_lossy(bytes.get(..bytes.len().min(4096)).unwrap_or_default())
        .into_owned();
    let t = t.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return false;
    }
    let first = t.lines().next().unwrap_or("");
    first.contains(',')
        && (first.starts_with('"') || first.split(',').all(|c| !c.trim().is_empty()))
}

/// Who did it: the actor string and the raw user fields for the payload.
fn who(user: Option<&Value>) -> (Option<String>, Value) {
    let Some(u) = user.filter(|u| u.is_object()) else {
        return (None, Value::Null);
    };
    let id = s(u, "/accountId")
        .or_else(|| s(u, "/name"))
        .or_else(|| s(u, "/key"));
    let raw = json!({
        "account_id": text(u.get("accountId")),
        "name": text(u.get("name")),
        "key": text(u.get("key")),
        "display_name": text(u.get("displayName")),
        "email": text(u.get("emailAddress")),
    });
    (id.map(|i| format!("jira:{i}")), raw)
}

/// A snapshot of the issue's main fields.
fn issue_summary(issue: &Value) -> Value {
    let names = |ptr: &str| -> Value {
        match issue.pointer(ptr) {
            Some(Value::Array(a)) => Value::Array(
                a.iter()
                    .filter_map(|x| {
                        x.as_str()
                            .or_else(|| s(x, "/name"))
                            .map(|n| Value::String(n.to_owned()))
                    })
                    .collect(),
            ),
            _ => Value::Null,
        }
    };
    json!({
        "id": text(issue.get("id")),
        "key": text(issue.get("key")),
        "project": text(issue.pointer("/fields/project/key")),
        "type": text(issue.pointer("/fields/issuetype/name")),
        "summary": text(issue.pointer("/fields/summary")),
        "status": text(issue.pointer("/fields/status/name")),
        "resolution": text(issue.pointer("/fields/resolution/name")),
        "priority": text(issue.pointer("/fields/priority/name")),
        "fix_versions": names("/fields/fixVersions"),
        "labels": names("/fields/labels"),
        "components": names("/fields/components"),
        "security_level": text(issue.pointer("/fields/security/name")),
    })
}

fn is_status(item: &Value) -> bool {
    s(item, "/fieldId") == Some("status")
        || (s(item, "/fieldId").is_none()
            && s(item, "/field").is_some_and(|f| f.eq_ignore_ascii_case("status")))
}

fn change(item: &Value) -> Value {
    json!({
        "field": text(item.get("field")),
        "field_id": text(item.get("fieldId")),
        "field_type": text(item.get("fieldtype")),
        "from": text(item.get("from")),
        "from_string": text(item.get("fromString")),
        "to": text(item.get("to")),
        "to_string": text(item.get("toString")),
    })
}

/// The payload key a release-relevant field change is also filed under, if any.
fn grouped_key(item: &Value) -> Option<&'static str> {
    let id = s(item, "/fieldId")
        .or_else(|| s(item, "/field"))
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = s(item, "/field").unwrap_or("").to_ascii_lowercase();
    match (id.as_str(), name.as_str()) {
        ("fixversions", _) | (_, "fix version") => Some("fix_versions"),
        ("versions", _) | (_, "version") => Some("affects_versions"),
        ("labels", _) => Some("labels"),
        ("components", _) | (_, "component") => Some("components"),
        ("sprint", _) | (_, "sprint") => Some("sprint"),
        ("resolution", _) => Some("resolution"),
        ("assignee", _) => Some("assignee"),
        _ => None,
    }
}

fn push(out: &mut Parsed, what: String, draft: Draft) {
    match draft.build() {
        Ok(r) => out.records.push(r),
        Err(reason) => out.skipped.push(Skipped { what, reason }),
    }
}

pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    if looks_like_csv(bytes) {
        return Err(IngestError::schema(
            F,
            "not a Jira webhook: CSV (a table export of Jira REST data); send the webhook JSON body instead",
        ));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let v: Value = serde_json::from_slice(bytes).map_err(|e| IngestError::json(F, &e))?;
    let Some(obj) = v.as_object() else {
        return Err(IngestError::schema(
            F,
            "expected a JSON object (a Jira webhook body)",
        ));
    };
    let type_name = s(&v, "/issue_event_type_name");
    let event: String = match s(&v, "/webhookEvent")
        .map(str::to_owned)
        .or_else(|| ctx.event.clone())
    {
        Some(e) => e,
        None => match type_name {
            Some("issue_created") => "jira:issue_created".into(),
            Some("issue_deleted") => "jira:issue_deleted".into(),
            Some(_) => "jira:issue_updated".into(),
            None => {
                return Err(IngestError::schema(
                    F,
                    "missing webhookEvent (and issue_event_type_name)",
                ));
            }
        },
    };
    let ms = v.get("timestamp").and_then(Value::as_i64);
    let issue = obj.get("issue").filter(|i| i.is_object());
    let key = issue.and_then(|i| s(i, "/key")).map(str::to_owned);
    let mut out = Parsed::default();

    match event.as_str() {
        "jira:issue_created" | "jira:issue_updated" | "jira:issue_deleted" => {
            let issue =
                issue.ok_or_else(|| IngestError::schema(F, format!("{event}: missing issue")))?;
            let key =
                key.ok_or_else(|| IngestError::schema(F, format!("{event}: missing issue.key")))?;
            let (actor, user) = who(obj.get("user"));
            let items: Vec<&Value> = match v.pointer("/changelog/items") {
                Some(Value::Array(a)) => a.iter().collect(),
                _ => Vec::new(),
            };
            let changelog_id = text(v.pointer("/changelog/id"));
            let kind = match event.as_str() {
                "jira:issue_created" => "jira.issue_created",
                "jira:issue_deleted" => "jira.issue_deleted",
                _ => "jira.issue_updated",
            };
            let mut payload = Map::new();
            payload.insert("webhook_event".into(), Value::String(event.clone()));
            payload.insert("event_type".into(), text(obj.get("issue_event_type_name")));
            payload.insert("issue".into(), issue_summary(issue));
            payload.insert("user".into(), user.clone());
            if kind != "jira.issue_deleted" {
                let fields: Vec<Value> = items
                    .iter()
                    .filter_map(|i| s(i, "/field").map(|f| Value::String(f.to_owned())))
                    .collect();
                payload.insert("changelog_id".into(), changelog_id.clone());
                payload.insert("changed_fields".into(), Value::Array(fields));
                payload.insert(
                    "changes".into(),
                    Value::Array(items.iter().map(|i| change(i)).collect()),
                );
                for item in &items {
                    if let Some(g) = grouped_key(item) {
                        payload.insert(
                            g.into(),
                            json!({"from": text(item.get("fromString")), "to": text(item.get("toString"))}),
                        );
                    }
                }
            }
            let draft = Draft::new(kind)
                .subject("ticket", &key)
                .actor(actor.clone())
                .occurred_at_millis(ms)
                .payload(Value::Object(payload));
            push(&mut out, format!("{event} {key}"), draft);

            if kind != "jira.issue_deleted" {
                let resolution = items
                    .iter()
                    .find(|i| s(i, "/fieldId").or_else(|| s(i, "/field")) == Some("resolution"))
                    .map(|i| text(i.get("toString")))
                    .unwrap_or(Value::Null);
                for (n, item) in items.iter().enumerate().filter(|(_, i)| is_status(i)) {
                    let payload = json!({
                        "issue": key,
                        "from": text(item.get("fromString")),
                        "to": text(item.get("toString")),
                        "from_id": text(item.get("from")),
                        "to_id": text(item.get("to")),
                        "resolution": resolution,
                        "changelog_id": changelog_id,
                        "event_type": text(obj.get("issue_event_type_name")),
                        "user": user,
                    });
                    let draft = Draft::new("jira.transition")
                        .subject("ticket", &key)
                        .actor(actor.clone())
                        .occurred_at_millis(ms)
                        .payload(payload);
                    push(
                        &mut out,
                        format!("changelog item {n} (status) of {key}"),
                        draft,
                    );
                }
            }
            if let Some(c) = obj.get("comment").filter(|c| c.is_object()) {
                let action = match type_name {
                    Some("issue_comment_edited") => "updated",
                    Some("issue_comment_deleted") => "deleted",
                    _ => "created",
                };
                comment(&mut out, ctx, c, &key, action, &event, ms);
            }
        }
        "comment_created" | "comment_updated" | "comment_deleted" => {
            let c = obj
                .get("comment")
                .filter(|c| c.is_object())
                .ok_or_else(|| IngestError::schema(F, format!("{event}: missing comment")))?;
            let Some(key) = key else {
                return Err(IngestError::schema(
                    F,
                    format!(
                        "{event}: missing issue.key (old Jira Server comment webhooks omit the issue; no ticket to attach the comment to)"
                    ),
                ));
            };
            let action = event.trim_start_matches("comment_");
            comment(&mut out, ctx, c, &key, action, &event, ms);
        }
        other => {
            return Err(IngestError::Event {
                format: F,
                event: other.to_owned(),
            });
        }
    }
    Ok(out)
}

fn comment(
    out: &mut Parsed,
    ctx: &Context,
    c: &Value,
    key: &str,
    action: &str,
    event: &str,
    ms: Option<i64>,
) {
    let author = if action == "updated" {
        c.get("updateAuthor").or_else(|| c.get("author"))
    } else {
        c.get("author")
    };
    let (actor, user) = who(author);
    let body = c
        .get("body")
        .and_then(Value::as_str)
        .map(|b| b.chars().take(4096).collect::<String>());
    let payload = json!({
        "webhook_event": event,
        "action": action,
        "issue": key,
        "comment_id": text(c.get("id")),
        "author": user,
        "body": body,
        "created": text(c.get("created")),
        "updated": text(c.get("updated")),
    });
    let mut draft = Draft::new("jira.comment")
        .subject("ticket", key)
        .actor(actor)
        .occurred_at_millis(ms);
    // Other tickets the comment names ("blocked by OPS-7") are linked, not the ticket itself.
    for t in body
        .as_deref()
        .map(|b| ctx.tickets.find(b))
        .unwrap_or_default()
    {
        if t != key {
            draft = draft.link("mentions", "ticket", t);
        }
    }
    let draft = draft.payload(payload);
    push(out, format!("comment on {key}"), draft);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(v: Value) -> Result<Parsed, IngestError> {
        parse(v.to_string().as_bytes(), &Context::default())
    }

    #[test]
    fn server_payload_without_event_type_name_and_truncated_json() {
        let p = run(json!({
            "timestamp": 1_565_752_078_358_i64,
            "webhookEvent": "jira:issue_updated",
            "user": {"name": "admin", "key": "admin", "displayName": "A"},
            "issue": {"key": "OPS-1", "fields": {}},
            "changelog": {"id": "1", "items": [{"field": "status", "fromString": "Open", "toString": "Approved"}]}
        }))
        .unwrap();
        assert_eq!(p.records.len(), 2);
        let t = trailmark_model::input::to_value(&p.records[1]);
        assert_eq!(t["kind"], "jira.transition");
        assert_eq!(t["actor"], "jira:admin");
        assert_eq!(t["payload"]["to"], "Approved");
        assert!(matches!(
            parse(b"{\"webhookEvent\": ", &Context::default()),
            Err(IngestError::Json { .. })
        ));
        assert!(matches!(
            run(json!([1, 2])),
            Err(IngestError::Schema { .. })
        ));
        assert!(matches!(
            run(json!({"webhookEvent": "sprint_started"})),
            Err(IngestError::Event { .. })
        ));
        assert!(matches!(
            run(json!({"webhookEvent": "jira:issue_updated", "issue": {}})),
            Err(IngestError::Schema { .. })
        ));
    }

    #[test]
    fn comments_link_mentioned_tickets_and_old_server_comments_are_refused() {
        let p = run(json!({"webhookEvent": "comment_updated", "timestamp": 1,
            "issue": {"key": "PAY-1"},
            "comment": {"id": "9", "body": "PAY-1 waits for OPS-7", "author": {"accountId": "a"}, "updateAuthor": {"accountId": "b"}}}))
        .unwrap();
        let r = trailmark_model::input::to_value(&p.records[0]);
        assert_eq!(r["kind"], "jira.comment");
        assert_eq!(r["actor"], "jira:b");
        assert_eq!(
            r["links"],
            json!([{"rel": "mentions", "to": {"type": "ticket", "id": "OPS-7"}}])
        );
        let e =
            run(json!({"webhookEvent": "comment_created", "comment": {"id": "1"}})).unwrap_err();
        assert!(e.to_string().contains("missing issue.key"));
    }

    #[test]
    fn csv_is_refused() {
        let e = parse(
            b"\"id\",\"params\",\"data\"\n1,\"{}\",\"{}\"\n",
            &Context::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a Jira webhook: CSV"), "{e}");
    }

    #[test]
    fn odd_shapes_never_panic() {
        for v in [
            json!({"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1"}, "changelog": {"items": [1, null, {"field": 3}]}}),
            json!({"webhookEvent": "comment_created", "issue": {"key": "A-1"}, "comment": {"author": 5}}),
            json!({"issue_event_type_name": "issue_created", "issue": {"key": "A-1"}, "user": "x", "timestamp": "x"}),
            json!({"webhookEvent": 7}),
        ] {
            let _ = run(v);
        }
    }
}
