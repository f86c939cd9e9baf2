//! Changes to who may do what, each applied to the access store *and* appended to the evidence
//! log as an `access.*` record (who changed what, when). Shared by the HTTP API and the CLI
//! (`trailmark token|user|org`), so both leave the same trail.
//!
//! Order: the change is applied first (so a refused change, say a duplicate name, leaves no
//! false record), then logged; if the log append fails the change is undone where it can be
//! (a token is revoked, a grant withdrawn) and the failure is reported.

use serde_json::json;
use trailmark_access::{
    AccessStore, Grant, OrgName, ProjectName, Scope, TokenId, TokenInfo, TokenSecret,
};
use trailmark_model::Subject;
use trailmark_store::Store;

use crate::auth::{governance_record, principal_subject};
use crate::error::ApiError;

fn log(
    store: &dyn Store,
    kind: &str,
    actor: &str,
    org: &OrgName,
    about: Option<&str>,
    payload: serde_json::Value,
) -> Result<(), ApiError> {
    let subjects: Vec<Subject> = about.and_then(principal_subject).into_iter().collect();
    let record = governance_record(kind, actor, std::slice::from_ref(org), subjects, payload)?;
    store.append(vec![record])?;
    Ok(())
}

fn ts(t: Option<jiff::Timestamp>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| json!(t.to_string()))
}

pub fn create_org(
    store: &dyn Store,
    access: &AccessStore,
    actor: &str,
    org: &OrgName,
) -> Result<(), ApiError> {
    access.create_org(org).map_err(conflict_or)?;
    log(
        store,
        "access.org_created",
        actor,
        org,
        None,
        json!({ "org": org.to_string() }),
    )
}

pub fn create_project(
    store: &dyn Store,
    access: &AccessStore,
    actor: &str,
    org: &OrgName,
    project: &ProjectName,
) -> Result<(), ApiError> {
    access.create_project(org, project).map_err(conflict_or)?;
    log(
        store,
        "access.project_created",
        actor,
        org,
        None,
        json!({ "project": format!("{org}/{project}") }),
    )
}

pub fn create_user(
    store: &dyn Store,
    access: &AccessStore,
    actor: &str,
    org: &OrgName,
    name: &str,
    password: &str,
) -> Result<(), ApiError> {
    access.create_user(name, password).map_err(conflict_or)?;
    let principal = format!("user:{name}");
    log(
        store,
        "access.user_created",
        actor,
        org,
        Some(&principal),
        json!({ "user": name }),
    )
}

pub fn grant(
    store: &dyn Store,
    access: &AccessStore,
    actor: &str,
    user: &str,
    grant: &Grant,
) -> Result<(), ApiError> {
    access.grant(user, grant.clone()).map_err(conflict_or)?;
    let principal = format!("user:{user}");
    let logged = log(
        store,
        "access.role_granted",
        actor,
        grant.scope.org(),
        Some(&principal),
        json!({ "user": user, "role": grant.role.to_string(), "scope": grant.scope.to_string() }),
    );
    if logged.is_err() {
        let _ = access.revoke_grant(user, grant);
    }
    logged
}

pub fn revoke_grant(
    store: &dyn Store,
    access: &AccessStore,
    actor: &str,
    user: &str,
    grant: &Grant,
) -> Result<bool, ApiError> {
    let removed = access.revoke_grant(user, grant).map_err(conflict_or)?;
    if removed {
        let principal = format!("user:{user}");
        log(
            store,
            "access.role_revoked",
            actor,
            grant.scope.org(),
            Some(&principal),
            json!({ "user": user, "role": grant.role.to_string(), "scope": grant.scope.to_string() }),
        )?;
    }
    Ok(removed)
}

#[derive(Debug)]
pub struct NewToken {
    pub name: String,
    pub grant: Grant,
    pub owner: Option<String>,
    pub expires_at: Option<jiff::Timestamp>,
}

pub fn create_token(
    store: &dyn Store,
    access: &AccessStore,
    actor: &str,
    t: NewToken,
) -> Result<(TokenSecret, TokenInfo), ApiError> {
    let now = jiff::Timestamp::now();
    let (secret, info) = access
        .create_token(
            &t.name,
            t.grant,
            t.owner.as_deref(),
            t.expires_at,
            actor,
            now,
        )
        .map_err(conflict_or)?;
    let principal = format!("token:{}", info.id);
    let logged = log(
        store,
        "access.token_created",
        actor,
        info.grant.scope.org(),
        Some(&principal),
        token_json(&info),
    );
    if let Err(e) = logged {
        let _ = access.revoke_token(&info.id, now);
        return Err(e);
    }
    Ok((secret, info))
}

pub fn revoke_token(
    store: &dyn Store,
    access: &AccessStore,
    actor: &str,
    id: &TokenId,
) -> Result<TokenInfo, ApiError> {
    let info = access
        .revoke_token(id, jiff::Timestamp::now())
        .map_err(conflict_or)?;
    let principal = format!("token:{}", info.id);
    log(
        store,
        "access.token_revoked",
        actor,
        info.grant.scope.org(),
        Some(&principal),
        token_json(&info),
    )?;
    Ok(info)
}

/// A token's public description (never its secret or hash).
pub fn token_json(info: &TokenInfo) -> serde_json::Value {
    json!({
        "id": info.id.to_string(),
        "name": info.name,
        "role": info.grant.role.to_string(),
        "scope": info.grant.scope.to_string(),
        "owner": info.owner,
        "created_at": info.created_at.to_string(),
        "created_by": info.created_by,
        "expires_at": ts(info.expires_at),
        "revoked_at": ts(info.revoked_at),
    })
}

/// Access-store errors: "already exists" is a 409, other client errors 400/404.
pub fn conflict_or(e: trailmark_access::AccessError) -> ApiError {
    use trailmark_access::AccessError as E;
    match &e {
        E::Duplicate { .. } | E::AlreadyRevoked { .. } => ApiError::Conflict(e.to_string()),
        E::UnknownOrg { .. }
        | E::UnknownProject { .. }
        | E::UnknownUser { .. }
        | E::UnknownToken { .. } => ApiError::NotFound(e.to_string()),
        _ => ApiError::from(e),
    }
}

/// The scope a project name text refers to.
pub fn project_scope(org: &OrgName, project: &ProjectName) -> Scope {
    Scope::Project(org.clone(), project.clone())
}
