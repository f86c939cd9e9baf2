//! Extractors whose rejections are problem+json like every other error: query strings, path
//! parameters, and request bodies read under the configured size limit.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// `axum::extract::Query` with a problem+json rejection naming the bad parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::BadRequest(format!("query string: {}", e.body_text())))
    }
}

/// `axum::extract::Path` with a problem+json rejection.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::BadRequest(format!("path: {}", e.body_text())))
    }
}

/// A request body read in full, refused with 413 past `max_body_bytes` (checked against
/// `Content-Length` first, so an honest oversized upload is refused before it is read).
#[derive(Debug)]
pub struct Body {
    pub bytes: Bytes,
    pub content_type: Option<String>,
}

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.config.max_body_bytes;
        let too_large =
            || ApiError::PayloadTooLarge(format!("the request body is larger than {limit} bytes"));
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > limit as u64
        {
            return Err(too_large());
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.to_ascii_lowercase());
        let body = Limited::new(req.into_body(), limit);
        let bytes = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => return Err(too_large()),
            Err(e) => return Err(ApiError::BadRequest(format!("reading the body: {e}"))),
        };
        Ok(Body {
            bytes,
            content_type,
        })
    }
}

impl Body {
    /// The media type without parameters (`application/json; charset=utf-8` → `application/json`).
    pub fn media_type(&self) -> Option<&str> {
        self.content_type
            .as_deref()
            .map(|c| c.split(';').next().unwrap_or("").trim())
    }

    /// Refuses any media type not in `allowed` with 415.
    pub fn require_media_type(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.media_type() {
            Some(m) if allowed.contains(&m) => Ok(()),
            Some(m) => Err(ApiError::UnsupportedMediaType(format!(
                "content type {m:?} is not accepted here; send one of: {}",
                allowed.join(", ")
            ))),
            None => Err(ApiError::UnsupportedMediaType(format!(
                "no Content-Type; send one of: {}",
                allowed.join(", ")
            ))),
        }
    }

    pub fn text(&self) -> Result<&str, ApiError> {
        std::str::from_utf8(&self.bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not UTF-8: {e}")))
    }
}
