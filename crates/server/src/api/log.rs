//! The log itself: signed checkpoints, inclusion and consistency proofs. These reveal hashes
//! only, never evidence, so any role that may read checkpoints and proofs gets them.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use trailmark_access::Permission;
use trailmark_log::Hash;
use trailmark_model::LogIndex;
use trailmark_store::SignedCheckpoint;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, blocking};
use crate::extract::{Path, Query};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointResponse {
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
    /// The C2SP signed note, verbatim: verify it with the log's verifier key.
    pub note: String,
}

impl From<SignedCheckpoint> for CheckpointResponse {
    fn from(c: SignedCheckpoint) -> Self {
        CheckpointResponse {
            size: c.size,
            root: c.root.to_base64(),
            note: c.note,
        }
    }
}

/// The latest signed checkpoint.
#[utoipa::path(get, path = "/api/v1/checkpoints/latest", tag = "log",
    responses((status = 200, body = CheckpointResponse), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn latest(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<CheckpointResponse>, ApiError> {
    caller.require_somewhere(Permission::ReadLog)?;
    let store = state.store.clone();
    let cp = blocking(move || Ok(store.latest_checkpoint()?)).await?;
    cp.map(|c| axum::Json(c.into()))
        .ok_or_else(|| ApiError::NotFound("the log is empty: no checkpoint yet".into()))
}

/// The signed checkpoint of the tree at exactly `size`.
#[utoipa::path(get, path = "/api/v1/checkpoints/{size}", tag = "log",
    params(("size" = u64, Path, description = "Tree size")),
    responses((status = 200, body = CheckpointResponse), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn at_size(
    State(state): State<AppState>,
    caller: Caller,
    Path(size): Path<u64>,
) -> Result<axum::Json<CheckpointResponse>, ApiError> {
    caller.require_somewhere(Permission::ReadLog)?;
    let store = state.store.clone();
    let cp = blocking(move || Ok(store.checkpoint(size)?)).await?;
    cp.map(|c| axum::Json(c.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no signed checkpoint for size {size}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionParams {
    pub index: u64,
    /// Tree size with a signed checkpoint (default: the latest).
    pub size: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionResponse {
    pub index: u64,
    pub size: u64,
    pub leaf_hash: String,
    /// Base64 audit path, leaf to root (RFC 9162).
    pub proof: Vec<String>,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: String,
    /// The same proof as a C2SP tlog-proof@v1 file (`trailmark verify-proof` reads it).
    pub tlog_proof: String,
}

/// An inclusion proof of record `index` in the tree of a signed checkpoint.
#[utoipa::path(get, path = "/api/v1/proofs/inclusion", tag = "log", params(InclusionParams),
    responses((status = 200, body = InclusionResponse), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn inclusion(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<InclusionParams>,
) -> Result<axum::Json<InclusionResponse>, ApiError> {
    caller.require_somewhere(Permission::ReadLog)?;
    let store = state.store.clone();
    blocking(move || {
        let cp = match p.size {
            None => store
                .latest_checkpoint()?
                .ok_or_else(|| ApiError::NotFound("the log is empty".into()))?,
            Some(s) => store
                .checkpoint(s)?
                .ok_or_else(|| ApiError::NotFound(format!("no signed checkpoint for size {s}")))?,
        };
        if p.index >= cp.size {
            return Err(ApiError::BadRequest(format!(
                "index {} is not in the tree of size {}",
                p.index, cp.size
            )));
        }
        let path = store.inclusion_proof(LogIndex(p.index), cp.size)?;
        let leaf = store
            .record(LogIndex(p.index))?
            .ok_or_else(|| ApiError::NotFound(format!("there is no record {}", p.index)))?;
        let tlog = trailmark_log::TlogProof {
            index: p.index,
            proof: path.clone(),
            checkpoint: cp.note.clone(),
        };
        Ok(axum::Json(InclusionResponse {
            index: p.index,
            size: cp.size,
            leaf_hash: leaf.leaf_hash.to_base64(),
            proof: path.iter().map(Hash::to_base64).collect(),
            checkpoint: cp.note,
            tlog_proof: tlog.to_text(),
        }))
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    pub old: u64,
    /// Default: the latest checkpoint's size.
    pub new: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyResponse {
    pub old: u64,
    pub new: u64,
    pub old_root: String,
    pub new_root: String,
    /// Base64 consistency proof (RFC 9162).
    pub proof: Vec<String>,
}

/// A consistency proof that the tree of size `old` is a prefix of the tree of size `new`.
#[utoipa::path(get, path = "/api/v1/proofs/consistency", tag = "log", params(ConsistencyParams),
    responses((status = 200, body = ConsistencyResponse), (status = 400, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn consistency(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<ConsistencyParams>,
) -> Result<axum::Json<ConsistencyResponse>, ApiError> {
    caller.require_somewhere(Permission::ReadLog)?;
    let store = state.store.clone();
    blocking(move || {
        let new = match p.new {
            Some(n) => n,
            None => store.size()?,
        };
        if p.old > new {
            return Err(ApiError::BadRequest(format!(
                "old size {} is larger than new size {new}",
                p.old
            )));
        }
        let proof = store.consistency_proof(p.old, new)?;
        Ok(axum::Json(ConsistencyResponse {
            old: p.old,
            new,
            old_root: store.root(p.old)?.to_base64(),
            new_root: store.root(new)?.to_base64(),
            proof: proof.iter().map(Hash::to_base64).collect(),
        }))
    })
    .await
}
