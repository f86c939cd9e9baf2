//! Governance over HTTP: releases, links, approvals, gate evaluations, checks lists and pending
//! approvals — the same operations (and rules) as the CLI, from `trailmark_policy`.
//!
//! A release id is `org/project/name@version`; paths carry it as three segments
//! (`/releases/{org}/{project}/{release}` with `release` = `name@version`), and the permission
//! is checked on the project.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use trailmark_access::{Permission, Scope};
use trailmark_policy::{Actor, Governance, PolicyError};
use utoipa::ToSchema;

use crate::api::access::json_body;
use crate::auth::{Caller, log_read};
use crate::error::{ApiError, blocking};
use crate::extract::{Body, Path};
use crate::state::AppState;

fn api(e: PolicyError) -> ApiError {
    match e {
        PolicyError::Invalid(m) | PolicyError::Refused(m) => ApiError::Unprocessable(m),
        PolicyError::NotAllowed(m) => ApiError::Forbidden(m),
        PolicyError::NotFound(m) => ApiError::NotFound(m),
        PolicyError::Store(s) => ApiError::from(s),
        other => ApiError::Internal(other.to_string()),
    }
}

fn project_scope(org: &str, project: &str) -> Result<Scope, ApiError> {
    format!("{org}/{project}")
        .parse::<Scope>()
        .map_err(|e| ApiError::BadRequest(format!("project {org}/{project}: {e}")))
}

fn person_or_id(caller: &Caller) -> String {
    match &caller.0.person {
        Some(p) => format!("person:{p}"),
        None => caller.0.id.clone(),
    }
}

/// Runs a governance operation on the blocking pool.
async fn gov<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Governance<'_>) -> Result<T, PolicyError> + Send + 'static,
) -> Result<T, ApiError> {
    let st = state.clone();
    blocking(move || {
        let people = st.people();
        let g = Governance::new(st.store.as_ref(), &people);
        f(&g).map_err(api)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    pub name: String,
    pub version: String,
    pub environments: Vec<String>,
    pub description: Option<String>,
}

/// Creates a release in a project (release managers).
#[utoipa::path(post, path = "/api/v1/releases/{org}/{project}", tag = "governance", request_body = CreateRelease,
    params(("org" = String, Path), ("project" = String, Path)),
    responses((status = 201, body = Object), (status = 422, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: CreateRelease = json_body(&body)?;
    let scope = project_scope(&org, &project)?;
    caller.require(Permission::ManageReleases, &scope)?;
    let actor = person_or_id(&caller);
    let (id, record) = gov(&state, move |g| {
        g.create_release(
            &scope.to_string(),
            &req.name,
            &req.version,
            &req.environments,
            req.description.as_deref(),
            &actor,
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"release": id, "record": record})),
    )
        .into_response())
}

fn release_id(org: &str, project: &str, release: &str) -> Result<(String, Scope), ApiError> {
    let scope = project_scope(org, project)?;
    Ok((format!("{scope}/{release}"), scope))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkItems {
    #[serde(default)]
    pub commits: Vec<String>,
    #[serde(default)]
    pub tickets: Vec<String>,
    #[serde(default)]
    pub prs: Vec<String>,
    #[serde(default)]
    pub artifacts: Vec<String>,
    #[serde(default)]
    pub documents: Vec<DocumentLink>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentLink {
    #[serde(rename = "type")]
    pub doc_type: String,
    pub id: String,
    pub version: Option<String>,
}

/// Links commits, tickets, pull requests, artifacts and documents to a release.
#[utoipa::path(post, path = "/api/v1/releases/{org}/{project}/{release}/links", tag = "governance", request_body = LinkItems,
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 201, body = Object), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn link(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: LinkItems = json_body(&body)?;
    let (id, scope) = release_id(&org, &project, &release)?;
    caller.require(Permission::ManageReleases, &scope)?;
    let actor = person_or_id(&caller);
    let mut items: Vec<(String, String)> = Vec::new();
    for (ty, list) in [
        ("commit", req.commits),
        ("ticket", req.tickets),
        ("pr", req.prs),
        ("artifact", req.artifacts),
    ] {
        items.extend(list.into_iter().map(|x| (ty.to_owned(), x)));
    }
    let docs: Vec<_> = req
        .documents
        .into_iter()
        .map(|d| (d.doc_type, d.id, d.version))
        .collect();
    let (record, late, linked) = gov(&state, move |g| {
        g.link(&id, &items, &docs, "explicit", &actor)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"record": record, "late": late, "linked": linked})),
    )
        .into_response())
}

