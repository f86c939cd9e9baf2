//! Governance over HTTP: releases, links, approvals, gate evaluations, checks lists and pending
//! approvals — the same operations (and rules) as the CLI, from `trailmark_policy`.
//!
//! A release id is `org/project/name@version`; paths carry it as three segments
//! (`/releases/{org}/{project}/{release}` with `release` = `name@version`), and the permission
//! is checked on the project. Each organisation has its own policy, named after it
//! (`PUT /api/v1/orgs/{org}/policy`); its gates use no other.

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
    org: &str,
    f: impl FnOnce(&Governance<'_>) -> Result<T, PolicyError> + Send + 'static,
) -> Result<T, ApiError> {
    let st = state.clone();
    let org = org.to_owned();
    blocking(move || {
        let people = st.people();
        let mut g = Governance::new(st.store.as_ref(), &people);
        g.policy_name = org.clone();
        g.only_org = Some(org);
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
    let (id, record) = gov(&state, &org, move |g| {
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
    let (record, late, linked) = gov(&state, &org, move |g| {
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
    let view = gov(&state, &org, move |g| {
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
    let actor = person_actor(&caller, &scope)?;
    let (record, digest) = gov(&state, &org, move |g| {
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
    let result = gov(&state, &org, move |g| {
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
    let mut orgs: Vec<String> = scopes.iter().map(|s| s.org().to_string()).collect();
    orgs.dedup();
    let mut all = Vec::new();
    for org in orgs {
        match gov(&state, &org, move |g| g.pending()).await {
            Ok(list) => all.extend(list),
            // An organisation without a policy has nothing pending.
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    all.retain(|p| {
        p.project
            .parse::<Scope>()
            .is_ok_and(|s| scopes.iter().any(|r| r.covers(&s)))
    });
    Ok(axum::Json(all).into_response())
}

/// The release's governance checks list: every gate check per target environment, pending
/// approvals with due dates, exceptions and rollback decisions; failing and blocking first.
#[utoipa::path(get, path = "/api/v1/releases/{org}/{project}/{release}/checks", tag = "governance",
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn checks(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (id, scope) = release_id(&org, &project, &release)?;
    caller.require(Permission::ReadEvidence, &scope)?;
    log_read(&state, &caller, "release.checks", json!({"release": id})).await?;
    let items = gov(&state, &org, move |g| g.checks(&id)).await?;
    Ok(axum::Json(items).into_response())
}

/// The organisation's policy in force (JSON, Rego sources included) and every version.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/policy", tag = "governance",
    params(("org" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn policy_show(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Response, ApiError> {
    let scope = org_scope(&org)?;
    caller.require(Permission::ReadEvidence, &scope)?;
    let view = gov(&state, &org, |g| {
        let versions = g.policy_versions()?;
        let active = g.active_policy()?;
        Ok(json!({
            "active": {"record": active.record, "digest": active.digest.to_string(), "policy": active.json},
            "versions": versions.iter().map(|v| json!({"record": v.record, "digest": v.digest.to_string(), "active": v.active})).collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(axum::Json(view).into_response())
}

fn org_scope(org: &str) -> Result<Scope, ApiError> {
    org.parse::<Scope>()
        .ok()
        .filter(|s| s.project().is_none())
        .ok_or_else(|| ApiError::BadRequest(format!("organisation {org:?} is not a valid name")))
}

/// Records a new version of the organisation's policy (organisation admins). The body is the
/// policy file (TOML, `name` = the organisation); Rego modules must be inline
/// (`rego = [{name = "...", source = "..."}]`). When the policy in force requires approval of
/// policy changes, the new version is proposed and waits for it.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/policy", tag = "governance",
    params(("org" = String, Path)),
    request_body(content = String, description = "The policy file (TOML)", content_type = "application/toml"),
    responses((status = 201, body = Object), (status = 422, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn policy_apply(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    body.require_media_type(&["application/toml", "text/plain"])?;
    let scope = org_scope(&org)?;
    caller.require(Permission::ManageAccess, &scope)?;
    let text = std::str::from_utf8(&body.bytes)
        .map_err(|_| ApiError::BadRequest("the policy file is not UTF-8".into()))?
        .to_owned();
    let actor = person_or_id(&caller);
    let (record, active, digest) = gov(&state, &org, move |g| {
        let (_, json) = trailmark_policy::Policy::from_toml(&text, &|name| {
            Err(format!(
                "{name}: module files cannot be read over HTTP; give {{name, source}} inline"
            ))
        })?;
        g.apply_policy(&json, &actor)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"record": record, "active": active, "digest": digest.to_string()})),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlainDecision {
    /// `approve` or `reject`.
    pub decision: String,
    pub comment: Option<String>,
}

fn approving(d: &str) -> Result<bool, ApiError> {
    match d {
        "approve" => Ok(true),
        "reject" => Ok(false),
        other => Err(ApiError::BadRequest(format!(
            "decision {other:?}: expected approve or reject"
        ))),
    }
}

fn person_actor(caller: &Caller, scope: &Scope) -> Result<Actor, ApiError> {
    let Some(person) = caller.0.person.clone() else {
        return Err(ApiError::Forbidden(
            "approvals are a person's decision: use a person's credentials, not a machine token"
                .into(),
        ));
    };
    Ok(Actor {
        identity: format!("person:{person}"),
        roles: trailmark_policy::ops::roles_on(&caller.0, &scope.to_string()),
    })
}

/// Approves (or rejects) the proposed version of the organisation's policy.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/policy/approvals", tag = "governance", request_body = PlainDecision,
    params(("org" = String, Path)),
    responses((status = 201, body = Object), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn policy_decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let scope = org_scope(&org)?;
    let name = org.clone();
    decide_on(
        &state,
        &caller,
        &org,
        &scope,
        trailmark_policy::Target::Policy,
        name,
        &body,
    )
    .await
}

/// A person's decision on a proposed policy version or an exception (`id`), in `scope`.
async fn decide_on(
    state: &AppState,
    caller: &Caller,
    org: &str,
    scope: &Scope,
    target: trailmark_policy::Target,
    id: String,
    body: &Body,
) -> Result<Response, ApiError> {
    let req: PlainDecision = json_body(body)?;
    let approve = approving(&req.decision)?;
    caller.require(Permission::Approve, scope)?;
    let actor = person_actor(caller, scope)?;
    let record = gov(state, org, move |g| {
        g.decide_other(target, &id, &actor, approve, req.comment.as_deref())
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"record": record}))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseException {
    /// Environments covered; all of the release's when empty.
    #[serde(default)]
    pub environments: Vec<String>,
    pub reason: String,
    /// How long it is valid: `30m`, `8h`, `2d`...
    pub valid_for: String,
    pub compensating_controls: Vec<String>,
    pub authorized_by: Option<String>,
}

/// Raises a break-glass exception for a release (release managers). It needs a retrospective
/// approval within the policy's deadline, or it becomes overdue and blocks further deploys.
#[utoipa::path(post, path = "/api/v1/releases/{org}/{project}/{release}/exceptions", tag = "governance", request_body = RaiseException,
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 201, body = Object), (status = 422, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn raise_exception(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: RaiseException = json_body(&body)?;
    let (id, scope) = release_id(&org, &project, &release)?;
    caller.require(Permission::ManageReleases, &scope)?;
    let span = trailmark_policy::Span::parse(&req.valid_for)
        .map_err(|e| ApiError::BadRequest(format!("valid_for: {e}")))?;
    let actor = person_or_id(&caller);
    let (exception, record, retro_due) = gov(&state, &org, move |g| {
        g.raise_exception(
            &id,
            &req.environments,
            &req.reason,
            &span,
            &req.compensating_controls,
            req.authorized_by.as_deref(),
            &actor,
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"exception": exception, "record": record, "retro_due": retro_due})),
    )
        .into_response())
}

/// A project's exceptions and their state now (awaiting approval, approved, overdue, ...).
#[utoipa::path(get, path = "/api/v1/exceptions/{org}/{project}", tag = "governance",
    params(("org" = String, Path), ("project" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn exceptions(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let scope = project_scope(&org, &project)?;
    caller.require(Permission::ReadEvidence, &scope)?;
    let p = scope.to_string();
    let list = gov(&state, &org, move |g| g.exceptions(&p)).await?;
    let list: Vec<_> = list
        .into_iter()
        .map(|(e, s)| json!({"id": e.id, "state": s, "exception": e}))
        .collect();
    Ok(axum::Json(list).into_response())
}

/// The retrospective approval (or rejection) of an exception, by a person other than its
/// requester. `id` is the last segment of the exception id (`EXC-...`).
#[utoipa::path(post, path = "/api/v1/exceptions/{org}/{project}/{id}/approvals", tag = "governance", request_body = PlainDecision,
    params(("org" = String, Path), ("project" = String, Path), ("id" = String, Path)),
    responses((status = 201, body = Object), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn decide_exception(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, id)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let scope = project_scope(&org, &project)?;
    let full = format!("{scope}/{id}");
    decide_on(
        &state,
        &caller,
        &org,
        &scope,
        trailmark_policy::Target::Exception,
        full,
        &body,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeRollback {
    pub environment: String,
    pub reason: String,
    /// The artifact digest to roll back to; its release must pass the gate before approval.
    pub target_artifact: String,
    pub plan: String,
    pub due: Option<String>,
    pub incident: Option<String>,
    pub deployment: Option<String>,
}

/// Proposes a rollback decision; the release is under monitoring until it is final or cleared.
#[utoipa::path(post, path = "/api/v1/releases/{org}/{project}/{release}/rollbacks", tag = "governance", request_body = ProposeRollback,
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 201, body = Object), (status = 422, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn propose_rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: ProposeRollback = json_body(&body)?;
    let (id, scope) = release_id(&org, &project, &release)?;
    caller.require(Permission::ManageReleases, &scope)?;
    let actor = person_or_id(&caller);
    let (rollback, record) = gov(&state, &org, move |g| {
        g.propose_rollback(
            &id,
            &req.environment,
            &req.reason,
            &req.target_artifact,
            &req.plan,
            req.due.as_deref(),
            req.incident.as_deref(),
            req.deployment.as_deref(),
            &actor,
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"rollback": rollback, "record": record})),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackStatus {
    /// `approved`, `executing`, `executed` or `cancelled`.
    pub status: String,
    pub note: Option<String>,
}

/// Moves a rollback decision on (`n` from its id `…/rollback-n`). Approving it evaluates and
/// records the gate of the release that shipped the target artifact, and is refused if it denies.
#[utoipa::path(post, path = "/api/v1/releases/{org}/{project}/{release}/rollbacks/{n}", tag = "governance", request_body = RollbackStatus,
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version"), ("n" = u32, Path)),
    responses((status = 201, body = Object), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn update_rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release, n)): Path<(String, String, String, u32)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: RollbackStatus = json_body(&body)?;
    let (id, scope) = release_id(&org, &project, &release)?;
    caller.require(Permission::ManageReleases, &scope)?;
    let actor = person_or_id(&caller);
    let rollback = format!("{id}/rollback-{n}");
    let (record, gate) = gov(&state, &org, move |g| {
        g.update_rollback(&rollback, &req.status, req.note.as_deref(), &actor)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"record": record, "target_gate": gate})),
    )
        .into_response())
}

/// Re-evaluates a recorded gate decision under its policy version and under the policy in
/// force today, and lists the differences.
#[utoipa::path(get, path = "/api/v1/gate-decisions/{record}/replay", tag = "governance",
    params(("record" = u64, Path)),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(record): Path<u64>,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let stored = blocking(move || Ok(st.store.record(trailmark_model::LogIndex(record))?)).await?;
    let project = stored
        .as_ref()
        .filter(|r| r.record.kind.as_str() == trailmark_policy::kinds::GATE_DECIDED)
        .and_then(|r| {
            r.record
                .subjects
                .iter()
                .find(|s| s.ty.as_str() == "project")
        })
        .map(|s| s.id.as_str().to_owned())
        .ok_or_else(|| ApiError::NotFound(format!("gate decision {record}")))?;
    let scope: Scope = project
        .parse()
        .map_err(|e| ApiError::Internal(format!("stored project {project:?}: {e}")))?;
    caller.require(Permission::ReadEvidence, &scope)?;
    log_read(&state, &caller, "gate.replay", json!({"record": record})).await?;
    let org = scope.org().to_string();
    let r = gov(&state, &org, move |g| g.replay(record)).await?;
    Ok(axum::Json(r).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearRelease {
    pub note: String,
}

/// Ends post-deploy monitoring of a release (release managers).
#[utoipa::path(post, path = "/api/v1/releases/{org}/{project}/{release}/clear", tag = "governance", request_body = ClearRelease,
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 201, body = Object), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn clear(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: ClearRelease = json_body(&body)?;
    let (id, scope) = release_id(&org, &project, &release)?;
    caller.require(Permission::ManageReleases, &scope)?;
    let actor = person_or_id(&caller);
    let record = gov(&state, &org, move |g| {
        g.clear_release(&id, &req.note, &actor)
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"record": record}))).into_response())
}
