//! Delivery metrics (wired to `trailmark-metrics`).

use axum::extract::State;
use axum::response::Response;
use trailmark_server::AppState;

use crate::error::UiError;
use crate::viewer::Viewer;

pub async fn page(State(_state): State<AppState>, _viewer: Viewer) -> Result<Response, UiError> {
    Err(UiError::NotFound("metrics are being wired".into()))
}
