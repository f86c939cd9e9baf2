//! Trailmark as a service: the REST API, signed webhook receivers, authentication and role
//! checks, and the access-governance trail.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it without a socket;
//! [`serve`] runs it on a listener with graceful shutdown. Handlers are thin: they authenticate
//! ([`auth::Caller`]), check the role for the scope concerned, and call the store (blocking work
//! runs on tokio's blocking pool). Data flows one way: request → ingest/model → store.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod governance;
pub mod hooks;
pub mod respond;
pub mod session;
pub mod state;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub use config::{Config, ConfigError};
pub use error::ApiError;
pub use state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: a per-process random prefix and a counter; unique, cheap, and not a secret.
#[derive(Clone, Debug)]
struct RequestIds {
    prefix: String,
    next: std::sync::Arc<AtomicU64>,
}

impl RequestIds {
    fn new() -> RequestIds {
        let mut b = [0u8; 4];
        let _ = getrandom::fill(&mut b);
        RequestIds {
            prefix: hex::encode(b),
            next: std::sync::Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// The whole HTTP surface of the API.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The API plus `extra` routes (the web UI), all behind the same request ids, tracing and
/// fallbacks.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let api = Router::new()
        .route(
            "/records",
            post(api::evidence::append).get(api::evidence::query),
        )
        .route("/records/{index}", get(api::evidence::one))
        .route("/graph", get(api::evidence::graph))
        .route("/metrics", get(api::metrics::metrics))
        .route("/blobs/{digest}", get(api::evidence::blob))
        .route("/checkpoints/latest", get(api::log::latest))
        .route("/checkpoints/{size}", get(api::log::at_size))
        .route("/proofs/inclusion", get(api::log::inclusion))
        .route("/proofs/consistency", get(api::log::consistency))
        .route(
            "/tokens",
            post(api::access::create_token).get(api::access::list_tokens),
        )
        .route(
            "/tokens/{id}",
            axum::routing::delete(api::access::revoke_token),
        )
        .route("/users", post(api::access::create_user))
        .route(
            "/users/{name}/grants",
            post(api::access::add_grant).delete(api::access::revoke_grant),
        )
        .route("/orgs/{org}/projects", post(api::access::create_project))
        .route("/whoami", get(api::access::whoami))
        .route("/releases/{org}/{project}", post(api::releases::create))
        .route(
            "/releases/{org}/{project}/{release}",
            get(api::releases::show),
        )
        .route(
            "/releases/{org}/{project}/{release}/links",
            post(api::releases::link),
        )
        .route(
            "/releases/{org}/{project}/{release}/approvals",
            post(api::releases::decide),
        )
        .route(
            "/releases/{org}/{project}/{release}/gate",
            post(api::releases::gate),
        )
        .route(
            "/releases/{org}/{project}/{release}/checks",
            get(api::releases::checks),
        )
        .route(
            "/releases/{org}/{project}/{release}/exceptions",
            post(api::releases::raise_exception),
        )
        .route(
            "/releases/{org}/{project}/{release}/rollbacks",
            post(api::releases::propose_rollback),
        )
        .route(
            "/releases/{org}/{project}/{release}/rollbacks/{n}",
            post(api::releases::update_rollback),
        )
        .route(
            "/releases/{org}/{project}/{release}/clear",
            post(api::releases::clear),
        )
        .route(
            "/exceptions/{org}/{project}",
            get(api::releases::exceptions),
        )
        .route(
            "/exceptions/{org}/{project}/{id}/approvals",
            post(api::releases::decide_exception),
        )
        .route(
            "/orgs/{org}/policy",
            get(api::releases::policy_show).put(api::releases::policy_apply),
        )
        .route(
            "/orgs/{org}/policy/approvals",
            post(api::releases::policy_decide),
        )
        .route(
            "/gate-decisions/{record}/replay",
            get(api::releases::replay),
        )
        .route(
            "/releases/{org}/{project}/{release}/dossier",
            get(api::dossier::export),
        )
        .route(
            "/releases/{org}/{project}/{release}/certify",
            post(api::dossier::certify),
        )
        .route(
            "/releases/{org}/{project}/{release}/explain",
            get(api::dossier::explain),
        )
        .route(
            "/orgs/{org}/audit/population",
            get(api::dossier::population),
        )
        .route("/approvals/pending", get(api::releases::pending));

    extra
        .nest("/api/v1", api)
        .route("/api/openapi.json", get(openapi))
        .route("/hooks/{source}", post(hooks::receive))
        .route("/hooks/{source}/{name}", post(hooks::receive))
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are read by `extract::Body` under the configured limit, with a problem+json 413.
        .layer(DefaultBodyLimit::disable())
        .layer(
            // Logs method, route and status — never bodies, query strings or headers, which
            // can carry evidence and credentials.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("<unmatched>", |m| m.as_str())
                        .to_owned();
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_owned();
                    tracing::info_span!("request", id = %id, method = %req.method(), route = %route)
                })
                .on_request(())
                .on_response(
                    |res: &axum::response::Response, latency: Duration, _: &tracing::Span| {
                        tracing::info!(
                            status = res.status().as_u16(),
                            ms = latency.as_secs_f64() * 1000.0,
                            "response"
                        );
                    },
                )
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RequestIds::new()))
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        api::openapi_json(),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
}

async fn method_not_allowed() -> impl IntoResponse {
    let e = ApiError::BadRequest("method not allowed on this endpoint".into());
    let mut res = e.into_response();
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish (each
/// append they made is durable before they answer) and returns. Dropping the state afterwards
/// drains the store's writer.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(app(state.clone()), state, listener, shutdown).await
}

/// [`serve`] for a router built with [`app_with`].
pub async fn serve_app(
    app: Router,
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let draining = state.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            draining.start_draining();
            tracing::info!("shutting down: finishing in-flight requests");
        })
        .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Installs the tracing subscriber: logs to stderr, text or JSON, filtered by `RUST_LOG`
/// (default `info`).
pub fn init_logging(format: config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Text => builder.try_init(),
    };
}
