//! Evidence: record (single and batch), query, one record with its proof, the linked graph,
//! raw input blobs.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trailmark_access::{Permission, Scope};
use trailmark_log::Hash;
use trailmark_model::{Digest, Kind, LogIndex, Payload, Subject, Timestamp};
use trailmark_store::{Query as StoreQuery, StoredRecord, graph};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, check_client_record, log_read, record_scope, stamp};
use crate::error::{ApiError, blocking};
use crate::extract::{Body, Path, Query};
use crate::state::AppState;

/// One appended (or already present) record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppendedRecord {
    pub index: u64,
    /// Base64 RFC 6962 leaf hash.
    pub leaf_hash: String,
    /// True when the idempotency key was seen before: nothing new was stored.
    pub duplicate: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppendResponse {
    /// Where the records were filed.
    pub scope: String,
    pub records: Vec<AppendedRecord>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppendParams {
    /// Where to file the evidence: `org` or `org/project`. Optional when the caller may record
    /// evidence in exactly one scope.
    pub scope: Option<String>,
}

/// Picks the scope to write into: the one asked for, or the caller's only writable one.
fn write_scope(caller: &Caller, asked: Option<&str>) -> Result<Scope, ApiError> {
    let scope = match asked {
        Some(s) => s
            .parse::<Scope>()
            .map_err(|e| ApiError::BadRequest(format!("scope {s:?}: {e}")))?,
        None => {
            let mut scopes = caller.require_somewhere(Permission::WriteEvidence)?;
            if scopes.len() != 1 {
                let list: Vec<String> = scopes.iter().map(ToString::to_string).collect();
                return Err(ApiError::BadRequest(format!(
                    "say where to file this evidence with ?scope= (you may record in: {})",
                    list.join(", ")
                )));
            }
            scopes.remove(0)
        }
    };
    caller.require(Permission::WriteEvidence, &scope)?;
    Ok(scope)
}

/// Appends evidence: one JSON record, a JSON array, or JSON Lines. All or nothing, durable
/// before the response.
#[utoipa::path(post, path = "/api/v1/records", tag = "evidence", params(AppendParams),
    request_body(content = Object, description = "A record, an array of records, or JSON Lines",
        content_type = "application/json"),
    responses(
        (status = 201, description = "Appended and durable", body = AppendResponse),
        (status = 200, description = "Every record was a duplicate: nothing new stored", body = AppendResponse),
        (status = 400, description = "Invalid record (nothing stored)", body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 413, body = crate::error::Problem), (status = 415, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn append(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<AppendParams>,
    body: Body,
) -> Result<Response, ApiError> {
    let scope = write_scope(&caller, params.scope.as_deref())?;
    body.require_media_type(&[
        "application/json",
        "application/x-ndjson",
        "application/jsonl",
    ])?;
    let mut records = trailmark_model::parse_records(body.text()?)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    for (i, r) in records.iter().enumerate() {
        check_client_record(r, i + 1)?;
    }
    stamp(&mut records, &scope)?;
    let store = state.store.clone();
    // Awaited, not on the blocking pool: the writer answers once the batch is durable.
    let appended = store.append_queued(records, vec![]).await?;
    let all_duplicate = appended.iter().all(|a| a.duplicate);
    let body = AppendResponse {
        scope: scope.to_string(),
        records: appended
            .iter()
            .map(|a| AppendedRecord {
                index: a.index.0,
                leaf_hash: a.leaf_hash.to_base64(),
                duplicate: a.duplicate,
            })
            .collect(),
    };
    let status = if all_duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(body)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueryParams {
    /// Only records of this kind.
    pub kind: Option<String>,
    /// Only records about this subject, `TYPE:ID`.
    pub subject: Option<String>,
    /// Only records recorded at or after this RFC 3339 instant.
    pub since: Option<String>,
    /// Only records recorded before this RFC 3339 instant.
    pub until: Option<String>,
    /// Only records whose actor is exactly this.
    pub actor: Option<String>,
    /// Only records with an index greater than this (the previous page's `next_after`).
    pub after: Option<u64>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordPage {
    /// Records in index order, each with `leaf_hash`.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Value>,
    /// Pass as `after` for the next page; absent when the log has no more matches.
    pub next_after: Option<u64>,
}

pub fn parse_subject(text: &str) -> Result<Subject, ApiError> {
    let (ty, id) = text.split_once(':').ok_or_else(|| {
        ApiError::BadRequest(format!(
            "subject {text:?} must be TYPE:ID, e.g. ticket:PAY-1"
        ))
    })?;
    Subject::parse(ty, id).map_err(|e| ApiError::BadRequest(format!("subject {text:?}: {e:?}")))
}

fn parse_time(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{name} {text:?} is not an RFC 3339 instant with an offset, e.g. 2026-11-01T00:00:00Z"
        ))
    })
}

/// A record as served: its JSON plus the leaf hash that proves it.
pub fn record_json(r: &StoredRecord) -> Value {
    let mut v = trailmark_model::wire::to_json(&r.record);
    if let Value::Object(m) = &mut v {
        m.insert("leaf_hash".into(), json!(r.leaf_hash.to_base64()));
    }
    v
}

/// How many index-order rows a filtered page may scan before it returns what it has (with a
/// cursor), so a caller who may see little of a large log cannot make one request scan it all.
const SCAN_BUDGET: u32 = 20_000;

/// Queries records by kind, subject, time and actor, with keyset pagination. Only records the
/// caller may read are returned; a person's query is itself recorded.
#[utoipa::path(get, path = "/api/v1/records", tag = "evidence", params(QueryParams),
    responses((status = 200, body = RecordPage), (status = 400, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<QueryParams>,
) -> Result<axum::Json<RecordPage>, ApiError> {
    let scopes = caller.require_somewhere(Permission::ReadEvidence)?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is out of range 1..=1000"
        )));
    }
    let q = StoreQuery {
        kind: p
            .kind
            .as_deref()
            .map(|k| Kind::parse(k).map_err(|e| ApiError::BadRequest(format!("kind {k:?}: {e}"))))
            .transpose()?,
        subject: p.subject.as_deref().map(parse_subject).transpose()?,
        since: p
            .since
            .as_deref()
            .map(|t| parse_time("since", t))
            .transpose()?,
        until: p
            .until
            .as_deref()
            .map(|t| parse_time("until", t))
            .transpose()?,
        after: p.after.map(LogIndex),
        limit,
    };
    let default_org = state.config.default_org.clone();
    let store = state.store.clone();
    let actor = p.actor.clone();
    let (records, next_after) = blocking(move || {
        let mut out = Vec::new();
        let mut q = q;
        let mut scanned = 0u32;
        loop {
            let batch = store.query(&q)?;
            let full_batch = batch.len() as u32 == q.limit;
            for r in batch {
                scanned += 1;
                q.after = Some(r.record.index);
                let scope = record_scope(&r.record, &default_org);
                let visible = scopes.iter().any(|s| s.covers(&scope))
                    && actor
                        .as_deref()
                        .is_none_or(|a| r.record.actor.as_deref() == Some(a));
                if visible {
                    out.push(r);
                    if out.len() as u32 == limit {
                        return Ok((out, q.after.map(|i| i.0)));
                    }
                }
            }
            if !full_batch {
                return Ok((out, None));
            }
            if scanned >= SCAN_BUDGET {
                return Ok((out, q.after.map(|i| i.0)));
            }
        }
    })
    .await?;
    let indices: Vec<u64> = records.iter().map(|r| r.record.index.0).collect();
    log_read(
        &state,
        &caller,
        "query",
        json!({ "query": query_detail(&p), "indices": indices }),
    )
    .await?;
    Ok(axum::Json(RecordPage {
        records: records.iter().map(record_json).collect(),
        next_after,
    }))
}

