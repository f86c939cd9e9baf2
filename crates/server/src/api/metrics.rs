//! Delivery metrics over the API: DORA, time to decision, approval bottlenecks, change requests
//! and the AI intervention rate (`trailmark-metrics`), computed over the records the caller may
//! read. The web UI's metrics page shows the same numbers from the same function.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trailmark_access::{Permission, Scope};
use trailmark_metrics::{Bucket, EnvFilter, Metrics};
use trailmark_model::{Record, Timestamp};
use trailmark_store::Query as StoreQuery;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, log_read, record_scope};
use crate::error::{ApiError, blocking};
use crate::extract::Query;
use crate::state::AppState;

/// How far before the window records are read: the commits behind a deployment, the requests
/// behind an approval. A lead time longer than this is left out.
pub const LOOKBACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 180);
/// How far after the window records are read: late failure signals (rollbacks, incidents).
const LOOKAHEAD: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 30);

/// What to measure: environments, period and bucket, as a caller writes them (every field
/// optional).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsParams {
    /// Environments, comma-separated, or `*` for all (default `production`).
    pub env: Option<String>,
    /// Start of the period: a date (`2026-11-01`, UTC midnight) or an RFC 3339 instant
    /// (default: twelve weeks before `to`).
    pub from: Option<String>,
    /// End of the period, exclusive (default: the end of today, UTC).
    pub to: Option<String>,
    /// `day`, `week` (ISO weeks) or `<n>d` (n days) (default `week`).
    pub bucket: Option<String>,
}

/// A period to measure, parsed.
#[derive(Clone, Debug)]
pub struct Window {
    /// As given (`production`, `staging,production`, `*`).
    pub env: String,
    pub from: jiff::Timestamp,
    pub to: jiff::Timestamp,
    pub bucket: String,
    query: trailmark_metrics::Query,
}

impl Window {
    /// Parses the parameters, filling in the defaults; the error names the field.
    pub fn parse(p: &MetricsParams, now: jiff::Timestamp) -> Result<Window, String> {
        let field = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_owned();
        let (env, bucket) = (field(&p.env), field(&p.bucket));
        let env = if env.is_empty() {
            "production".to_owned()
        } else {
            env
        };
        let bucket = if bucket.is_empty() {
            "week".to_owned()
        } else {
            bucket
        };
        let tomorrow = now
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(now)
            .checked_add(jiff::SignedDuration::from_hours(24))
            .unwrap_or(now);
        let to = day("to", &field(&p.to))?.unwrap_or(tomorrow);
        let from = match day("from", &field(&p.from))? {
            Some(f) => f,
            None => to
                .checked_sub(jiff::SignedDuration::from_hours(24 * 7 * 12))
                .unwrap_or(to),
        };
        // The error names the field and the value.
        let b: Bucket = bucket
            .parse()
            .map_err(|e: trailmark_metrics::QueryError| e.to_string())?;
        let envs = if env == "*" {
            EnvFilter::any()
        } else {
            EnvFilter::names(env.split(',').map(str::trim).filter(|s| !s.is_empty()))
        };
        let query = trailmark_metrics::Query::new(envs, Timestamp(from), Timestamp(to), b)
            .map_err(|e| e.to_string())?;
        Ok(Window {
            env,
            from,
            to,
            bucket,
            query,
        })
    }

    /// What the access trail records of a read of these metrics (API and web UI alike).
    pub fn detail(&self) -> Value {
        json!({"env": self.env, "from": self.from.to_string(), "to": self.to.to_string(), "bucket": self.bucket})
    }

    /// The earliest instant whose records are read.
    pub fn read_since(&self) -> jiff::Timestamp {
        self.from.checked_sub(LOOKBACK).unwrap_or(self.from)
    }
}

/// A date (UTC midnight) or an RFC 3339 instant; `None` when blank.
pub fn day(field: &str, s: &str) -> Result<Option<jiff::Timestamp>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(Some(t));
    }
    let d: jiff::civil::Date = s
        .parse()
        .map_err(|_| format!("{field} {s:?} is not a date (2026-11-01) or an RFC 3339 instant"))?;
    d.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map(|z| Some(z.timestamp()))
        .map_err(|e| format!("{field} {s:?}: {e}"))
}

/// Computes the metrics of `w` over the records filed under one of `readable`; also says how
/// many records were read.
pub fn compute(
    st: &AppState,
    readable: &[Scope],
    w: &Window,
) -> Result<(Metrics, usize), ApiError> {
    let until = w.to.checked_add(LOOKAHEAD).unwrap_or(w.to);
    let mut q = StoreQuery {
        since: Some(Timestamp(w.read_since())),
        until: Some(Timestamp(until)),
        limit: 1000,
        ..StoreQuery::default()
    };
    let default_org = &st.config.default_org;
    let mut records: Vec<Record> = Vec::new();
    loop {
        let page = st.store.query(&q)?;
        let n = page.len();
        q.after = page.last().map(|r| r.record.index);
        for r in page {
            let scope = record_scope(&r.record, default_org);
            if readable.iter().any(|s| s.covers(&scope)) {
                records.push(r.record);
            }
        }
        if n < q.limit as usize {
            break;
        }
    }
    // Identities → people, so one person's commits under several accounts count once.
    let people = st.people();
    let mut map = BTreeMap::new();
    if let Some(list) = people.to_json().get("people").and_then(Value::as_array) {
        for p in list {
            let id = p.get("id").and_then(Value::as_str).unwrap_or_default();
            for i in p
                .get("identities")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                map.insert(i.to_owned(), id.to_owned());
            }
        }
    }
    let mq = w.query.clone().with_people(map);
    let store = st.store.clone();
    let blobs = move |d: &trailmark_model::Digest| -> Option<Value> {
        store
            .blob(d)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
    };
    let m = trailmark_metrics::compute_with_blobs(records.iter(), &mq, &blobs);
    Ok((m, records.len()))
}

/// The metrics of a period, and what they were computed from.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsResponse {
    pub env: String,
    pub from: String,
    pub to: String,
    pub bucket: String,
    /// Records from this instant on were read (the lookback before `from`).
    pub read_since: String,
    /// How many records the caller may read were read.
    pub records_read: usize,
    /// DORA, approvals, change requests, AI intervention and what was skipped, per bucket.
    #[schema(value_type = Object)]
    pub metrics: Metrics,
}

/// Delivery metrics over the records the caller may read. A person's request is recorded.
#[utoipa::path(get, path = "/api/v1/metrics", tag = "evidence", params(MetricsParams),
    responses((status = 200, body = MetricsResponse), (status = 400, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<MetricsParams>,
) -> Result<axum::Json<MetricsResponse>, ApiError> {
    let readable = caller.require_somewhere(Permission::ReadEvidence)?;
    let w = Window::parse(&p, jiff::Timestamp::now()).map_err(ApiError::BadRequest)?;
    log_read(&state, &caller, "metrics", w.detail()).await?;
    let st = state.clone();
    let window = w.clone();
    let (m, n) = blocking(move || compute(&st, &readable, &window)).await?;
    let read_since = w.read_since().to_string();
    Ok(axum::Json(MetricsResponse {
        env: w.env,
        from: w.from.to_string(),
        to: w.to.to_string(),
        bucket: w.bucket,
        read_since,
        records_read: n,
        metrics: m,
    }))
}
