//! The release page: the dossier view (five questions, story, traceability matrix, control
//! mapping, gaps), the gate decisions with each check's reason, the trace graph, the approval
//! state and — for eligible approvers — approve/reject over the exact evidence digest shown.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use trailmark_access::Permission;
use trailmark_dossier::View;
use trailmark_model::Payload;
use trailmark_policy::eval::Tally;
use trailmark_policy::ops::CheckItem;
use trailmark_policy::{Actor, kinds};
use trailmark_server::AppState;
use trailmark_server::extract::{Body, Path};

use super::{
    check_csrf, each, encode_component, form, gov, log_read, of_kind, project_scope, query,
    release_href, render, short_time, subject_id, work,
};
use crate::error::UiError;
use crate::viewer::{Nav, Viewer};

#[derive(Clone, Debug)]
pub struct Certification {
    pub record: u64,
    pub environment: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "release.html")]
struct ReleasePage {
    nav: Nav,
    id: String,
    href: String,
    api: String,
    view: View,
    checks: Vec<CheckItem>,
    tally: Option<Tally>,
    evidence_digest: String,
    policy_digest: String,
    monitoring: bool,
    can_approve: bool,
    /// Why a viewer who approves elsewhere may not decide on this release.
    ineligible: Option<String>,
    can_export: bool,
    certifications: Vec<Certification>,
    trace_svg: String,
    notice: Option<String>,
}

impl ReleasePage {
    fn status_class(s: &str) -> &'static str {
        match s {
            "yes" | "pass" | "passing" | "allow" | "satisfied" | "met" => "ok",
            "partial" | "pending" | "warning" | "allow_with_exception" => "partial",
            "no" | "fail" | "failing" | "deny" | "overdue" | "gap" | "not met" => "bad",
            _ => "unknown",
        }
    }
    fn short<'a>(&self, s: &'a str) -> &'a str {
        s.get(..12).unwrap_or(s)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

