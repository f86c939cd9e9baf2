//! Trailmark's web UI: server-rendered pages (askama) for release managers, approvers and
//! auditors, served by `trailmark serve` beside the API. No front-end build: one stylesheet, no
//! scripts required; every action is a plain form.
//!
//! Boundaries: pages call the same operations as the API (`trailmark_policy::Governance`,
//! `trailmark_dossier`, the store) and enforce the same roles with the same checks
//! ([`trailmark_server::auth::Caller::require`]); every page that shows evidence appends an
//! `access.read` record first, like the API. Sign-in uses the access store's local users
//! (argon2); sessions and CSRF are in [`trailmark_server::session`]. Writes are POST forms
//! carrying the session's CSRF token; export links reuse the API's GET handlers, which accept
//! the session cookie for safe methods only.
#![forbid(unsafe_code)]

pub mod error;
pub mod pages;
pub mod trace;
pub mod viewer;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use trailmark_server::AppState;

pub use error::UiError;
pub use viewer::Viewer;

/// The UI's routes, to merge into the server's router ([`trailmark_server::app_with`]).
pub fn routes() -> Router<AppState> {
    use pages::*;
    let router = Router::new();
    #[cfg(feature = "oidc-login")]
    let router = router
        .route("/ui/login/oidc", get(oidc::start))
        .route("/ui/login/oidc/callback", get(oidc::callback));
    router
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/app.css", get(stylesheet))
        .route("/ui/login", get(login::show).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/", get(dashboard::page))
        .route("/ui/releases/{org}/{project}/{release}", get(release::page))
        .route(
            "/ui/releases/{org}/{project}/{release}/decision",
            post(release::decide),
        )
        .route(
            "/ui/releases/{org}/{project}/{release}/vsa",
            get(release::vsa),
        )
        .route("/ui/approvals", get(approvals::page))
        .route("/ui/search", get(search::page))
        .route("/ui/records/{index}", get(search::record))
        .route("/ui/log", get(log::page))
        .route("/ui/log/verify", post(log::verify))
        .route("/ui/policies", get(governance::policies))
        .route("/ui/exceptions", get(governance::exceptions))
        .route("/ui/metrics", get(metrics::page))
}

/// The whole HTTP surface: the API and the UI.
pub fn app(state: AppState) -> axum::Router {
    trailmark_server::app_with(state, routes())
}

const CSS: &str = include_str!("../static/app.css");

async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            ),
        ],
        CSS,
    )
        .into_response()
}

/// Headers every page carries: no framing (clickjacking an approve button), no inline or
/// third-party script, no caching of evidence in shared caches, no MIME sniffing.
pub fn page_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}