fn query_detail(p: &QueryParams) -> Value {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    put("kind", &p.kind);
    put("subject", &p.subject);
    put("since", &p.since);
    put("until", &p.until);
    put("actor", &p.actor);
    if let Some(a) = p.after {
        m.insert("after".into(), json!(a));
    }
    Value::Object(m)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordWithProof {
    #[schema(value_type = Object)]
    pub record: Value,
    /// The exact signed leaf bytes, base64: hash them (RFC 6962 leaf hash) to check `proof`.
    pub leaf: String,
    /// A C2SP tlog-proof@v1 of this record against the latest signed checkpoint.
    pub proof: String,
}

/// One record, its exact leaf bytes and an inclusion proof to the latest signed checkpoint.
#[utoipa::path(get, path = "/api/v1/records/{index}", tag = "evidence",
    params(("index" = u64, Path, description = "Log index")),
    responses((status = 200, body = RecordWithProof), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(index): Path<u64>,
) -> Result<axum::Json<RecordWithProof>, ApiError> {
    caller.require_somewhere(Permission::ReadEvidence)?;
    let store = state.store.clone();
    let (stored, proof) = blocking(move || {
        let Some(cp) = store.latest_checkpoint()? else {
            return Ok(None);
        };
        if index >= cp.size {
            return Ok(None);
        }
        let Some(r) = store.record(LogIndex(index))? else {
            return Ok(None);
        };
        let path = store.inclusion_proof(LogIndex(index), cp.size)?;
        let proof = trailmark_log::TlogProof {
            index,
            proof: path,
            checkpoint: cp.note,
        };
        Ok(Some((r, proof.to_text())))
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("there is no record {index}")))?;
    caller.require(
        Permission::ReadEvidence,
        &record_scope(&stored.record, &state.config.default_org),
    )?;
    log_read(&state, &caller, "record", json!({ "indices": [index] })).await?;
    Ok(axum::Json(RecordWithProof {
        record: record_json(&stored),
        leaf: B64.encode(&stored.leaf),
        proof,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphParams {
    /// Start subject, `TYPE:ID`.
    pub subject: String,
    /// Subject hops to follow (default 4, at most 16).
    pub depth: Option<u32>,
    /// Stop after this many records (default 1000, at most 10000).
    pub max: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphResponse {
    pub subject: String,
    pub subjects: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub edges: Vec<Value>,
    /// The walk stopped at `max` records.
    pub truncated: bool,
    /// Linked records left out because the caller may not read them.
    pub hidden: usize,
}

/// Everything linked to a subject (tickets, commits, reviews, builds, deploys), transitively.
#[utoipa::path(get, path = "/api/v1/graph", tag = "evidence", params(GraphParams),
    responses((status = 200, body = GraphResponse), (status = 400, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn graph(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<GraphParams>,
) -> Result<axum::Json<GraphResponse>, ApiError> {
    let scopes = caller.require_somewhere(Permission::ReadEvidence)?;
    let start = parse_subject(&p.subject)?;
    let depth = p.depth.unwrap_or(4);
    let max = p.max.unwrap_or(1000);
    if depth > 16 || !(1..=10_000).contains(&max) {
        return Err(ApiError::BadRequest(
            "depth must be at most 16 and max within 1..=10000".into(),
        ));
    }
    let store = state.store.clone();
    let walk_start = start.clone();
    let g = blocking(move || Ok(graph::linked(store.as_ref(), &walk_start, depth, max)?)).await?;
    let default_org = &state.config.default_org;
    let mut hidden = 0;
    let mut records = Vec::new();
    let mut visible = std::collections::BTreeSet::new();
    let mut subjects = std::collections::BTreeSet::new();
    subjects.insert(start.to_string());
    for (idx, r) in &g.records {
        let scope = record_scope(&r.record, default_org);
        if scopes.iter().any(|s| s.covers(&scope)) {
            visible.insert(*idx);
            for s in &r.record.subjects {
                subjects.insert(s.to_string());
            }
            for l in &r.record.links {
                subjects.insert(l.to.to_string());
            }
            records.push(record_json(r));
        } else {
            hidden += 1;
        }
    }
    let edges = g
        .edges
        .iter()
        .filter(|e| visible.contains(&e.record))
        .map(|e| {
            json!({"from": e.from.to_string(), "rel": e.rel.to_string(), "to": e.to.to_string(), "record": e.record.0})
        })
        .collect();
    let indices: Vec<u64> = visible.iter().map(|i| i.0).collect();
    log_read(
        &state,
        &caller,
        "graph",
        json!({ "subject": p.subject, "indices": indices }),
    )
    .await?;
    Ok(axum::Json(GraphResponse {
        subject: start.to_string(),
        subjects: subjects.into_iter().collect(),
        records,
        edges,
        truncated: g.truncated,
        hidden,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlobParams {
    /// The record that cites this blob (as its raw input or its moved-out payload). Without
    /// it, the server looks for a record that cites it as raw input.
    pub record: Option<u64>,
}

/// A raw input or large payload, byte for byte, by digest. Export: needs a role that may
/// export evidence where a citing record is filed.
#[utoipa::path(get, path = "/api/v1/blobs/{digest}", tag = "evidence",
    params(("digest" = String, Path, description = "sha256:<hex>"), BlobParams),
    responses((status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 404, body = crate::error::Problem), (status = 400, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn blob(
    State(state): State<AppState>,
    caller: Caller,
    Path(digest_text): Path<String>,
    Query(p): Query<BlobParams>,
) -> Result<Response, ApiError> {
    let scopes = caller.require_somewhere(Permission::ExportEvidence)?;
    let digest: Digest = digest_text
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("digest {digest_text:?}: {e}")))?;
    let store = state.store.clone();
    let default_org = state.config.default_org.clone();
    let found = blocking(move || {
        // The records that cite this blob decide who may export it.
        let citing: Vec<StoredRecord> = match p.record {
            Some(i) => store.record(LogIndex(i))?.into_iter().collect(),
            None => {
                let input = Subject::parse("input", &digest.to_string())
                    .map_err(|e| ApiError::Internal(format!("input subject: {e:?}")))?;
                let mut out = Vec::new();
                for (idx, _) in store.mentions(&input)?.into_iter().take(64) {
                    out.extend(store.record(idx)?);
                }
                out
            }
        };
        let cites = |r: &StoredRecord| {
            matches!(&r.record.payload, Payload::Blob { digest: d, .. } if *d == digest)
                || r.record
                    .links
                    .iter()
                    .any(|l| l.to.ty.as_str() == "input" && l.to.id == digest.to_string())
        };
        let citing: Vec<&StoredRecord> = citing.iter().filter(|r| cites(r)).collect();
        if citing.is_empty() {
            return Ok(Err(()));
        }
        let allowed = citing.iter().find(|r| {
            let scope = record_scope(&r.record, &default_org);
            scopes.iter().any(|s| s.covers(&scope))
        });
        match allowed {
            None => Ok(Ok(None)),
            Some(r) => Ok(Ok(Some((r.record.index.0, store.blob(&digest)?)))),
        }
    })
    .await?;
    let (index, bytes) = match found {
        Err(()) => {
            return Err(ApiError::NotFound(format!(
                "no record{} cites blob {digest_text}",
                p.record.map(|i| format!(" {i}")).unwrap_or_default()
            )));
        }
        Ok(None) => {
            return Err(ApiError::Forbidden(format!(
                "{} may not export blob {digest_text}: no record citing it is in a scope where it may export evidence",
                caller.id()
            )));
        }
        Ok(Some((index, Some(bytes)))) => (index, bytes),
        Ok(Some((_, None))) => {
            return Err(ApiError::NotFound(format!(
                "blob {digest_text} is not stored"
            )));
        }
    };
    log_read(
        &state,
        &caller,
        "export_blob",
        json!({ "digest": digest_text, "indices": [index] }),
    )
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Decodes a base64 leaf hash argument.
pub fn hash_b64(h: &Hash) -> String {
    h.to_base64()
}
