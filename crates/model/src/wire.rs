//! The stored, signed form of a record (version 1).
//!
//! `encode_leaf` is the only producer of leaf bytes: the RFC 8785 canonical JSON of [`LeafV1`].
//! These structs are deliberately separate from the domain types: renaming a domain field must
//! not change a single signed byte (the snapshot tests in `tests/model.rs` pin the bytes).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ModelError;
use crate::ids::{Digest, Kind, LogIndex, Rel, Timestamp};
use crate::json::{canonical_bytes, write_string};
use crate::record::{Link, Payload, Record, Subject};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeafV1<P> {
    v: u32,
    index: u64,
    recorded_at: String,
    kind: String,
    subjects: Vec<SubjectV1>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    payload: Option<P>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    payload_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    payload_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    occurred_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    source: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    links: Vec<LinkV1>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    idempotency_key: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectV1 {
    #[serde(rename = "type")]
    ty: String,
    id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkV1 {
    rel: String,
    to: SubjectV1,
}

/// [`LeafV1`] as [`decode_leaf`] reads it: the same fields and rules, with the strings that are
/// parsed into other types borrowed from the leaf bytes instead of copied first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeafIn<'a> {
    v: u32,
    index: u64,
    #[serde(borrow)]
    recorded_at: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    subjects: Vec<SubjectIn<'a>>,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default, borrow)]
    payload_digest: Option<Cow<'a, str>>,
    #[serde(default)]
    payload_size: Option<u64>,
    #[serde(default, borrow)]
    occurred_at: Option<Cow<'a, str>>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default, borrow)]
    links: Vec<LinkIn<'a>>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectIn<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkIn<'a> {
    #[serde(borrow)]
    rel: Cow<'a, str>,
    #[serde(borrow)]
    to: SubjectIn<'a>,
}

fn subject_v1(s: &Subject) -> SubjectV1 {
    SubjectV1 {
        ty: s.ty.to_string(),
        id: s.id.clone(),
    }
}

/// The leaf bytes of a record: RFC 8785 canonical JSON of its v1 wire form.
pub fn encode_leaf(record: &Record) -> Vec<u8> {
    let inline = match &record.payload {
        Payload::Inline(v) => Some(canonical_bytes(v)),
        Payload::Blob { .. } => None,
    };
    encode_leaf_with(record, inline.as_deref())
}

/// The v1 wire form as serde sees it, canonicalized generically. This is the definition the
/// direct writer below must agree with byte for byte (checked by tests on generated records).
pub fn encode_leaf_reference(record: &Record) -> Vec<u8> {
    let (payload, payload_digest, payload_size) = match &record.payload {
        Payload::Inline(v) => (Some(v), None, None),
        Payload::Blob { digest, size } => (None, Some(digest.to_string()), Some(*size)),
    };
    let leaf = LeafV1 {
        v: 1,
        index: record.index.0,
        recorded_at: record.recorded_at.to_string(),
        kind: record.kind.to_string(),
        subjects: record.subjects.iter().map(subject_v1).collect(),
        payload,
        payload_digest,
        payload_size,
        occurred_at: record.occurred_at.map(|t| t.to_string()),
        actor: record.actor.clone(),
        source: record.source.clone(),
        links: record
            .links
            .iter()
            .map(|l| LinkV1 {
                rel: l.rel.to_string(),
                to: subject_v1(&l.to),
            })
            .collect(),
        idempotency_key: record.idempotency_key.clone(),
    };
    // A struct of strings, integers and JSON values always converts; Null is unreachable.
    canonical_bytes(&serde_json::to_value(&leaf).unwrap_or(Value::Null))
}

/// Writes the v1 leaf straight in RFC 8785 key order (all keys are ASCII, so code-unit order is
/// byte order): no intermediate JSON tree, and an inline payload's canonical bytes are reused
/// from the size check that decided it was inline. Appends spent a third of their time in the
/// generic path.
pub(crate) fn encode_leaf_with(record: &Record, inline_payload: Option<&[u8]>) -> Vec<u8> {
    fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
        if !*first {
            out.push(b',');
        }
        *first = false;
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
    }
    fn subject(out: &mut Vec<u8>, s: &Subject) {
        out.extend_from_slice(b"{\"id\":");
        write_string(&s.id, out);
        out.extend_from_slice(b",\"type\":");
        write_string(s.ty.as_str(), out);
        out.push(b'}');
    }
    let mut out = Vec::with_capacity(256 + inline_payload.map_or(0, <[u8]>::len));
    let mut first = true;
    out.push(b'{');
    if let Some(a) = &record.actor {
        key(&mut out, &mut first, "actor");
        write_string(a, &mut out);
    }
    if let Some(k) = &record.idempotency_key {
        key(&mut out, &mut first, "idempotency_key");
        write_string(k, &mut out);
    }
    key(&mut out, &mut first, "index");
    out.extend_from_slice(record.index.0.to_string().as_bytes());
    key(&mut out, &mut first, "kind");
    write_string(record.kind.as_str(), &mut out);
    if !record.links.is_empty() {
        key(&mut out, &mut first, "links");
        out.push(b'[');
        for (i, l) in record.links.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"rel\":");
            write_string(l.rel.as_str(), &mut out);
            out.extend_from_slice(b",\"to\":");
            subject(&mut out, &l.to);
            out.push(b'}');
        }
        out.push(b']');
    }
    if let Some(t) = record.occurred_at {
        key(&mut out, &mut first, "occurred_at");
        write_string(&t.to_string(), &mut out);
    }
    match &record.payload {
        Payload::Inline(v) => {
            key(&mut out, &mut first, "payload");
            match inline_payload {
                Some(bytes) => out.extend_from_slice(bytes),
                None => out.extend_from_slice(&canonical_bytes(v)),
            }
        }
        Payload::Blob { digest, size } => {
            key(&mut out, &mut first, "payload_digest");
            write_string(&digest.to_string(), &mut out);
            key(&mut out, &mut first, "payload_size");
            out.extend_from_slice(size.to_string().as_bytes());
        }
    }
    key(&mut out, &mut first, "recorded_at");
    write_string(&record.recorded_at.to_string(), &mut out);
    if let Some(s) = &record.source {
        key(&mut out, &mut first, "source");
        write_string(s, &mut out);
    }
    key(&mut out, &mut first, "subjects");
    out.push(b'[');
    for (i, s) in record.subjects.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        subject(&mut out, s);
    }
    out.push(b']');
    key(&mut out, &mut first, "v");
    out.push(b'1');
    out.push(b'}');
    out
}

