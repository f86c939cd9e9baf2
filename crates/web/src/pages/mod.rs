//! One module per page (or small family of pages). Shared here: rendering, query and form
//! parsing with UI errors, the governance runner, and the access-read trail.

pub mod approvals;
pub mod dashboard;
pub mod governance;
pub mod log;
pub mod login;
pub mod metrics;
#[cfg(feature = "oidc-login")]
pub mod oidc;
pub mod release;
pub mod search;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use trailmark_access::{OrgName, Permission, Scope};
use trailmark_policy::{Governance, PolicyError};
use trailmark_server::AppState;
use trailmark_server::error::blocking;
use trailmark_server::extract::Body;

use crate::error::UiError;
use crate::viewer::Viewer;

/// Percent-encodes a URL component (RFC 3986 unreserved characters pass).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Renders a page with the UI's security headers.
pub fn render<T: Template>(page: &T) -> Result<Response, UiError> {
    let html = page
        .render()
        .map_err(|e| UiError::Internal(format!("rendering a page: {e}")))?;
    Ok(crate::page_headers(Html(html).into_response()))
}

/// Parses a query string into `T`, naming what was wrong.
pub fn query<T: DeserializeOwned>(raw: Option<String>) -> Result<T, UiError> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| UiError::BadRequest(format!("query: {e}")))
}

/// Parses an HTML form post into `T`.
pub fn form<T: DeserializeOwned>(body: &Body) -> Result<T, UiError> {
    if body.media_type() != Some("application/x-www-form-urlencoded") {
        return Err(UiError::BadRequest(
            "expected a form post (application/x-www-form-urlencoded)".into(),
        ));
    }
    serde_urlencoded::from_bytes(&body.bytes).map_err(|e| UiError::BadRequest(format!("form: {e}")))
}

/// Refuses a form whose CSRF token is not this session's.
pub fn check_csrf(viewer: &Viewer, given: &str) -> Result<(), UiError> {
    if viewer.session.csrf_matches(given) {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "the form's security token does not match your session: reload the page and try again"
                .into(),
        ))
    }
}

pub fn policy_error(e: PolicyError) -> UiError {
    match e {
        PolicyError::Invalid(m) | PolicyError::Refused(m) => UiError::Refused(m),
        PolicyError::NotAllowed(m) => UiError::Forbidden(m),
        PolicyError::NotFound(m) => UiError::NotFound(m),
        PolicyError::Store(s) => UiError::from(trailmark_server::ApiError::from(s)),
        other => UiError::Internal(other.to_string()),
    }
}

/// Runs a governance operation for `org` (its own policy) on the blocking pool.
pub async fn gov<T: Send + 'static>(
    state: &AppState,
    org: &str,
    f: impl FnOnce(&Governance<'_>) -> Result<T, PolicyError> + Send + 'static,
) -> Result<T, UiError> {
    let st = state.clone();
    let org = org.to_owned();
    let out = blocking(move || {
        let people = st.people();
        let mut g = Governance::new(st.store.as_ref(), &people);
        g.policy_name = org.clone();
        g.only_org = Some(org);
        Ok(f(&g))
    })
    .await?;
    out.map_err(policy_error)
}

/// Runs blocking store work.
pub async fn work<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState) -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    let st = state.clone();
    blocking(move || Ok(f(&st))).await?
}

/// Appends the `access.read` record of a person viewing evidence, before it is shown.
pub async fn log_read(
    state: &AppState,
    viewer: &Viewer,
    action: &str,
    detail: Value,
) -> Result<(), UiError> {
    trailmark_server::auth::log_read(
        state,
        &viewer.caller,
        action,
        serde_json::json!({"via_ui": true, "detail": detail}),
    )
    .await
    .map_err(UiError::from)
}

/// The organisations where the viewer holds `p`, in order.
pub fn orgs_with(viewer: &Viewer, p: Permission) -> Vec<OrgName> {
    let mut orgs: Vec<OrgName> = viewer
        .caller
        .0
        .readable_scopes(p)
        .iter()
        .map(|s| s.org().clone())
        .collect();
    orgs.sort();
    orgs.dedup();
    orgs
}

/// `org/project` as a scope, or a 400 naming it.
pub fn project_scope(org: &str, project: &str) -> Result<Scope, UiError> {
    format!("{org}/{project}")
        .parse::<Scope>()
        .map_err(|e| UiError::BadRequest(format!("project {org}/{project}: {e}")))
}

/// The UI path of a release page.
pub fn release_href(id: &str) -> String {
    let mut parts = id.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        // `@` is allowed in a path segment (RFC 3986 pchar) and keeps the URL readable.
        (Some(o), Some(p), Some(r)) => format!(
            "/ui/releases/{}/{}/{}",
            encode_component(o),
            encode_component(p),
            encode_component(r).replace("%40", "@")
        ),
        _ => "/ui/".into(),
    }
}

/// A short, readable form of an RFC 3339 instant (`2026-11-24 10:15 UTC`); the full value is
/// kept in the page's `datetime` attributes.
pub fn short_time(t: &str) -> String {
    match t.parse::<jiff::Timestamp>() {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => t.to_owned(),
    }
}

/// A query for every record of `kind` (pages of 1000).
pub fn of_kind(kind: &str) -> Result<trailmark_store::Query, UiError> {
    let kind = trailmark_model::Kind::parse(kind)
        .map_err(|e| UiError::Internal(format!("kind {kind:?}: {e}")))?;
    Ok(trailmark_store::Query {
        kind: Some(kind),
        limit: 1000,
        ..trailmark_store::Query::default()
    })
}

/// Hands every record matching `q` to `f`, in index order, page after page.
pub fn each(
    st: &AppState,
    mut q: trailmark_store::Query,
    mut f: impl FnMut(trailmark_store::StoredRecord) -> Result<(), UiError>,
) -> Result<(), UiError> {
    q.limit = q.limit.clamp(1, 1000);
    loop {
        let page = st
            .store
            .query(&q)
            .map_err(trailmark_server::ApiError::from)?;
        let n = page.len();
        q.after = page.last().map(|r| r.record.index);
        for r in page {
            f(r)?;
        }
        if n < q.limit as usize {
            return Ok(());
        }
    }
}

/// Whether a record is filed under one of `readable`.
pub fn is_readable(st: &AppState, readable: &[Scope], r: &trailmark_model::Record) -> bool {
    let scope = trailmark_server::auth::record_scope(r, &st.config.default_org);
    readable.iter().any(|s| s.covers(&scope))
}

/// An inline payload (`Null` for one stored beside the log).
pub fn inline(r: &trailmark_model::Record) -> Value {
    match &r.payload {
        trailmark_model::Payload::Inline(v) => v.clone(),
        trailmark_model::Payload::Blob { .. } => Value::Null,
    }
}

/// A non-empty string at `ptr`.
pub fn text(v: &Value, ptr: &str) -> Option<String> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The id of the record's first subject of type `ty`.
pub fn subject_id(r: &trailmark_model::Record, ty: &str) -> Option<String> {
    r.subjects
        .iter()
        .find(|s| s.ty.as_str() == ty)
        .map(|s| s.id.as_str().to_owned())
}

/// A form's date (`2026-11-01`, the start of that UTC day) or RFC 3339 instant; empty is `None`.
pub fn parse_day(field: &str, s: &str) -> Result<Option<jiff::Timestamp>, UiError> {
    trailmark_server::api::metrics::day(field, s).map_err(UiError::BadRequest)
}
