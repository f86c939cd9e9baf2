//! The JSON a user writes, parsed into a [`NewRecord`].
//!
//! Minimal form: `{"kind": "custom.note", "subjects": [{"type": "ticket", "id": "PROJ-1"}]}`.
//! Optional: `payload` (any JSON without floats), `occurred_at` (RFC 3339), `actor`, `source`,
//! `links` (`[{"rel": "implements", "to": {"type": "ticket", "id": "PROJ-1"}}]`),
//! `idempotency_key`. Unknown fields are refused, so a typo never silently drops evidence.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{FieldError, ModelError};
use crate::ids::{Kind, Rel, Timestamp};
use crate::json::check_numbers;
use crate::record::{Link, NewRecord, Subject, SubjectError};

const FIELDS: &[&str] = &[
    "kind",
    "subjects",
    "payload",
    "occurred_at",
    "actor",
    "source",
    "links",
    "idempotency_key",
];

/// Parses one record from its JSON text.
pub fn parse_record(text: &str) -> Result<NewRecord, ModelError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ModelError::Json(e.to_string()))?;
    from_value(&value).map_err(ModelError::Field)
}

/// A record in a multi-record input was refused; `item` says which (1-based line of JSON Lines,
/// or 1-based element of a JSON array).
#[derive(Debug)]
pub struct RecordsError {
    pub item: Item,
    pub error: ModelError,
}

/// Where in a multi-record input a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// The input as a whole (e.g. it is empty).
    Whole,
    /// 1-based line of JSON Lines input.
    Line(usize),
    /// 1-based element of a JSON array input.
    Element(usize),
}

impl fmt::Display for RecordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.item {
            Item::Whole => write!(f, "{}", self.error),
            Item::Line(n) => write!(f, "line {n}: {}", self.error),
            Item::Element(n) => write!(f, "record {n} of the array: {}", self.error),
        }
    }
}

impl std::error::Error for RecordsError {}

/// Parses one JSON record, a JSON array of records, or JSON Lines (one record per line; blank
/// lines ignored). All or nothing: the first bad record is reported and nothing is returned, so
/// a caller can never store half of an input.
pub fn parse_records(text: &str) -> Result<Vec<NewRecord>, RecordsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(RecordsError {
            item: Item::Whole,
            error: ModelError::Json("input is empty: expected a JSON record or JSON Lines".into()),
        });
    }
    // A whole-document parse first: a pretty-printed single record spans many lines.
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    from_value(v).map_err(|e| RecordsError {
                        item: Item::Element(i + 1),
                        error: ModelError::Field(e),
                    })
                })
                .collect(),
            other => from_value(&other)
                .map(|r| vec![r])
                .map_err(|e| RecordsError {
                    item: Item::Whole,
                    error: ModelError::Field(e),
                }),
        };
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| RecordsError {
            item: Item::Line(i + 1),
            error: ModelError::Json(e.to_string()),
        })?;
        out.push(from_value(&value).map_err(|e| RecordsError {
            item: Item::Line(i + 1),
            error: ModelError::Field(e),
        })?);
    }
    Ok(out)
}

/// "a string", "an array", ...: the JSON type of a value, for error messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string_field<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldError::WrongType {
            field: field.to_owned(),
            expected: "a string",
        }),
    }
}

fn text_field(
    obj: &Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    let Some(s) = string_field(obj, field)? else {
        return Ok(None);
    };
    if s.is_empty() {
        return Err(FieldError::Text {
            field,
            reason: "must not be empty (omit it instead)",
        });
    }
    if s.len() > max {
        return Err(FieldError::Text {
            field,
            reason: "is too long",
        });
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::Text {
            field,
            reason: "must not contain control characters",
        });
    }
    Ok(Some(s.to_owned()))
}

fn subject_at(v: &Value, field: String) -> Result<Subject, FieldError> {
    let Value::Object(obj) = v else {
        return Err(FieldError::WrongType {
            field,
            expected: "an object {\"type\": ..., \"id\": ...}",
        });
    };
    if let Some(k) = obj.keys().find(|k| *k != "type" && *k != "id") {
        return Err(FieldError::WrongType {
            field: format!("{field}.{k}"),
            expected: "absent (a subject has only `type` and `id`)",
        });
    }
    let ty = match obj.get("type") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(FieldError::WrongType {
                field: format!("{field}.type"),
                expected: "a string",
            });
        }
    };
    let id = match obj.get("id") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(FieldError::WrongType {
                field: format!("{field}.id"),
                expected: "a string",
            });
        }
    };
    Subject::parse(ty, id).map_err(|e| match e {
        SubjectError::Type(reason) => FieldError::SubjectType {
            field,
            value: ty.clone(),
            reason,
        },
        SubjectError::Id(reason) => FieldError::SubjectId { field, reason },
    })
}