fn bad(msg: impl Into<String>) -> ModelError {
    ModelError::Leaf(msg.into())
}

fn subject_back(s: SubjectIn<'_>) -> Result<Subject, ModelError> {
    Subject::parse(&s.ty, &s.id).map_err(|e| bad(format!("subject {}:{}: {e}", s.ty, s.id)))
}

fn links_back(links: Vec<LinkIn<'_>>) -> Result<Vec<Link>, ModelError> {
    links
        .into_iter()
        .map(|l| {
            Ok(Link {
                rel: Rel::parse(&l.rel).map_err(|e| bad(format!("rel {e}")))?,
                to: subject_back(l.to)?,
            })
        })
        .collect()
}

/// Decodes stored leaf bytes back into a record. Strict: the bytes must be exactly the canonical
/// encoding of what they decode to, so two different byte strings never mean the same record.
pub fn decode_leaf(bytes: &[u8]) -> Result<Record, ModelError> {
    // UTF-8 checked once for the whole leaf (faster than the parser's check per string).
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let leaf: LeafIn<'_> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if leaf.v != 1 {
        return Err(bad(format!("unsupported leaf version {}", leaf.v)));
    }
    let ts = |field: &str, s: &str| {
        Timestamp::parse_rfc3339(s).ok_or_else(|| bad(format!("{field} {s:?} is not a timestamp")))
    };
    let payload = match (leaf.payload, leaf.payload_digest, leaf.payload_size) {
        (Some(v), None, None) => Payload::Inline(v),
        (None, Some(d), Some(size)) => Payload::Blob {
            digest: d.parse::<Digest>().map_err(bad)?,
            size,
        },
        _ => {
            return Err(bad(
                "exactly one of payload or payload_digest+payload_size must be present",
            ));
        }
    };
    let record = Record {
        index: LogIndex(leaf.index),
        recorded_at: ts("recorded_at", &leaf.recorded_at)?,
        kind: Kind::parse(&leaf.kind).map_err(|e| bad(format!("kind {}", e)))?,
        subjects: leaf
            .subjects
            .into_iter()
            .map(subject_back)
            .collect::<Result<_, _>>()?,
        payload,
        occurred_at: leaf
            .occurred_at
            .as_deref()
            .map(|s| ts("occurred_at", s))
            .transpose()?,
        actor: leaf.actor,
        source: leaf.source,
        links: links_back(leaf.links)?,
        idempotency_key: leaf.idempotency_key,
    };
    if encode_leaf(&record) != bytes {
        return Err(bad(
            "bytes are not the canonical encoding of the record they hold",
        ));
    }
    Ok(record)
}

/// What a stored leaf mentions: its index, subjects and link targets, read without the rest of
/// the record ([`decode_leaf_mentions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafMentions {
    pub index: LogIndex,
    pub subjects: Vec<Subject>,
    pub links: Vec<Link>,
}

/// [`LeafV1`]'s fields that say what a record mentions; the others are skipped (checked for
/// JSON syntax only).
#[derive(Deserialize)]
struct MentionsIn<'a> {
    v: u32,
    index: u64,
    #[serde(borrow)]
    subjects: Vec<SubjectIn<'a>>,
    #[serde(default, borrow)]
    links: Vec<LinkIn<'a>>,
}

/// The index, subjects and link targets of a stored leaf, normalized as [`decode_leaf`]
/// normalizes them, without building the payload or checking the rest. For an index of which
/// records mention what, never for serving a record: a leaf [`decode_leaf`] accepts gives
/// exactly its record's index, subjects and links here, but a leaf it refuses may still give
/// something here, and is refused when it is read.
pub fn decode_leaf_mentions(bytes: &[u8]) -> Result<LeafMentions, ModelError> {
    // As in `decode_leaf`: UTF-8 checked once for the whole leaf, not string by string.
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let leaf: MentionsIn<'_> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if leaf.v != 1 {
        return Err(bad(format!("unsupported leaf version {}", leaf.v)));
    }
    Ok(LeafMentions {
        index: LogIndex(leaf.index),
        subjects: leaf
            .subjects
            .into_iter()
            .map(subject_back)
            .collect::<Result<_, _>>()?,
        links: links_back(leaf.links)?,
    })
}

/// The record as user-facing JSON (the same shape as the leaf, plus nothing): what `trailmark
/// log` prints. Not used for signing.
pub fn to_json(record: &Record) -> Value {
    serde_json::from_slice(&encode_leaf(record)).unwrap_or(Value::Null)
}
