//! The approvals queue of the signed-in approver: everything waiting for a decision in the
//! projects where they may approve, most urgent SLA first.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use trailmark_access::{Permission, Scope};
use trailmark_policy::Actor;
use trailmark_policy::ops::Pending;
use trailmark_server::AppState;

use super::{gov, log_read, orgs_with, release_href, render, short_time};
use crate::error::UiError;
use crate::viewer::{Nav, Viewer};

#[derive(Clone, Debug)]
pub struct QueueItem {
    pub pending: Pending,
    pub href: String,
    pub requested: String,
    pub due: String,
    /// Why the viewer cannot decide on it (separation of duties...), when they cannot.
    pub blocked: Option<String>,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    nav: Nav,
    items: Vec<QueueItem>,
}

/// Overdue first, then warning, then within SLA, then without one; earliest due first.
fn urgency(p: &Pending) -> (u8, String) {
    let rank = match p.sla {
        "overdue" => 0,
        "warning" => 1,
        "ok" => 2,
        _ => 3,
    };
    (rank, p.due_at.clone().unwrap_or_else(|| "9999".into()))
}

pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    let scopes = viewer.scopes(Permission::Approve)?;
    log_read(&state, &viewer, "approvals.pending", json!({})).await?;
    let mut all: Vec<Pending> = Vec::new();
    for org in orgs_with(&viewer, Permission::Approve) {
        match gov(&state, org.as_str(), |g| g.pending()).await {
            Ok(list) => all.extend(list),
            // An organisation without a policy has nothing pending.
            Err(UiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    all.retain(|p| {
        p.project
            .parse::<Scope>()
            .is_ok_and(|s| scopes.iter().any(|r| r.covers(&s)))
    });
    all.sort_by(|a, b| urgency(a).cmp(&urgency(b)).then(a.subject.cmp(&b.subject)));
    // Say which items this approver cannot decide on, and why, rather than let them find out
    // on submitting.
    let mut blocked = Vec::with_capacity(all.len());
    for p in &all {
        let reason = match (
            p.subject.strip_prefix("release:"),
            p.project.parse::<Scope>(),
        ) {
            (Some(id), Ok(scope)) => {
                let actor = Actor {
                    identity: format!("person:{}", viewer.user()),
                    roles: trailmark_policy::ops::roles_on(&viewer.caller.0, &scope.to_string()),
                };
                let id = id.to_owned();
                gov(&state, scope.org().as_str(), move |g| {
                    g.release_ineligibility(&id, &actor)
                })
                .await?
            }
            _ => None,
        };
        blocked.push(reason);
    }
    let items = all
        .into_iter()
        .zip(blocked)
        .map(|(p, blocked)| QueueItem {
            blocked,
            href: match p.subject.strip_prefix("release:") {
                Some(id) => release_href(id),
                None if p.subject.starts_with("exception:") => "/ui/exceptions".into(),
                None => "/ui/policies".into(),
            },
            requested: short_time(&p.requested_at),
            due: p.due_at.as_deref().map(short_time).unwrap_or_default(),
            pending: p,
        })
        .collect();
    render(&ApprovalsPage {
        nav: viewer.nav("approvals"),
        items,
    })
}
