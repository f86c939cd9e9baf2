//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the store answers and
//! the server is not draining). Unauthenticated by design: load balancers call them, and they
//! reveal nothing but up or down.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::error::{ApiError, blocking};
use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// The server can serve: not shutting down, and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "Draining or the store is unavailable", body = crate::error::Problem)))]
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if state.draining() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    let store = state.store.clone();
    blocking(move || {
        store
            .size()
            .map_err(|e| ApiError::Unavailable(format!("the store does not answer: {e}")))
    })
    .await?;
    Ok((StatusCode::OK, "ready\n"))
}
