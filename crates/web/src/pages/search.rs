//! Search across evidence (ticket, commit, PR, artifact digest, person, kind, date range) and
//! the record page, which checks the record's inclusion proof against the latest signed
//! checkpoint and says plainly whether it verified and, if not, what failed.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use trailmark_access::Permission;
use trailmark_log::{leaf_hash, verify_checkpoint, verify_inclusion};
use trailmark_model::{Kind, LogIndex, Subject, Timestamp};
use trailmark_server::AppState;
use trailmark_server::auth::record_scope;
use trailmark_store::{Query, StoredRecord};

use super::{log_read, parse_day, query, render, short_time, work};
use crate::error::UiError;
use crate::viewer::{Nav, Viewer};

/// What a search field looks for.
pub const FIELDS: [(&str, &str); 6] = [
    ("ticket", "Ticket"),
    ("commit", "Commit"),
    ("pr", "Pull/merge request"),
    ("artifact", "Artifact digest"),
    ("person", "Person"),
    ("release", "Release"),
];

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    pub after: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Hit {
    pub index: u64,
    pub kind: String,
    pub at: String,
    pub actor: String,
    pub subjects: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    nav: Nav,
    q: SearchQuery,
    fields: Vec<(&'static str, &'static str)>,
    searched: bool,
    hits: Vec<Hit>,
    next: Option<String>,
}

const PAGE: usize = 50;
const SCAN_BUDGET: usize = 20_000;

