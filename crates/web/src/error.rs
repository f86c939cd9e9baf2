//! The UI's one error type: rendered as an HTML page with the right status (never a stack
//! trace or a secret), or as a redirect to the sign-in page.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use trailmark_server::ApiError;

#[derive(Debug)]
#[non_exhaustive]
pub enum UiError {
    /// No live session: go to the sign-in page, then come back to `next`.
    SignIn {
        next: String,
    },
    BadRequest(String),
    Forbidden(String),
    NotFound(String),
    /// The request was understood but refused by a rule (separation of duties, a stale digest).
    Refused(String),
    Unavailable(String),
    Internal(String),
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> UiError {
        match e {
            ApiError::BadRequest(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m) => UiError::BadRequest(m),
            ApiError::Unprocessable(m) | ApiError::Conflict(m) => UiError::Refused(m),
            ApiError::Unauthenticated(_) | ApiError::BadSignature(_) => UiError::SignIn {
                next: "/ui/".into(),
            },
            ApiError::Forbidden(m) => UiError::Forbidden(m),
            ApiError::NotFound(m) => UiError::NotFound(m),
            ApiError::Unavailable(m) => UiError::Unavailable(m),
            other => UiError::Internal(other.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    detail: &'a str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, detail) = match &self {
            UiError::SignIn { next } => {
                let to = format!("/ui/login?next={}", crate::pages::encode_component(next));
                return (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
            }
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m.as_str()),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.as_str()),
            UiError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m.as_str()),
            UiError::Refused(m) => (StatusCode::UNPROCESSABLE_ENTITY, "Refused", m.as_str()),
            UiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable", m.as_str()),
            UiError::Internal(m) => {
                tracing::error!(detail = %m, "web UI internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "An internal error occurred; it has been logged.",
                )
            }
        };
        let body = ErrorPage {
            status: status.as_u16(),
            title,
            detail,
        }
        .render()
        .unwrap_or_else(|_| detail.to_owned());
        crate::page_headers((status, Html(body)).into_response())
    }
}
