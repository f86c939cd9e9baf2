//! The one error type of the HTTP surface, rendered as RFC 9457 `application/problem+json` with
//! a stable `type` per kind of problem, so clients branch on `type`, never on wording.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use trailmark_access::AccessError;
use trailmark_store::StoreError;

/// Every way a request can fail. The variant fixes status and `type`; the detail says exactly
/// what was wrong with *this* request (never a secret, never a payload).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed: bad JSON, a bad query parameter, an invalid record.
    #[error("{0}")]
    BadRequest(String),
    /// An input that parsed but holds nothing Trailmark can use, or refers to unknown things.
    #[error("{0}")]
    Unprocessable(String),
    /// No credentials, or credentials that do not authenticate.
    #[error("{0}")]
    Unauthenticated(String),
    /// A webhook whose signature or shared secret does not match.
    #[error("{0}")]
    BadSignature(String),
    /// Authenticated, but the principal's roles do not allow this here.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Already exists (an organisation, a user...).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The server is shutting down or its store is unavailable; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of ours. The detail is logged; the client gets a generic one.
    #[error("{0}")]
    Internal(String),
}

/// The problem+json body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `urn:trailmark:problem:forbidden`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated(_) | ApiError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable slug behind `type`.
    pub fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::BadSignature(_) => "bad-signature",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            // Internals stay in the server log, tied to the request id.
            ApiError::Internal(_) => {
                "internal error; the server log has the details under this request's id".to_owned()
            }
            other => other.to_string(),
        };
        Problem {
            type_: format!("urn:trailmark:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(problem = self.slug(), error = %self, "request failed");
        } else {
            tracing::info!(problem = self.slug(), detail = %self, "request refused");
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, ApiError::Unauthenticated(_)) {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::InvalidRequest(m) => ApiError::BadRequest(m),
            StoreError::WriterStopped(m) => {
                ApiError::Unavailable(format!("the log is not accepting appends: {m}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        if e.is_client_error() {
            ApiError::BadRequest(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

/// Runs blocking store or access work off the async threads.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}
