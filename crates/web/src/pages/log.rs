//! The log's status (size, latest signed checkpoint, last full verification) and the audit
//! log explorer: who signed in, read, exported, and changed access, from the `access.*` and
//! `security.*` records. Auditors (and admins) can run a full verification from here; its
//! outcome is itself recorded (`security.log_verified`).

use std::sync::atomic::{AtomicBool, Ordering};

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use trailmark_access::Permission;
use trailmark_model::Kind;
use trailmark_server::AppState;
use trailmark_server::auth::governance_record;
use trailmark_server::extract::Body;

use super::{
    check_csrf, each, form, inline, is_readable, log_read, of_kind, orgs_with, query, render,
    short_time, work,
};
use crate::error::UiError;
use crate::viewer::{Nav, Viewer};

static VERIFYING: AtomicBool = AtomicBool::new(false);

/// The kinds the explorer offers (the access-governance trail).
pub const AUDIT_KINDS: [&str; 12] = [
    "access.read",
    "access.login",
    "access.token_created",
    "access.token_revoked",
    "access.role_granted",
    "access.role_revoked",
    "access.user_created",
    "access.org_created",
    "access.project_created",
    "security.login_failed",
    "security.webhook_rejected",
    "security.log_verified",
];

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub actor: String,
    pub after: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct AuditRow {
    pub index: u64,
    pub kind: String,
    pub at: String,
    pub actor: String,
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct LastVerification {
    pub index: u64,
    pub at: String,
    pub ok: bool,
    pub records: u64,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "log.html")]
struct LogPage {
    nav: Nav,
    origin: String,
    verifier: String,
    size: u64,
    note: String,
    last: Option<LastVerification>,
    can_audit: bool,
    q: AuditQuery,
    kinds: Vec<&'static str>,
    rows: Vec<AuditRow>,
    next: Option<String>,
    notice: Option<String>,
}