/// The release's state: links, content (evidence) digest, approval tally, checks list.
#[utoipa::path(get, path = "/api/v1/releases/{org}/{project}/{release}", tag = "governance",
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (id, scope) = release_id(&org, &project, &release)?;
    caller.require(Permission::ReadEvidence, &scope)?;
    log_read(&state, &caller, "release", json!({"release": id})).await?;
    let view = gov(&state, move |g| {
        let (snap, policy) = g.snapshot(&id, None, None)?;
        let tally = trailmark_policy::eval::release_tally(&policy.policy, &snap.input);
        let checks = g.checks(&id)?;
        Ok(json!({
            "release": snap.input.release,
            "commits": snap.input.commits,
            "artifacts": snap.input.artifacts,
            "documents": snap.input.documents,
            "evidence_digest": snap.input.approval.evidence_digest,
            "approval": tally,
            "checks": checks,
            "monitoring": g.monitoring(&id)?,
            "policy_digest": policy.digest.to_string(),
        }))
    })
    .await?;
    Ok(axum::Json(view).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `approve` or `reject`.
    pub decision: String,
    /// The evidence digest the approver reviewed; refused when the content changed since.
    pub evidence_digest: String,
    pub comment: Option<String>,
}

/// A signed-in person's approve/reject decision over the release's exact evidence digest.
/// Separation of duties is enforced: authors, committers and the requester are refused.
#[utoipa::path(post, path = "/api/v1/releases/{org}/{project}/{release}/approvals", tag = "governance", request_body = DecisionRequest,
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 201, body = Object), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: DecisionRequest = json_body(&body)?;
    let approve = match req.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ApiError::BadRequest(format!(
                "decision {other:?}: expected approve or reject"
            )));
        }
    };
    let (id, scope) = release_id(&org, &project, &release)?;
    caller.require(Permission::Approve, &scope)?;
    let Some(person) = caller.0.person.clone() else {
        return Err(ApiError::Forbidden(
            "approvals are a person's decision: use a person's credentials, not a machine token"
                .into(),
        ));
    };
    let actor = Actor {
        identity: format!("person:{person}"),
        roles: trailmark_policy::ops::roles_on(&caller.0, &scope.to_string()),
    };
    let (record, digest) = gov(&state, move |g| {
        g.decide_release(
            &id,
            &actor,
            approve,
            Some(&req.evidence_digest),
            req.comment.as_deref(),
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"record": record, "evidence_digest": digest})),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    pub environment: String,
    /// The person deploying, as a raw identity (`github:alice`, `person:alice`).
    pub deployer: Option<String>,
}

/// Evaluates the gate for a deploy and records the decision. A denial is a 200 with
/// `"decision": "deny"`: the evaluation itself succeeded.
#[utoipa::path(post, path = "/api/v1/releases/{org}/{project}/{release}/gate", tag = "governance", request_body = GateRequest,
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn gate(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: GateRequest = json_body(&body)?;
    let (id, scope) = release_id(&org, &project, &release)?;
    caller.require(Permission::WriteEvidence, &scope)?;
    let result = gov(&state, move |g| {
        g.gate(&id, &req.environment, req.deployer.as_deref())
    })
    .await?;
    Ok(axum::Json(result).into_response())
}

/// Approvals waiting for a decision in the caller's readable projects, most urgent first.
#[utoipa::path(get, path = "/api/v1/approvals/pending", tag = "governance",
    responses((status = 200, body = Object), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn pending(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let scopes = caller.0.readable_scopes(Permission::ReadEvidence);
    let list = gov(&state, move |g| g.pending()).await?;
    let list: Vec<_> = list
        .into_iter()
        .filter(|p| {
            p.project
                .parse::<Scope>()
                .is_ok_and(|s| scopes.iter().any(|r| r.covers(&s)))
        })
        .collect();
    Ok(axum::Json(list).into_response())
}