fn hit(r: &StoredRecord) -> Hit {
    let rec = &r.record;
    Hit {
        index: rec.index.0,
        kind: rec.kind.as_str().to_owned(),
        at: short_time(&rec.recorded_at.to_string()),
        actor: rec.actor.clone().unwrap_or_default(),
        subjects: rec
            .subjects
            .iter()
            .map(|s| format!("{}:{}", s.ty.as_str(), s.id.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let readable = viewer.scopes(Permission::ReadEvidence)?;
    let q: SearchQuery = query(raw)?;
    let searched = !(q.value.trim().is_empty()
        && q.kind.trim().is_empty()
        && q.from.is_empty()
        && q.to.is_empty());
    let mut hits = Vec::new();
    let mut next = None;
    if searched {
        let value = q.value.trim().to_owned();
        let (subject, person) = match (q.field.as_str(), value.is_empty()) {
            (_, true) => (None, None),
            ("person", false) => (None, Some(value.clone())),
            (f @ ("ticket" | "commit" | "pr" | "artifact" | "release"), false) => (
                Some(Subject::parse(f, &value).map_err(|e| {
                    UiError::BadRequest(format!("{f} {value:?} is not a valid identifier: {e:?}"))
                })?),
                None,
            ),
            (other, false) => {
                return Err(UiError::BadRequest(format!(
                    "search field {other:?}: expected one of ticket, commit, pr, artifact, person, release"
                )));
            }
        };
        let kind = match q.kind.trim() {
            "" => None,
            k => Some(Kind::parse(k).map_err(|e| UiError::BadRequest(format!("kind {k:?}: {e}")))?),
        };
        let since = parse_day("from", &q.from)?.map(Timestamp);
        let until = parse_day("to", &q.to)?.map(Timestamp);
        log_read(
            &state,
            &viewer,
            "search",
            json!({"field": q.field, "value": value, "kind": q.kind, "from": q.from, "to": q.to}),
        )
        .await?;
        let after = q.after;
        let (found, more) = work(&state, move |st| {
            // A person is found under every identity the identity map knows for them.
            let people = st.people();
            let person_raw = person.as_ref().map(|p| {
                if p.contains(':') {
                    p.clone()
                } else {
                    format!("person:{p}")
                }
            });
            let matches_person = |actor: Option<&str>| match (&person, &person_raw) {
                (Some(p), Some(raw)) => actor.is_some_and(|a| {
                    a == p
                        || a == raw
                        || a.strip_prefix("user:") == Some(p.as_str())
                        || people.same_person(a, raw)
                }),
                _ => true,
            };
            let keep = |r: &StoredRecord| {
                let scope = record_scope(&r.record, &st.config.default_org);
                readable.iter().any(|s| s.covers(&scope))
                    && matches_person(r.record.actor.as_deref())
                    && kind.as_ref().is_none_or(|k| &r.record.kind == k)
                    && since.is_none_or(|t| r.record.recorded_at >= t)
                    && until.is_none_or(|t| r.record.recorded_at < t)
            };
            let mut out = Vec::new();
            // An identifier is found where records name it as a subject *or* link to it (a
            // commit referencing a ticket, a release linking a commit).
            if let Some(subject) = subject {
                let mentions = st
                    .store
                    .mentions(&subject)
                    .map_err(trailmark_server::ApiError::from)?;
                let mut last = None;
                for (idx, _) in mentions {
                    if after.is_some_and(|a| idx.0 <= a) || last == Some(idx) {
                        continue;
                    }
                    last = Some(idx);
                    let Some(r) = st
                        .store
                        .record(idx)
                        .map_err(trailmark_server::ApiError::from)?
                    else {
                        continue;
                    };
                    if keep(&r) {
                        out.push(hit(&r));
                        if out.len() == PAGE {
                            return Ok((out, Some(idx.0)));
                        }
                    }
                }
                return Ok((out, None));
            }
            let mut q = Query {
                kind: kind.clone(),
                subject: None,
                since,
                until,
                after: after.map(LogIndex),
                limit: 500,
            };
            let mut scanned = 0;
            loop {
                let page = st
                    .store
                    .query(&q)
                    .map_err(trailmark_server::ApiError::from)?;
                let n = page.len();
                for r in page {
                    scanned += 1;
                    q.after = Some(r.record.index);
                    if !keep(&r) {
                        continue;
                    }
                    out.push(hit(&r));
                    if out.len() == PAGE {
                        return Ok((out, q.after.map(|i| i.0)));
                    }
                }
                if n < 500 {
                    return Ok((out, None));
                }
                if scanned >= SCAN_BUDGET {
                    return Ok((out, q.after.map(|i| i.0)));
                }
            }
        })
        .await?;
        hits = found;
        next = more.map(|after| {
            format!(
                "/ui/search?{}",
                serde_urlencoded::to_string([
                    ("field", q.field.as_str()),
                    ("value", q.value.as_str()),
                    ("kind", q.kind.as_str()),
                    ("from", q.from.as_str()),
                    ("to", q.to.as_str()),
                    ("after", &after.to_string()),
                ])
                .unwrap_or_default()
            )
        });
    }
    render(&SearchPage {
        nav: viewer.nav("search"),
        q,
        fields: FIELDS.to_vec(),
        searched,
        hits,
        next,
    })
}

/// The outcome of checking a record against the latest signed checkpoint.
#[derive(Clone, Debug)]
pub struct Proof {
    pub verified: bool,
    pub checkpoint_size: u64,
    pub root: String,
    pub leaf_hash: String,
    pub proof_len: usize,
    pub note: String,
    /// What failed, when it did not verify.
    pub failures: Vec<String>,
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    nav: Nav,
    index: u64,
    kind: String,
    at: String,
    recorded_at: String,
    actor: String,
    subjects: Vec<(String, String)>,
    links: Vec<(String, String, String)>,
    json: String,
    proof: Proof,
}

/// Checks a stored record's leaf hash and inclusion proof against the latest checkpoint, whose
/// signature is checked with the log's key. Every step that fails is named.
pub fn check(st: &AppState, r: &StoredRecord) -> Result<Proof, UiError> {
    let store = st.store.as_ref();
    let mut failures = Vec::new();
    let computed = leaf_hash(&r.leaf);
    if computed != r.leaf_hash {
        failures.push(format!(
            "the stored leaf hash {} is not the hash of the stored leaf bytes ({})",
            r.leaf_hash.to_hex(),
            computed.to_hex()
        ));
    }
    let Some(cp) = store
        .latest_checkpoint()
        .map_err(trailmark_server::ApiError::from)?
    else {
        return Ok(Proof {
            verified: false,
            checkpoint_size: 0,
            root: String::new(),
            leaf_hash: computed.to_hex(),
            proof_len: 0,
            note: String::new(),
            failures: vec!["the log has no signed checkpoint yet".into()],
        });
    };
    let checkpoint = match verify_checkpoint(
        &cp.note,
        std::slice::from_ref(store.verifier()),
        Some(store.origin()),
    ) {
        Ok(c) => Some(c),
        Err(e) => {
            failures.push(format!(
                "the latest checkpoint's signature does not verify: {e}"
            ));
            None
        }
    };
    let (size, root) = match &checkpoint {
        Some(c) => (c.size, c.root),
        None => (cp.size, cp.root),
    };
    let index = r.record.index.0;
    let mut proof_len = 0;
    if index >= size {
        failures.push(format!(
            "record {index} is not yet covered by the latest checkpoint (size {size})"
        ));
    } else {
        match store.inclusion_proof(r.record.index, size) {
            Ok(p) => {
                proof_len = p.len();
                if let Err(e) = verify_inclusion(index, size, &computed, &p, &root) {
                    failures.push(format!("the inclusion proof does not verify: {e}"));
                }
            }
            Err(e) => failures.push(format!("no inclusion proof could be read: {e}")),
        }
    }
    Ok(Proof {
        verified: failures.is_empty(),
        checkpoint_size: size,
        root: root.to_base64(),
        leaf_hash: computed.to_hex(),
        proof_len,
        note: cp.note,
        failures,
    })
}

pub async fn record(
    State(state): State<AppState>,
    viewer: Viewer,
    trailmark_server::extract::Path(index): trailmark_server::extract::Path<u64>,
) -> Result<Response, UiError> {
    viewer.scopes(Permission::ReadEvidence)?;
    let found = work(&state, move |st| {
        Ok(st
            .store
            .record(LogIndex(index))
            .map_err(trailmark_server::ApiError::from)?)
    })
    .await?
    .ok_or_else(|| UiError::NotFound(format!("no record {index} in the log")))?;
    let scope = record_scope(&found.record, &state.config.default_org);
    viewer.require(Permission::ReadEvidence, &scope)?;
    log_read(&state, &viewer, "record", json!({"index": index})).await?;
    let r2 = found.clone();
    let proof = work(&state, move |st| check(st, &r2)).await?;
    let rec = &found.record;
    let json: serde_json::Value =
        serde_json::from_slice(&found.leaf).unwrap_or(serde_json::Value::Null);
    render(&RecordPage {
        nav: viewer.nav("search"),
        index,
        kind: rec.kind.as_str().to_owned(),
        at: rec.occurred_at.map(|t| t.to_string()).unwrap_or_default(),
        recorded_at: rec.recorded_at.to_string(),
        actor: rec.actor.clone().unwrap_or_default(),
        subjects: rec
            .subjects
            .iter()
            .map(|s| (s.ty.as_str().to_owned(), s.id.as_str().to_owned()))
            .collect(),
        links: rec
            .links
            .iter()
            .map(|l| {
                (
                    l.rel.as_str().to_owned(),
                    l.to.ty.as_str().to_owned(),
                    l.to.id.as_str().to_owned(),
                )
            })
            .collect(),
        json: serde_json::to_string_pretty(&json).unwrap_or_default(),
        proof,
    })
}
