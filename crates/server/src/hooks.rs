//! Webhook receivers: `/hooks/<source>[/<name>]`. Authenticated before anything is parsed, then
//! turned into evidence by the ingestion adapters and acknowledged only once durable.
//!
//! | source | authentication |
//! |---|---|
//! | github | `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` |
//! | gitlab | `X-Gitlab-Token: <secret>` |
//! | jira | `X-Hub-Signature: sha256=<hex HMAC-SHA256>` (Jira Cloud's WebSub-style header) |
//! | jenkins, cdevents | `X-Hub-Signature-256: sha256=<hex HMAC>`, or `X-Trailmark-Token: <secret>` |
//!
//! Every comparison is constant time. A delivery that fails authentication gets 401 and is
//! itself recorded (`security.webhook_rejected`: source, reason, body digest — never the body),
//! at most [`MAX_REJECTIONS_RECORDED_PER_MINUTE`] a minute.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use trailmark_ingest::Context;
use trailmark_model::Digest;
use utoipa::ToSchema;

use crate::auth::{governance_record, scope_subject, stamp};
use crate::config::{Hook, HookSource};
use crate::error::{ApiError, blocking};
use crate::extract::Body;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    /// Records appended for this delivery (0 for a duplicate).
    pub appended: usize,
    /// True when this delivery (id or content) was seen before: nothing new was stored.
    pub duplicate: bool,
    pub indices: Vec<u64>,
    /// Parts of the payload that were not turned into evidence, and why.
    pub skipped: Vec<String>,
    /// For a deployment protection request on a hook that answers them: the gate's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<crate::respond::Answer>,
}

/// Why a delivery did not authenticate (recorded; never includes the secret or the body).
#[derive(Debug, Clone, Copy)]
enum AuthFailure {
    MissingHeader(&'static str),
    Malformed(&'static str),
    Mismatch(&'static str),
}

impl AuthFailure {
    fn text(self) -> String {
        match self {
            AuthFailure::MissingHeader(h) => format!("missing {h}"),
            AuthFailure::Malformed(h) => format!("malformed {h}"),
            AuthFailure::Mismatch(h) => format!("{h} does not match"),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `sha256=<hex>` HMAC of `body` under `secret`, checked in constant time.
fn check_hmac(
    headers: &HeaderMap,
    name: &'static str,
    secret: &[u8],
    body: &[u8],
) -> Result<(), AuthFailure> {
    let value = header(headers, name).ok_or(AuthFailure::MissingHeader(name))?;
    let hex_sig = value
        .strip_prefix("sha256=")
        .ok_or(AuthFailure::Malformed(name))?;
    let mut sig = [0u8; 32];
    hex::decode_to_slice(hex_sig.trim(), &mut sig).map_err(|_| AuthFailure::Malformed(name))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).map_err(|_| AuthFailure::Malformed(name))?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&sig)
        .map_err(|_| AuthFailure::Mismatch(name))
}

/// A shared secret in a header, compared in constant time. Both sides are hashed first so
/// the comparison takes the same time whatever the lengths.
fn check_token(headers: &HeaderMap, name: &'static str, secret: &[u8]) -> Result<(), AuthFailure> {
    let value = header(headers, name).ok_or(AuthFailure::MissingHeader(name))?;
    let a = Sha256::digest(value.as_bytes());
    let b = Sha256::digest(secret);
    if bool::from(a.as_slice().ct_eq(b.as_slice())) {
        Ok(())
    } else {
        Err(AuthFailure::Mismatch(name))
    }
}

fn authenticate(hook: &Hook, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthFailure> {
    let secret = hook.secret.expose();
    match hook.source {
        HookSource::Github => check_hmac(headers, "x-hub-signature-256", secret, body),
        HookSource::Gitlab => check_token(headers, "x-gitlab-token", secret),
        HookSource::Jira => check_hmac(headers, "x-hub-signature", secret, body),
        HookSource::Jenkins | HookSource::Cdevents => {
            if headers.contains_key("x-hub-signature-256") {
                check_hmac(headers, "x-hub-signature-256", secret, body)
            } else if headers.contains_key("x-trailmark-token") {
                check_token(headers, "x-trailmark-token", secret)
            } else {
                Err(AuthFailure::MissingHeader(
                    "x-hub-signature-256 or x-trailmark-token",
                ))
            }
        }
    }
}

/// What every delivery's context starts from, built once. (Recompiling the default ticket
/// pattern per delivery was once a quarter of a GitHub delivery's CPU under perf; the ingest
/// crate now compiles it once too, so this is a cheap clone either way.)
static BASE_CONTEXT: LazyLock<Context> = LazyLock::new(Context::default);

/// The transport's event name and delivery id for each source.
fn context(source: HookSource, headers: &HeaderMap) -> Context {
    let pick = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header(headers, n))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 256)
    };
    let (event, delivery) = match source {
        HookSource::Github => (pick(&["x-github-event"]), pick(&["x-github-delivery"])),
        HookSource::Gitlab => (
            pick(&["x-gitlab-event"]),
            pick(&["x-gitlab-event-uuid", "idempotency-key"]),
        ),
        HookSource::Jira => (None, pick(&["x-atlassian-webhook-identifier"])),
        HookSource::Jenkins => (None, pick(&["idempotency-key"])),
        HookSource::Cdevents => (None, pick(&["ce-id", "idempotency-key"])),
    };
    let mut ctx = BASE_CONTEXT.clone();
    ctx.event = event;
    ctx.delivery = delivery;
    ctx
}

/// Rejected deliveries recorded per minute: anyone can send a badly signed one, and each
/// record grows the log for good. Past this, rejections are refused alike but only logged.
pub const MAX_REJECTIONS_RECORDED_PER_MINUTE: u32 = 60;

/// Bodies up to this size are parsed on the async thread that received them.
const PARSE_HERE_MAX: usize = 256 * 1024;

/// Receives one webhook delivery.
#[utoipa::path(post, path = "/hooks/{source}", tag = "webhooks",
    params(("source" = String, Path, description = "github, gitlab, jira, jenkins or cdevents")),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored and durable", body = DeliveryResponse),
        (status = 200, description = "Duplicate delivery: nothing new stored", body = DeliveryResponse),
        (status = 401, description = "Signature or token does not match (recorded)", body = crate::error::Problem),
        (status = 404, description = "No hook configured at this path", body = crate::error::Problem),
        (status = 413, body = crate::error::Problem), (status = 415, body = crate::error::Problem),
        (status = 422, description = "Authenticated but unusable", body = crate::error::Problem)))]