fn detail(v: &Value) -> String {
    let mut parts = Vec::new();
    if let Value::Object(m) = v {
        for (k, val) in m {
            let text = match val {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            let mut text: String = text.chars().take(120).collect();
            if text.len() >= 120 {
                text.push('…');
            }
            parts.push(format!("{k}: {text}"));
        }
    }
    parts.join("; ")
}

/// The latest `security.log_verified` record.
fn last_verification(st: &AppState) -> Result<Option<LastVerification>, UiError> {
    let mut last = None;
    each(st, of_kind("security.log_verified")?, |r| {
        last = Some(r);
        Ok(())
    })?;
    Ok(last.map(|r| {
        let p = inline(&r.record);
        LastVerification {
            index: r.record.index.0,
            at: short_time(&r.record.recorded_at.to_string()),
            ok: p.get("ok").and_then(Value::as_bool).unwrap_or(false),
            records: p.get("records").and_then(Value::as_u64).unwrap_or(0),
            summary: p
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    }))
}

#[derive(Debug, Default, Deserialize)]
struct Notice {
    verified: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    viewer.scopes(Permission::ReadLog)?;
    let q: AuditQuery = query(raw.clone())?;
    let notice: Notice =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let can_audit = viewer.can(Permission::ExportEvidence);
    let kind = match q.kind.trim() {
        "" => None,
        k if AUDIT_KINDS.contains(&k) => {
            Some(Kind::parse(k).map_err(|e| UiError::BadRequest(e.to_string()))?)
        }
        k => {
            return Err(UiError::BadRequest(format!(
                "kind {k:?} is not one of the audit kinds: {}",
                AUDIT_KINDS.join(", ")
            )));
        }
    };
    if can_audit {
        log_read(
            &state,
            &viewer,
            "audit.explore",
            json!({"kind": q.kind, "actor": q.actor}),
        )
        .await?;
    }
    let readable = viewer.caller.0.readable_scopes(Permission::ReadEvidence);
    let actor = q.actor.trim().to_owned();
    let after = q.after;
    let (origin, verifier, size, note, last, rows, more) = work(&state, move |st| {
        let cp = st
            .store
            .latest_checkpoint()
            .map_err(trailmark_server::ApiError::from)?;
        let last = last_verification(st)?;
        let mut rows = Vec::new();
        let mut more = None;
        if can_audit {
            let kinds: Vec<Kind> = match kind {
                Some(k) => vec![k],
                None => AUDIT_KINDS
                    .iter()
                    .filter_map(|k| Kind::parse(k).ok())
                    .collect(),
            };
            // Newest first across the audit kinds: gather each kind's records, then order.
            let mut found = Vec::new();
            for k in kinds {
                let mut q = of_kind("access.read")?;
                q.kind = Some(k);
                each(st, q, |r| {
                    let keep = after.is_none_or(|a| r.record.index.0 < a)
                        && is_readable(st, &readable, &r.record)
                        && (actor.is_empty() || r.record.actor.as_deref() == Some(actor.as_str()));
                    if keep {
                        found.push(r.record);
                    }
                    Ok(())
                })?;
            }
            found.sort_by_key(|r| std::cmp::Reverse(r.index));
            if found.len() > 100 {
                more = found.get(99).map(|r| r.index.0);
                found.truncate(100);
            }
            rows = found
                .into_iter()
                .map(|r| AuditRow {
                    index: r.index.0,
                    kind: r.kind.as_str().to_owned(),
                    at: short_time(&r.recorded_at.to_string()),
                    actor: r.actor.clone().unwrap_or_default(),
                    detail: detail(&inline(&r)),
                })
                .collect();
        }
        Ok((
            st.store.origin().to_owned(),
            st.store.verifier().to_string(),
            cp.as_ref().map_or(0, |c| c.size),
            cp.map(|c| c.note).unwrap_or_default(),
            last,
            rows,
            more,
        ))
    })
    .await?;
    let next = more.map(|a| {
        format!(
            "/ui/log?{}",
            serde_urlencoded::to_string([
                ("kind", q.kind.as_str()),
                ("actor", q.actor.as_str()),
                ("after", &a.to_string()),
            ])
            .unwrap_or_default()
        )
    });
    render(&LogPage {
        nav: viewer.nav("log"),
        origin,
        verifier,
        size,
        note,
        last,
        can_audit,
        kinds: AUDIT_KINDS.to_vec(),
        q,
        rows,
        next,
        notice: notice.verified.map(|v| {
            if v == "ok" {
                "Full verification passed.".to_owned()
            } else {
                "Full verification FAILED: see the summary below.".to_owned()
            }
        }),
    })
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    csrf: String,
}

/// Runs a full verification of the log (every leaf, the tree, every checkpoint) and records
/// its outcome.
pub async fn verify(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Body,
) -> Result<Response, UiError> {
    let f: VerifyForm = form(&body)?;
    check_csrf(&viewer, &f.csrf)?;
    viewer.scopes(Permission::ExportEvidence)?;
    let actor = format!("user:{}", viewer.user());
    let orgs = orgs_with(&viewer, Permission::ExportEvidence);
    // A full verification reads the whole log: one at a time, whoever asks.
    if VERIFYING.swap(true, Ordering::SeqCst) {
        return Err(UiError::Refused(
            "a full verification is already running; its outcome will show on the log page".into(),
        ));
    }
    let result = work(&state, move |st| {
        let report = trailmark_store::verify_log(
            st.store.as_ref(),
            std::slice::from_ref(st.store.verifier()),
            &mut |_, _| {},
        )
        .map_err(trailmark_server::ApiError::from)?;
        let ok = report.failures.is_empty();
        let summary = if ok {
            format!(
                "{} records, {} checkpoints and {} stored tree nodes verified",
                report.records, report.checkpoints, report.nodes
            )
        } else {
            report
                .failures
                .iter()
                .take(5)
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let rec = governance_record(
            "security.log_verified",
            &actor,
            &orgs,
            Vec::new(),
            json!({
                "ok": ok,
                "records": report.records,
                "checkpoints": report.checkpoints,
                "size": report.latest.as_ref().map(|c| c.size),
                "root": report.latest.as_ref().map(|c| c.root.to_base64()),
                "failures": report.failures.len(),
                "summary": summary,
            }),
        )?;
        st.store
            .append(vec![rec])
            .map_err(trailmark_server::ApiError::from)?;
        Ok(ok)
    })
    .await;
    VERIFYING.store(false, Ordering::SeqCst);
    let ok = result?;
    let to = format!("/ui/log?verified={}", if ok { "ok" } else { "failed" });
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response())
}