fn ids(
    org: &str,
    project: &str,
    release: &str,
) -> Result<(String, trailmark_access::Scope), UiError> {
    let scope = project_scope(org, project)?;
    Ok((format!("{scope}/{release}"), scope))
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((org, project, release)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let q: PageQuery = query(raw)?;
    let (id, scope) = ids(&org, &project, &release)?;
    viewer.require(Permission::ReadEvidence, &scope)?;
    log_read(&state, &viewer, "release", json!({"release": id})).await?;
    let id2 = id.clone();
    let can_approve = viewer
        .caller
        .0
        .decide(Permission::Approve, &scope)
        .is_allow();
    let actor = Actor {
        identity: format!("person:{}", viewer.user()),
        roles: trailmark_policy::ops::roles_on(&viewer.caller.0, &scope.to_string()),
    };
    let (checks, tally, evidence_digest, policy_digest, monitoring, ineligible) =
        gov(&state, &org, move |g| {
            let (snap, policy) = g.snapshot(&id2, None, None)?;
            let tally = trailmark_policy::eval::release_tally(&policy.policy, &snap.input);
            // Offer the decision only to those who may make it; say why to the others.
            let ineligible = if can_approve {
                g.release_ineligibility(&id2, &actor)?
            } else {
                None
            };
            Ok((
                g.checks(&id2)?,
                tally,
                snap.input.approval.evidence_digest.clone(),
                policy.digest.to_string(),
                g.monitoring(&id2)?,
                ineligible,
            ))
        })
        .await?;
    let (id3, org3) = (id.clone(), org.clone());
    let (view, certifications) = work(&state, move |st| {
        let people = st.people();
        let view = trailmark_dossier::explain(st.store.as_ref(), &people, &org3, &id3).map_err(
            |e| match e {
                trailmark_dossier::DossierError::Policy(p) => super::policy_error(p),
                other => UiError::Internal(other.to_string()),
            },
        )?;
        Ok((view, certifications(st, &id3)?))
    })
    .await?;
    let trace_svg = crate::trace::svg(&view);
    let notice = match q.done.as_deref() {
        Some("approve") => Some("Your approval was recorded.".to_owned()),
        Some("reject") => Some("Your rejection was recorded.".to_owned()),
        _ => None,
    };
    let api = format!(
        "/api/v1/releases/{}/{}/{}",
        encode_component(&org),
        encode_component(&project),
        encode_component(&release)
    );
    render(&ReleasePage {
        nav: viewer.nav("dashboard"),
        href: release_href(&id),
        can_approve: can_approve && ineligible.is_none(),
        ineligible,
        can_export: viewer
            .caller
            .0
            .decide(Permission::ExportEvidence, &scope)
            .is_allow(),
        id,
        api,
        view,
        checks,
        tally,
        evidence_digest,
        policy_digest,
        monitoring,
        certifications,
        trace_svg,
        notice,
    })
}

fn certifications(st: &AppState, id: &str) -> Result<Vec<Certification>, UiError> {
    let mut q = of_kind(kinds::RELEASE_CERTIFIED)?;
    q.subject = Some(
        trailmark_model::Subject::parse("release", id)
            .map_err(|e| UiError::BadRequest(format!("release {id:?}: {e:?}")))?,
    );
    let mut out = Vec::new();
    each(st, q, |r| {
        out.push(Certification {
            record: r.record.index.0,
            environment: subject_id(&r.record, "environment").unwrap_or_default(),
            at: short_time(&r.record.recorded_at.to_string()),
        });
        Ok(())
    })?;
    Ok(out)
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    csrf: String,
    decision: String,
    evidence_digest: String,
    comment: Option<String>,
}

/// Approve or reject, as the signed-in person, over the evidence digest the page showed. The
/// governance rules decide: an ineligible approver, an author, or a stale digest is refused
/// and nothing is recorded.
pub async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((org, project, release)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, UiError> {
    let f: DecisionForm = form(&body)?;
    check_csrf(&viewer, &f.csrf)?;
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(UiError::BadRequest(format!(
                "decision {other:?}: expected approve or reject"
            )));
        }
    };
    let (id, scope) = ids(&org, &project, &release)?;
    viewer.require(Permission::Approve, &scope)?;
    let actor = Actor {
        identity: format!("person:{}", viewer.user()),
        roles: trailmark_policy::ops::roles_on(&viewer.caller.0, &scope.to_string()),
    };
    let comment = f.comment.filter(|c| !c.trim().is_empty());
    let id2 = id.clone();
    gov(&state, &org, move |g| {
        g.decide_release(
            &id2,
            &actor,
            approve,
            Some(&f.evidence_digest),
            comment.as_deref(),
        )
    })
    .await?;
    let to = format!(
        "{}?done={}",
        release_href(&id),
        if approve { "approve" } else { "reject" }
    );
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response())
}

/// The latest release certification (SLSA VSA in a DSSE envelope) as a download.
pub async fn vsa(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((org, project, release)): Path<(String, String, String)>,
) -> Result<Response, UiError> {
    let (id, scope) = ids(&org, &project, &release)?;
    viewer.require(Permission::ExportEvidence, &scope)?;
    log_read(&state, &viewer, "release.vsa", json!({"release": id})).await?;
    let id2 = id.clone();
    let envelope = work(&state, move |st| {
        let last = certifications(st, &id2)?
            .pop()
            .ok_or_else(|| UiError::NotFound(format!("release {id2} has not been certified")))?;
        let rec = st
            .store
            .record(trailmark_model::LogIndex(last.record))
            .map_err(trailmark_server::ApiError::from)?
            .ok_or_else(|| UiError::NotFound(format!("record {}", last.record)))?;
        match &rec.record.payload {
            Payload::Inline(v) => v
                .get("envelope")
                .cloned()
                .ok_or_else(|| UiError::Internal("certification without envelope".into())),
            Payload::Blob { digest, .. } => {
                let bytes = st
                    .store
                    .blob(digest)
                    .map_err(trailmark_server::ApiError::from)?
                    .ok_or_else(|| UiError::Internal(format!("blob {digest} missing")))?;
                let v: Value =
                    serde_json::from_slice(&bytes).map_err(|e| UiError::Internal(e.to_string()))?;
                v.get("envelope")
                    .cloned()
                    .ok_or_else(|| UiError::Internal("certification without envelope".into()))
            }
        }
    })
    .await?;
    let bytes =
        serde_json::to_vec_pretty(&envelope).map_err(|e| UiError::Internal(e.to_string()))?;
    let name = format!("{}.vsa.dsse.json", id.replace(['/', '@'], "_"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.dsse.envelope.v1+json".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
