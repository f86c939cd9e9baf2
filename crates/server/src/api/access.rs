//! Managing access over HTTP: tokens, users and their role grants, projects. Admins only
//! (`ManageAccess` on the scope concerned); every change is logged by [`crate::governance`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use trailmark_access::{Grant, OrgName, Permission, ProjectName, Role, Scope, TokenId};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, blocking};
use crate::extract::{Body, Path, Query};
use crate::governance::{self, NewToken};
use crate::state::AppState;

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &Body) -> Result<T, ApiError> {
    body.require_media_type(&["application/json"])?;
    serde_json::from_slice(&body.bytes).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

fn parse_scope(s: &str) -> Result<Scope, ApiError> {
    s.parse::<Scope>()
        .map_err(|e| ApiError::BadRequest(format!("scope {s:?}: {e}")))
}

fn parse_org(s: &str) -> Result<OrgName, ApiError> {
    s.parse::<OrgName>()
        .map_err(|e| ApiError::BadRequest(format!("org {s:?}: {e}")))
}

fn parse_grant(req: &GrantRequest) -> Result<Grant, ApiError> {
    Ok(Grant {
        role: parse_role(&req.role)?,
        scope: parse_scope(&req.scope)?,
    })
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    s.parse::<Role>()
        .map_err(|e| ApiError::BadRequest(format!("role {s:?}: {e}")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for, e.g. `payments CI`.
    pub name: String,
    pub role: String,
    /// `org` or `org/project`.
    pub scope: String,
    /// The user the token acts for (a person token: its reads are access-logged and it can
    /// never do more than that user).
    pub owner: Option<String>,
    /// RFC 3339 expiry. Tokens without one last until revoked.
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token. Shown only here, once: Trailmark keeps only its SHA-256.
    pub token: String,
    #[schema(value_type = Object)]
    pub info: Value,
}

/// Creates an API token (admin of the token's scope).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "access", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    let req: CreateToken = json_body(&body)?;
    let scope = parse_scope(&req.scope)?;
    caller.require(Permission::ManageAccess, &scope)?;
    let role = parse_role(&req.role)?;
    let expires_at = req
        .expires_at
        .as_deref()
        .map(|t| {
            t.parse::<jiff::Timestamp>()
                .map_err(|e| ApiError::BadRequest(format!("expires_at {t:?}: {e}")))
        })
        .transpose()?;
    let actor = caller.actor();
    let st = state.clone();
    let (secret, info) = blocking(move || {
        governance::create_token(
            st.store.as_ref(),
            &st.access,
            &actor,
            NewToken {
                name: req.name,
                grant: Grant { role, scope },
                owner: req.owner,
                expires_at,
            },
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            token: secret.expose().to_owned(),
            info: governance::token_json(&info),
        }),
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTokens {
    pub org: String,
}

/// Lists an organisation's tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "access", params(ListTokens),
    responses((status = 200, body = Vec<Object>), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<ListTokens>,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    let org = parse_org(&p.org)?;
    caller.require(Permission::ManageAccess, &Scope::Org(org.clone()))?;
    let access = state.access.clone();
    let tokens = blocking(move || Ok(access.tokens(Some(&org))?)).await?;
    Ok(axum::Json(
        tokens.iter().map(governance::token_json).collect(),
    ))
}

/// Revokes a token at once (admin of the token's scope).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "access",
    params(("id" = String, Path, description = "Token id (the part after tmk_)")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let id: TokenId = id
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("token id {id:?}: {e}")))?;
    let access = state.access.clone();
    let lookup = id.clone();
    let info = blocking(move || {
        access
            .tokens(None)
            .map_err(ApiError::from)
            .map(|ts| ts.into_iter().find(|t| t.id == lookup))
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("there is no token {id}")))?;
    caller.require(Permission::ManageAccess, &info.grant.scope)?;
    let actor = caller.actor();
    let st = state.clone();
    let info =
        blocking(move || governance::revoke_token(st.store.as_ref(), &st.access, &actor, &id))
            .await?;
    Ok(axum::Json(governance::token_json(&info)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    /// At least 12 characters; stored only as an argon2id hash.
    pub password: String,
    /// The organisation to file the record of this creation under (the caller must admin it).
    pub org: String,
}

/// Creates a local user (for the web UI). Grants are separate.
#[utoipa::path(post, path = "/api/v1/users", tag = "access", request_body = CreateUser,
    responses((status = 201, body = Object), (status = 400, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    let req: CreateUser = json_body(&body)?;
    let org = parse_org(&req.org)?;
    caller.require(Permission::ManageAccess, &Scope::Org(org.clone()))?;
    let actor = caller.actor();
    let st = state.clone();
    let name = req.name.clone();
    blocking(move || {
        governance::create_user(
            st.store.as_ref(),
            &st.access,
            &actor,
            &org,
            &req.name,
            &req.password,
        )
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "user": name })),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub role: String,
    pub scope: String,
}

/// Grants a user a role in an organisation or project (admin of that scope).
#[utoipa::path(post, path = "/api/v1/users/{name}/grants", tag = "access", request_body = GrantRequest,
    params(("name" = String, Path)),
    responses((status = 201, body = Object), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn add_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let grant = parse_grant(&json_body(&body)?)?;
    caller.require(Permission::ManageAccess, &grant.scope)?;
    let actor = caller.actor();
    let st = state.clone();
    let g = grant.clone();
    blocking(move || governance::grant(st.store.as_ref(), &st.access, &actor, &name, &g)).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(
            serde_json::json!({ "role": grant.role.to_string(), "scope": grant.scope.to_string() }),
        ),
    )
        .into_response())
}

/// Withdraws a role grant (admin of that scope).
#[utoipa::path(delete, path = "/api/v1/users/{name}/grants", tag = "access",
    params(("name" = String, Path), GrantRequest),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(req): Query<GrantRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let grant = parse_grant(&req)?;
    caller.require(Permission::ManageAccess, &grant.scope)?;
    let actor = caller.actor();
    let st = state.clone();
    let g = grant.clone();
    let removed = blocking(move || {
        governance::revoke_grant(st.store.as_ref(), &st.access, &actor, &name, &g)
    })
    .await?;
    if !removed {
        return Err(ApiError::NotFound(format!(
            "the user does not hold {} on {}",
            grant.role, grant.scope
        )));
    }
    Ok(axum::Json(serde_json::json!({ "revoked": true })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
}

/// Creates a project (team) inside an organisation (admin of the organisation).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/projects", tag = "access", request_body = CreateProject,
    params(("org" = String, Path)),
    responses((status = 201, body = Object), (status = 400, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: CreateProject = json_body(&body)?;
    let org = parse_org(&org)?;
    let project: ProjectName = req
        .name
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("project {:?}: {e}", req.name)))?;
    caller.require(Permission::ManageAccess, &Scope::Org(org.clone()))?;
    let actor = caller.actor();
    let st = state.clone();
    let scope = governance::project_scope(&org, &project);
    blocking(move || {
        governance::create_project(st.store.as_ref(), &st.access, &actor, &org, &project)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "project": scope.to_string() })),
    )
        .into_response())
}

/// The caller's identity and roles.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "access",
    responses((status = 200, body = Object), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn whoami(caller: Caller) -> axum::Json<Value> {
    axum::Json(serde_json::json!({
        "id": caller.id(),
        "person": caller.is_person(),
        "grants": caller.0.grants.iter().map(|g| serde_json::json!({
            "role": g.role.to_string(), "scope": g.scope.to_string()
        })).collect::<Vec<_>>(),
    }))
}