pub async fn receive(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = uri.path().trim_end_matches('/');
    let hook = state
        .hooks
        .get(path)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no webhook is configured at {path}")))?;
    body.require_media_type(&["application/json", "application/cloudevents+json"])?;
    if let Err(failure) = authenticate(&hook, &headers, &body.bytes) {
        let refused = ApiError::BadSignature(format!(
            "{} webhook rejected: {}",
            hook.source,
            failure.text()
        ));
        if !state.webhook_rejections.take() {
            tracing::warn!(
                source = hook.source.name(),
                "rejected webhook delivery not recorded: over the per-minute budget"
            );
            return Err(refused);
        }
        let digest = Digest::of(&body.bytes);
        let ctx = context(hook.source, &headers);
        let record = governance_record(
            "security.webhook_rejected",
            &format!("webhook:{}", hook.path()),
            std::slice::from_ref(hook.scope.org()),
            vec![scope_subject(&hook.scope)?],
            json!({
                "source": hook.source.name(),
                "path": hook.path(),
                "reason": failure.text(),
                "body_digest": digest.to_string(),
                "body_size": body.bytes.len(),
                // Claimed, not trusted: the delivery did not authenticate.
                "claimed_delivery": ctx.delivery,
            }),
        )?;
        let store = state.store.clone();
        store.append_queued(vec![record], vec![]).await?;
        return Err(refused);
    }
    let ctx = context(hook.source, &headers);
    let deploy_request = crate::respond::request(&hook, ctx.event.as_deref(), &body.bytes);
    let format = hook.source.format();
    let bytes = body.bytes;
    let body_len = bytes.len();
    let scope = hook.scope.clone();
    let store = state.store.clone();
    let parse = move || {
        let mut ingested = trailmark_ingest::ingest(&bytes, Some(format), &ctx)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        stamp(&mut ingested.records, &scope)?;
        Ok(ingested)
    };
    // A forge's usual payload is parsed here, in tens of microseconds; a large one on the
    // blocking pool, so as not to hold up the other requests on this thread.
    let ingested = if body_len <= PARSE_HERE_MAX {
        parse()?
    } else {
        blocking(parse).await?
    };
    let skipped: Vec<String> = ingested
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.what, s.reason))
        .collect();
    // Queued to the writer without a blocking thread: this task awaits the writer's answer,
    // given once the batch is durable.
    let appended = store
        .append_queued(ingested.records, vec![ingested.raw])
        .await?;
    let duplicate = appended.iter().all(|a| a.duplicate);
    let fresh: Vec<u64> = appended
        .iter()
        .filter(|a| !a.duplicate)
        .map(|a| a.index.0)
        .collect();
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    // Answered after the request is durable, and again on a re-delivery (the forge retries
    // when an earlier callback did not reach it).
    let gate = match deploy_request {
        None => None,
        Some(req) => {
            let st = state.clone();
            let h = hook.clone();
            Some(blocking(move || Ok(crate::respond::answer(&st, &h, &req))).await?)
        }
    };
    Ok((
        status,
        axum::Json(DeliveryResponse {
            appended: fresh.len(),
            duplicate,
            indices: appended.iter().map(|a| a.index.0).collect(),
            skipped,
            gate,
        }),
    )
        .into_response())
}
