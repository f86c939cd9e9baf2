//! Reading records: their time, payload, subjects and links, and the account of what was left
//! out and why.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use trailmark_model::{Digest, Payload, Record, Timestamp};

/// When a record says it happened: `occurred_at` (the tool's time) when present, else the
/// log's `recorded_at`. History imported late keeps its real dates this way.
pub(crate) fn event_time(r: &Record) -> Timestamp {
    r.occurred_at.unwrap_or(r.recorded_at)
}

/// Supplies payloads that were stored beside the log (over 16 KiB) by their digest; any
/// `Fn(&Digest) -> Option<Value>` is one.
pub trait Blobs {
    fn payload(&self, digest: &Digest) -> Option<Value>;
}

impl<F: Fn(&Digest) -> Option<Value>> Blobs for F {
    fn payload(&self, digest: &Digest) -> Option<Value> {
        self(digest)
    }
}

/// The payload of a record, resolving a blob through `blobs`; `None` when it cannot be read.
pub(crate) fn payload<'r>(r: &'r Record, blobs: Option<&dyn Blobs>) -> Option<Cow<'r, Value>> {
    match &r.payload {
        Payload::Inline(v) => Some(Cow::Borrowed(v)),
        Payload::Blob { digest, .. } => blobs.and_then(|b| b.payload(digest)).map(Cow::Owned),
    }
}

/// The trimmed, non-empty string at a JSON pointer.
pub(crate) fn text<'v>(v: &'v Value, ptr: &str) -> Option<&'v str> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The id of the record's first subject of type `ty`.
pub(crate) fn subject<'r>(r: &'r Record, ty: &str) -> Option<&'r str> {
    r.subjects
        .iter()
        .find(|s| s.ty.as_str() == ty)
        .map(|s| s.id.as_str())
}

/// Ids of the record's links to subjects of type `ty` (any relation when `rel` is `None`).
pub(crate) fn links<'r>(
    r: &'r Record,
    rel: Option<&'r str>,
    ty: &'r str,
) -> impl Iterator<Item = &'r str> + 'r {
    r.links
        .iter()
        .filter(move |l| l.to.ty.as_str() == ty && rel.is_none_or(|x| l.rel.as_str() == x))
        .map(|l| l.to.id.as_str())
}

/// A full commit SHA, lowercased (the form commit subjects take).
pub(crate) fn full_sha(s: &str) -> Option<String> {
    let s = s.trim();
    ((s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| s.to_ascii_lowercase())
}

/// Records that were read but could not be used, or samples a metric had to leave out, grouped
/// by metric and reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// `deployments`, `lead_time`, `change_failure_rate`, `time_to_restore`, `approvals`,
    /// `change_requests`, `ai_intervention`.
    pub metric: &'static str,
    pub reason: String,
    pub count: u64,
    /// The first few record indices concerned (at most 5), to look them up.
    pub records: Vec<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Skips(BTreeMap<(&'static str, String), (u64, Vec<u64>)>);

impl Skips {
    pub(crate) fn add(&mut self, metric: &'static str, reason: impl Into<String>, r: &Record) {
        let e = self.0.entry((metric, reason.into())).or_default();
        e.0 += 1;
        if e.1.len() < 5 && !e.1.contains(&r.index.0) {
            e.1.push(r.index.0);
        }
    }

    pub(crate) fn into_vec(self) -> Vec<Skipped> {
        self.0
            .into_iter()
            .map(|((metric, reason), (count, mut records))| {
                records.sort_unstable();
                Skipped {
                    metric,
                    reason,
                    count,
                    records,
                }
            })
            .collect()
    }
}
