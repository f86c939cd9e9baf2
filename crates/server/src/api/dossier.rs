//! Dossiers over HTTP: export (JSON; HTML and OSCAL), certification, "explain release R" and
//! the auditor's population. Exports are recorded (`dossier.exported`) like every person's read.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use trailmark_access::{Permission, Scope};
use trailmark_dossier::{BuildOptions, DossierError};
use trailmark_model::Timestamp;
use utoipa::{IntoParams, ToSchema};

use crate::api::access::json_body;
use crate::auth::{Caller, log_read};
use crate::error::{ApiError, blocking};
use crate::extract::{Body, Path, Query};
use crate::state::AppState;

fn api(e: DossierError) -> ApiError {
    match e {
        DossierError::Refused(m) => ApiError::Unprocessable(m),
        DossierError::Missing(m) => ApiError::NotFound(m),
        DossierError::Policy(p) => match p {
            trailmark_policy::PolicyError::NotFound(m) => ApiError::NotFound(m),
            trailmark_policy::PolicyError::Store(s) => ApiError::from(s),
            trailmark_policy::PolicyError::NotAllowed(m) => ApiError::Forbidden(m),
            other => ApiError::Unprocessable(other.to_string()),
        },
        DossierError::Store(s) => ApiError::from(s),
        other => ApiError::Internal(other.to_string()),
    }
}

fn scoped(org: &str, project: &str, release: &str) -> Result<(String, Scope), ApiError> {
    let scope: Scope = format!("{org}/{project}")
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("project {org}/{project}: {e}")))?;
    Ok((format!("{scope}/{release}"), scope))
}

