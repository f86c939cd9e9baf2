//! The policies in force per organisation (with every version) and the break-glass exceptions
//! per project, with their state.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use trailmark_access::{Permission, Scope};
use trailmark_server::AppState;

use super::{gov, log_read, orgs_with, render, short_time, work};
use crate::error::UiError;
use crate::viewer::{Nav, Viewer};

#[derive(Clone, Debug)]
pub struct PolicyView {
    pub org: String,
    /// `None` when the organisation has no policy yet.
    pub active: Option<(u64, String)>,
    pub versions: Vec<(u64, String, bool)>,
    pub text: String,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    nav: Nav,
    policies: Vec<PolicyView>,
}

pub async fn policies(State(state): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    viewer.scopes(Permission::ReadEvidence)?;
    log_read(&state, &viewer, "policies", json!({})).await?;
    let mut policies = Vec::new();
    // Policies are organisation-wide: shown where the viewer may read the organisation.
    for org in orgs_with(&viewer, Permission::ReadEvidence) {
        if !viewer.may_read(&Scope::Org(org.clone())) {
            continue;
        }
        let name = org.to_string();
        let found = gov(&state, org.as_str(), |g| {
            let versions = g.policy_versions()?;
            let active = g.active_policy()?;
            Ok((versions, active))
        })
        .await;
        policies.push(match found {
            Ok((versions, active)) => PolicyView {
                org: name,
                active: Some((active.record, active.digest.to_string())),
                versions: versions
                    .iter()
                    .map(|v| (v.record, v.digest.to_string(), v.active))
                    .collect(),
                text: serde_json::to_string_pretty(&active.json).unwrap_or_default(),
            },
            Err(UiError::NotFound(_)) => PolicyView {
                org: name,
                active: None,
                versions: Vec::new(),
                text: String::new(),
            },
            Err(e) => return Err(e),
        });
    }
    render(&PoliciesPage {
        nav: viewer.nav("policies"),
        policies,
    })
}

#[derive(Clone, Debug)]
pub struct ExceptionRow {
    pub id: String,
    pub project: String,
    pub state: String,
    pub overdue: bool,
    pub requested_by: String,
    pub reason: String,
    pub environments: String,
    pub release: String,
    pub created: String,
    pub retro_due: String,
    pub expires: String,
    pub approvals: usize,
}

#[derive(Template)]
#[template(path = "exceptions.html")]
struct ExceptionsPage {
    nav: Nav,
    rows: Vec<ExceptionRow>,
}

pub async fn exceptions(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    let readable = viewer.scopes(Permission::ReadEvidence)?;
    log_read(&state, &viewer, "exceptions", json!({})).await?;
    let mut rows = Vec::new();
    for org in orgs_with(&viewer, Permission::ReadEvidence) {
        let o2 = org.clone();
        let projects = work(&state, move |st| {
            st.access
                .projects(&o2)
                .map_err(|e| UiError::from(trailmark_server::ApiError::from(e)))
        })
        .await?;
        for p in projects {
            let scope = Scope::Project(org.clone(), p.clone());
            if !readable.iter().any(|s| s.covers(&scope)) {
                continue;
            }
            let name = scope.to_string();
            let list = match gov(&state, org.as_str(), move |g| g.exceptions(&name)).await {
                Ok(l) => l,
                Err(UiError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            for (e, st) in list {
                rows.push(ExceptionRow {
                    id: e.id.clone(),
                    project: scope.to_string(),
                    overdue: matches!(st, trailmark_policy::eval::ExceptionState::Overdue),
                    state: format!("{st:?}").replace("AwaitingApproval", "awaiting approval"),
                    requested_by: e.requested_by.clone().unwrap_or_default(),
                    reason: e.reason.clone(),
                    environments: e.environments.join(", "),
                    release: e.release.clone().unwrap_or_else(|| "every release".into()),
                    created: short_time(&e.created_at),
                    retro_due: short_time(&e.retro_due),
                    expires: short_time(&e.expires_at),
                    approvals: e.approvals.len(),
                });
            }
        }
    }
    rows.sort_by(|a, b| b.overdue.cmp(&a.overdue).then(a.id.cmp(&b.id)));
    render(&ExceptionsPage {
        nav: viewer.nav("exceptions"),
        rows,
    })
}