/// Checks a payload by the rules `from_value` applies to the `payload` field (no floats, no
/// unsafe integers), for callers that attach a payload to an already parsed record.
pub fn check_payload(payload: &Value, pointer: &mut String) -> Result<(), FieldError> {
    check_numbers(payload, pointer)
}

/// Parses an already-decoded JSON value into a record.
pub fn from_value(value: &Value) -> Result<NewRecord, FieldError> {
    let Value::Object(obj) = value else {
        return Err(FieldError::NotAnObject {
            found: kind_of(value),
        });
    };
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(FieldError::Unknown(k.clone()));
    }
    check_numbers(value, &mut String::new())?;

    let kind_text = string_field(obj, "kind")?.ok_or(FieldError::Missing("kind"))?;
    let kind = Kind::parse(kind_text).map_err(|reason| FieldError::Kind {
        value: kind_text.to_owned(),
        reason,
    })?;

    let subjects = match obj.get("subjects") {
        None | Some(Value::Null) => return Err(FieldError::Missing("subjects")),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| subject_at(v, format!("subjects[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(FieldError::WrongType {
                field: "subjects".into(),
                expected: "an array of subjects",
            });
        }
    };
    if subjects.is_empty() {
        return Err(FieldError::NoSubjects);
    }

    let links = match obj.get("links") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let field = format!("links[{i}]");
                let Value::Object(link) = v else {
                    return Err(FieldError::WrongType {
                        field,
                        expected: "an object {\"rel\": ..., \"to\": {...}}",
                    });
                };
                if let Some(k) = link.keys().find(|k| *k != "rel" && *k != "to") {
                    return Err(FieldError::WrongType {
                        field: format!("{field}.{k}"),
                        expected: "absent (a link has only `rel` and `to`)",
                    });
                }
                let rel_text = match link.get("rel") {
                    Some(Value::String(s)) => s,
                    _ => {
                        return Err(FieldError::WrongType {
                            field: format!("{field}.rel"),
                            expected: "a string",
                        });
                    }
                };
                let rel = Rel::parse(rel_text).map_err(|reason| FieldError::Rel {
                    field: field.clone(),
                    value: rel_text.clone(),
                    reason,
                })?;
                let to = subject_at(
                    link.get("to").unwrap_or(&Value::Null),
                    format!("{field}.to"),
                )?;
                Ok(Link { rel, to })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(FieldError::WrongType {
                field: "links".into(),
                expected: "an array of links",
            });
        }
    };

    let occurred_at = match string_field(obj, "occurred_at")? {
        None => None,
        Some(s) => Some(
            Timestamp::parse_rfc3339(s).ok_or_else(|| FieldError::Timestamp {
                field: "occurred_at",
                value: s.to_owned(),
            })?,
        ),
    };

    Ok(NewRecord {
        kind,
        subjects,
        // `"payload": null` means no payload, like an absent field: the wire form has no way to
        // say "null" (found by the leaf round-trip property test).
        payload: match obj.get("payload") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v) => v.clone(),
        },
        occurred_at,
        actor: text_field(obj, "actor", 512)?,
        source: text_field(obj, "source", 512)?,
        links,
        idempotency_key: text_field(obj, "idempotency_key", 256)?,
    })
}

/// The input-shaped JSON of a record (what a user would have written to produce it). Used for
/// display and tests; not the signed form (see `wire`).
pub fn to_value(r: &NewRecord) -> Value {
    let subject = |s: &Subject| serde_json::json!({"type": s.ty.as_str(), "id": s.id});
    let mut m = Map::new();
    m.insert("kind".into(), Value::String(r.kind.to_string()));
    m.insert(
        "subjects".into(),
        Value::Array(r.subjects.iter().map(subject).collect()),
    );
    m.insert("payload".into(), r.payload.clone());
    if let Some(t) = r.occurred_at {
        m.insert("occurred_at".into(), Value::String(t.to_string()));
    }
    if let Some(a) = &r.actor {
        m.insert("actor".into(), Value::String(a.clone()));
    }
    if let Some(s) = &r.source {
        m.insert("source".into(), Value::String(s.clone()));
    }
    if !r.links.is_empty() {
        let links = r
            .links
            .iter()
            .map(|l| serde_json::json!({"rel": l.rel.as_str(), "to": subject(&l.to)}))
            .collect();
        m.insert("links".into(), Value::Array(links));
    }
    if let Some(k) = &r.idempotency_key {
        m.insert("idempotency_key".into(), Value::String(k.clone()));
    }
    Value::Object(m)
}
