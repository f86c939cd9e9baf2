//! The dashboard: every release the viewer may read, by project, with its readiness (gate
//! status per environment, pending and overdue approvals, open exceptions, rollback decisions)
//! and the recent deployments.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};
use trailmark_access::{Permission, Scope};
use trailmark_model::{Record, Timestamp};
use trailmark_policy::kinds;
use trailmark_server::AppState;

use super::{
    each, gov, inline, is_readable, log_read, of_kind, orgs_with, release_href, render, short_time,
    subject_id, text, work,
};
use crate::error::UiError;
use crate::viewer::{Nav, Viewer};

/// One release's line on the dashboard.
#[derive(Clone, Debug)]
pub struct ReleaseRow {
    pub id: String,
    pub project: String,
    pub title: String,
    pub href: String,
    pub environments: String,
    pub created_at: String,
    /// `blocked`, `waiting` or `ready`: what a release manager needs at a glance.
    pub readiness: &'static str,
    pub gates: Vec<(String, String)>,
    pub failing: usize,
    pub pending: usize,
    pub overdue: usize,
    pub exceptions: usize,
    pub rollbacks: usize,
}

#[derive(Clone, Debug)]
pub struct DeployRow {
    pub record: u64,
    pub environment: String,
    pub status: String,
    pub commit: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Nav,
    projects: Vec<(String, Vec<ReleaseRow>)>,
    deployments: Vec<DeployRow>,
}

/// Every `release.created` record the viewer may read (newest first), at most `limit`.
pub fn releases(st: &AppState, readable: &[Scope], limit: usize) -> Result<Vec<Record>, UiError> {
    let mut out = Vec::new();
    each(st, of_kind(kinds::RELEASE_CREATED)?, |r| {
        if is_readable(st, readable, &r.record) {
            out.push(r.record);
        }
        Ok(())
    })?;
    out.reverse();
    out.truncate(limit);
    Ok(out)
}

/// The latest deployments the viewer may read (newest first).
pub fn recent_deployments(
    st: &AppState,
    readable: &[Scope],
    since: Timestamp,
    limit: usize,
) -> Result<Vec<DeployRow>, UiError> {
    let mut rows: Vec<(u64, DeployRow)> = Vec::new();
    for k in trailmark_dossier::audit::DEPLOY_KINDS {
        let mut q = of_kind(k)?;
        q.since = Some(since);
        each(st, q, |r| {
            let rec = &r.record;
            if !is_readable(st, readable, rec) {
                return Ok(());
            }
            let p = inline(rec);
            let environment = subject_id(rec, "environment")
                .or_else(|| text(&p, "/environment"))
                .unwrap_or_else(|| "unknown".into());
            let status = text(&p, "/state")
                .or_else(|| text(&p, "/status"))
                .unwrap_or_else(|| "deployed".into());
            let commit = rec
                .links
                .iter()
                .find(|l| l.to.ty.as_str() == "commit")
                .map(|l| l.to.id.as_str().chars().take(12).collect())
                .unwrap_or_default();
            rows.push((
                rec.index.0,
                DeployRow {
                    record: rec.index.0,
                    environment,
                    status,
                    commit,
                    at: short_time(&rec.recorded_at.to_string()),
                },
            ));
            Ok(())
        })?;
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    rows.truncate(limit);
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

/// The gate decisions recorded for a release: the latest per environment.
fn latest_gates(st: &AppState, id: &str) -> Result<Vec<(String, String)>, UiError> {
    let mut q = of_kind(kinds::GATE_DECIDED)?;
    q.subject = Some(
        trailmark_model::Subject::parse("release", id)
            .map_err(|e| UiError::BadRequest(format!("release {id:?}: {e:?}")))?,
    );
    let mut by_env: std::collections::BTreeMap<String, String> = Default::default();
    each(st, q, |r| {
        let env = subject_id(&r.record, "environment").unwrap_or_default();
        let decision = text(&inline(&r.record), "/decision").unwrap_or_else(|| "unknown".into());
        by_env.insert(env, decision);
        Ok(())
    })?;
    Ok(by_env.into_iter().collect())
}

pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    let readable = viewer.scopes(Permission::ReadEvidence)?;
    log_read(&state, &viewer, "dashboard", json!({})).await?;
    let r2 = readable.clone();
    let (records, deployments) = work(&state, move |st| {
        let since = Timestamp(
            jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_hours(24 * 30))
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        );
        Ok((
            releases(st, &r2, 200)?,
            recent_deployments(st, &r2, since, 15)?,
        ))
    })
    .await?;
    let orgs = orgs_with(&viewer, Permission::ReadEvidence);
    let mut rows: Vec<ReleaseRow> = Vec::new();
    for rec in records {
        let Some(id) = subject_id(&rec, "release") else {
            continue;
        };
        let org = id.split('/').next().unwrap_or_default().to_owned();
        if !orgs.iter().any(|o| o.as_str() == org) {
            continue;
        }
        let p = inline(&rec);
        let id2 = id.clone();
        let checks = gov(&state, &org, move |g| g.checks(&id2)).await;
        let st = state.clone();
        let id3 = id.clone();
        let gates = work(&state, move |_| latest_gates(&st, &id3)).await?;
        let (failing, pending, overdue, exceptions, rollbacks) = match &checks {
            Ok(items) => (
                items
                    .iter()
                    .filter(|c| c.status == "failing" && c.severity == "blocking")
                    .count(),
                items.iter().filter(|c| c.status == "pending").count(),
                items.iter().filter(|c| c.status == "overdue").count(),
                items
                    .iter()
                    .filter(|c| c.entity.starts_with("exception:") && c.status != "passing")
                    .count(),
                items
                    .iter()
                    .filter(|c| c.entity.starts_with("rollback:"))
                    .count(),
            ),
            // No policy yet for the organisation: nothing can be evaluated.
            Err(_) => (0, 0, 0, 0, 0),
        };
        let readiness = if checks.is_err() || failing > 0 || overdue > 0 {
            "blocked"
        } else if pending > 0 {
            "waiting"
        } else {
            "ready"
        };
        rows.push(ReleaseRow {
            href: release_href(&id),
            project: text(&p, "/project").unwrap_or_default(),
            title: format!(
                "{} {}",
                text(&p, "/name").unwrap_or_default(),
                text(&p, "/version").unwrap_or_default()
            ),
            environments: p
                .get("environments")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            created_at: short_time(&rec.recorded_at.to_string()),
            id,
            readiness,
            gates,
            failing,
            pending,
            overdue,
            exceptions,
            rollbacks,
        });
    }
    let mut projects: Vec<(String, Vec<ReleaseRow>)> = Vec::new();
    rows.sort_by(|a, b| a.project.cmp(&b.project));
    for row in rows {
        match projects.last_mut() {
            Some((p, list)) if *p == row.project => list.push(row),
            _ => projects.push((row.project.clone(), vec![row])),
        }
    }
    render(&DashboardPage {
        nav: viewer.nav("dashboard"),
        projects,
        deployments,
    })
}