fn actor(caller: &Caller) -> String {
    match &caller.0.person {
        Some(p) => format!("person:{p}"),
        None => caller.0.id.clone(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DossierParams {
    /// `json` (default): the self-verifying bundle; `html`: one printable page; `oscal`:
    /// OSCAL assessment results; `pdf`: a PDF/A-2b document with the HTML page's content
    /// (when the server is built with PDF support).
    pub format: Option<String>,
    /// Include the raw inputs (webhook bodies, reports) records were derived from.
    pub raw_inputs: Option<bool>,
}

/// Exports the release's compliance dossier (auditors, release managers, admins). The export
/// is itself recorded in the log.
#[utoipa::path(get, path = "/api/v1/releases/{org}/{project}/{release}/dossier", tag = "dossier",
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version"), DossierParams),
    responses((status = 200, body = Object), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
    Query(p): Query<DossierParams>,
) -> Result<Response, ApiError> {
    let (id, scope) = scoped(&org, &project, &release)?;
    caller.require(Permission::ExportEvidence, &scope)?;
    let format = p.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "html" | "oscal" | "pdf") {
        return Err(ApiError::BadRequest(format!(
            "format {format:?}: expected json, html, oscal or pdf"
        )));
    }
    if format == "pdf" && !cfg!(feature = "pdf") {
        return Err(ApiError::BadRequest(
            "format \"pdf\": this server was built without PDF support".into(),
        ));
    }
    log_read(&state, &caller, "dossier", json!({"release": id})).await?;
    let opts = BuildOptions {
        raw_inputs: p.raw_inputs.unwrap_or(false),
        actor: actor(&caller),
        ..BuildOptions::default()
    };
    let st = state.clone();
    let d = blocking(move || {
        let people = st.people();
        trailmark_dossier::build(st.store.as_ref(), &people, &org, &id, &opts).map_err(api)
    })
    .await?;
    let (bytes, media) = match format.as_str() {
        #[cfg(feature = "pdf")]
        // Typesetting is CPU work: on the blocking pool, never on the executor.
        "pdf" => (
            blocking(move || {
                trailmark_dossier::pdf::render(&d.view, &d.meta())
                    .map_err(|e| ApiError::Internal(e.to_string()))
            })
            .await?,
            "application/pdf",
        ),
        "html" => (
            trailmark_dossier::html::render(&d.view, &d.meta()).into_bytes(),
            "text/html; charset=utf-8",
        ),
        "oscal" => (
            serde_json::to_vec_pretty(&trailmark_dossier::oscal::assessment_results(
                &d.view,
                &d.meta(),
            ))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
            "application/json",
        ),
        _ => (
            serde_json::to_vec_pretty(&d).map_err(|e| ApiError::Internal(e.to_string()))?,
            "application/json",
        ),
    };
    Ok(([(header::CONTENT_TYPE, media)], bytes).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertifyRequest {
    pub environment: String,
}

/// Certifies the release for an environment (release managers): evaluates the gate and, if it
/// allows or approved exceptions cover every denial, records a DSSE-signed SLSA VSA.
#[utoipa::path(post, path = "/api/v1/releases/{org}/{project}/{release}/certify", tag = "dossier", request_body = CertifyRequest,
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 201, body = Object), (status = 422, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn certify(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: CertifyRequest = json_body(&body)?;
    let (id, scope) = scoped(&org, &project, &release)?;
    caller.require(Permission::ManageReleases, &scope)?;
    let signer = state.certifier().ok_or_else(|| {
        ApiError::Unavailable("this server has no certification key configured".into())
    })?;
    let who = actor(&caller);
    let st = state.clone();
    let c = blocking(move || {
        let people = st.people();
        trailmark_dossier::cert::certify(
            st.store.as_ref(),
            &people,
            &org,
            &id,
            &req.environment,
            &signer,
            &who,
        )
        .map_err(api)
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(c)).into_response())
}

/// "Explain release R": the five auditor questions answered with evidence, the matrix, the
/// controls and the gaps, as of now.
#[utoipa::path(get, path = "/api/v1/releases/{org}/{project}/{release}/explain", tag = "dossier",
    params(("org" = String, Path), ("project" = String, Path), ("release" = String, Path, description = "name@version")),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, project, release)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (id, scope) = scoped(&org, &project, &release)?;
    caller.require(Permission::ReadEvidence, &scope)?;
    log_read(&state, &caller, "explain", json!({"release": id})).await?;
    let st = state.clone();
    let v = blocking(move || {
        let people = st.people();
        trailmark_dossier::explain(st.store.as_ref(), &people, &org, &id).map_err(api)
    })
    .await?;
    Ok(axum::Json(v).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PopulationParams {
    pub env: String,
    /// RFC 3339, inclusive.
    pub from: String,
    /// RFC 3339, exclusive.
    pub to: String,
}

/// Every deployment to an environment in a period, reconciled against authorized changes
/// (auditors), with completeness findings. Only deployments filed in the organisation count.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit/population", tag = "dossier",
    params(("org" = String, Path), PopulationParams),
    responses((status = 200, body = Object), (status = 400, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn population(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    Query(p): Query<PopulationParams>,
) -> Result<Response, ApiError> {
    let scope: Scope = org
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("organisation {org:?}: {e}")))?;
    caller.require(Permission::ExportEvidence, &scope)?;
    let from = Timestamp::parse_rfc3339(&p.from)
        .ok_or_else(|| ApiError::BadRequest(format!("from {:?} is not RFC 3339", p.from)))?;
    let to = Timestamp::parse_rfc3339(&p.to)
        .ok_or_else(|| ApiError::BadRequest(format!("to {:?} is not RFC 3339", p.to)))?;
    log_read(
        &state,
        &caller,
        "audit.population",
        json!({"org": org, "env": p.env}),
    )
    .await?;
    let st = state.clone();
    let pop = blocking(move || {
        let people = st.people();
        let mut pop = trailmark_dossier::audit::population(
            st.store.as_ref(),
            &people,
            &org,
            &p.env,
            from,
            to,
        )
        .map_err(api)?;
        // Tenancy: keep only deployments of this organisation's releases or filed under it.
        let prefix = format!("{org}/");
        pop.deployments
            .retain(|d| d.release.as_ref().is_some_and(|r| r.starts_with(&prefix)));
        pop.completeness.retain(|c| c.contains(&prefix));
        Ok(pop)
    })
    .await?;
    Ok(axum::Json(pop).into_response())
}
