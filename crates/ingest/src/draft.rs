//! Building records inside adapters. A [`Draft`] is turned into a [`NewRecord`] by the very
//! parser that checks user input (`trailmark_model::input::from_value`), so an adapter can
//! never produce a record a user could not have written.

use serde_json::{Map, Value, json};
use trailmark_model::NewRecord;

/// A record under construction.
#[derive(Clone, Debug)]
pub struct Draft {
    kind: String,
    subjects: Vec<Value>,
    links: Vec<Value>,
    actor: Option<String>,
    occurred_at: Option<String>,
    payload: Value,
    key: Option<String>,
}

impl Draft {
    pub fn new(kind: &str) -> Draft {
        Draft {
            kind: kind.to_owned(),
            subjects: Vec::new(),
            links: Vec::new(),
            actor: None,
            occurred_at: None,
            payload: Value::Object(Map::new()),
            key: None,
        }
    }

    /// Adds a subject; an empty id is ignored (tools often send "" for "none").
    pub fn subject(mut self, ty: &str, id: impl AsRef<str>) -> Draft {
        let id = id.as_ref().trim();
        if !id.is_empty() && !self.has_subject(ty, id) {
            self.subjects.push(json!({"type": ty, "id": id}));
        }
        self
    }

    pub fn subject_opt(self, ty: &str, id: Option<impl AsRef<str>>) -> Draft {
        match id {
            Some(id) => self.subject(ty, id),
            None => self,
        }
    }

    fn has_subject(&self, ty: &str, id: &str) -> bool {
        self.subjects
            .iter()
            .any(|s| s["type"] == ty && s["id"] == id)
    }

    /// Adds a link; an empty id is ignored, duplicates are dropped.
    pub fn link(mut self, rel: &str, ty: &str, id: impl AsRef<str>) -> Draft {
        let id = id.as_ref().trim();
        let link = json!({"rel": rel, "to": {"type": ty, "id": id}});
        if !id.is_empty() && !self.links.contains(&link) {
            self.links.push(link);
        }
        self
    }

    pub fn link_opt(self, rel: &str, ty: &str, id: Option<impl AsRef<str>>) -> Draft {
        match id {
            Some(id) => self.link(rel, ty, id),
            None => self,
        }
    }

    pub fn actor(mut self, actor: Option<impl Into<String>>) -> Draft {
        self.actor = actor
            .map(Into::into)
            .filter(|a: &String| !a.trim().is_empty());
        self
    }

    /// RFC 3339 time with offset, as the tool gave it (refused at build time if invalid).
    pub fn occurred_at(mut self, at: Option<impl Into<String>>) -> Draft {
        self.occurred_at = at.map(Into::into).filter(|s: &String| !s.is_empty());
        self
    }

    /// Milliseconds since the Unix epoch (Jira, Jenkins).
    pub fn occurred_at_millis(mut self, ms: Option<i64>) -> Draft {
        self.occurred_at = ms
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|t| t.to_string());
        self
    }

    /// The payload; floats anywhere in it are turned into their decimal text (signed evidence
    /// holds no floats), so adapters may pass tool output through.
    pub fn payload(mut self, payload: Value) -> Draft {
        self.payload = payload;
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Draft {
        self.key = Some(key.into());
        self
    }

    /// Validates the draft as if a user had written it.
    pub fn build(self) -> Result<NewRecord, String> {
        let mut doc = Map::new();
        doc.insert("kind".into(), Value::String(self.kind));
        doc.insert("subjects".into(), Value::Array(self.subjects));
        if !self.links.is_empty() {
            doc.insert("links".into(), Value::Array(self.links));
        }
        if let Some(a) = self.actor {
            doc.insert("actor".into(), Value::String(truncate(&a, 512)));
        }
        if let Some(t) = self.occurred_at {
            doc.insert("occurred_at".into(), Value::String(t));
        }
        if let Some(k) = self.key {
            doc.insert("idempotency_key".into(), Value::String(k));
        }
        // The payload is validated on its own and moved in afterwards: parsing it as part of the
        // document would deep-copy it, which was the largest cost of a git import.
        let payload = match sanitize(self.payload) {
            // As for user input: a null payload is no payload.
            Value::Null => Value::Object(Map::new()),
            p => p,
        };
        let mut record =
            trailmark_model::input::from_value(&Value::Object(doc)).map_err(|e| e.to_string())?;
        let mut pointer = String::from("/payload");
        trailmark_model::input::check_payload(&payload, &mut pointer).map_err(|e| e.to_string())?;
        record.payload = payload;
        Ok(record)
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Replaces floats and integers beyond ±(2^53−1) with their decimal text, recursively.
pub fn sanitize(v: Value) -> Value {
    const MAX: u64 = (1 << 53) - 1;
    match v {
        Value::Number(n) => {
            let safe = n
                .as_u64()
                .map(|u| u <= MAX)
                .or_else(|| n.as_i64().map(|i| i.unsigned_abs() <= MAX));
            if safe == Some(true) {
                Value::Number(n)
            } else {
                Value::String(n.to_string())
            }
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sanitize).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, sanitize(v))).collect()),
        other => other,
    }
}
