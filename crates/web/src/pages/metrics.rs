//! Delivery metrics: DORA (deployment frequency, lead time, change failure rate, time to
//! restore), time to decision and approval bottlenecks, change requests per period and the AI
//! intervention rate, each with a deterministic SVG chart (`trailmark-metrics`), computed over
//! the records the viewer may read.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use trailmark_access::Permission;
use trailmark_metrics::svg::Chart;
use trailmark_metrics::{Bucket, EnvFilter, Metrics};
use trailmark_model::{Record, Timestamp};
use trailmark_server::AppState;
use trailmark_store::Query;

use super::{each, is_readable, log_read, parse_day, query, render, work};
use crate::error::UiError;
use crate::viewer::{Nav, Viewer};

#[derive(Debug, Default, Deserialize)]
pub struct MetricsQuery {
    #[serde(default)]
    pub env: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub bucket: String,
}

#[derive(Template)]
#[template(path = "metrics.html")]
struct MetricsPage {
    nav: Nav,
    q: MetricsQuery,
    m: Metrics,
    charts: Vec<Chart>,
    records: usize,
    /// The earliest record time read.
    since: String,
}

impl MetricsPage {
    fn human(&self, s: &Option<trailmark_metrics::Seconds>) -> String {
        s.map_or_else(|| "–".to_owned(), |s| s.human())
    }
    fn pct(&self, r: &Option<trailmark_metrics::Ratio>) -> String {
        r.as_ref().map_or_else(
            || "–".to_owned(),
            |r| format!("{} % ({} of {})", r.percent, r.numerator, r.denominator),
        )
    }
}

fn day(field: &str, s: &str, default: jiff::Timestamp) -> Result<jiff::Timestamp, UiError> {
    Ok(parse_day(field, s)?.unwrap_or(default))
}

/// How far before the window records are read (commits behind a deployment, requests behind
/// an approval).
const LOOKBACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 180);

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let readable = viewer.scopes(Permission::ReadEvidence)?;
    let mut q: MetricsQuery = query(raw)?;
    let now = jiff::Timestamp::now();
    let today = now
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let to = day(
        "to",
        &q.to,
        today
            .checked_add(jiff::SignedDuration::from_hours(24))
            .unwrap_or(now),
    )?;
    let from = day(
        "from",
        &q.from,
        to.checked_sub(jiff::SignedDuration::from_hours(24 * 7 * 12))
            .unwrap_or(to),
    )?;
    if q.env.trim().is_empty() {
        q.env = "production".into();
    }
    if q.bucket.trim().is_empty() {
        q.bucket = "week".into();
    }
    let bucket: Bucket = q
        .bucket
        .parse()
        .map_err(|e| UiError::BadRequest(format!("bucket {:?}: {e}", q.bucket)))?;
    let envs = if q.env == "*" {
        EnvFilter::any()
    } else {
        EnvFilter::names(q.env.split(',').map(str::trim).filter(|s| !s.is_empty()))
    };
    let mq = trailmark_metrics::Query::new(envs, Timestamp(from), Timestamp(to), bucket)
        .map_err(|e| UiError::BadRequest(e.to_string()))?;
    let since = from.checked_sub(LOOKBACK).unwrap_or(from);
    log_read(
        &state,
        &viewer,
        "metrics",
        json!({"env": q.env, "from": from.to_string(), "to": to.to_string(), "bucket": q.bucket}),
    )
    .await?;
    let (m, records) = work(&state, move |st| {
        // The readable records from LOOKBACK before the window (the commits, requests and
        // deployments its events refer to) to a month after it (late failure signals). Older
        // commits are not seen: a lead time longer than LOOKBACK is left out, and the page says
        // which records were read.
        let until = Timestamp(
            to.checked_add(jiff::SignedDuration::from_hours(24 * 30))
                .unwrap_or(to),
        );
        let mut records: Vec<Record> = Vec::new();
        let q = Query {
            since: Some(Timestamp(since)),
            until: Some(until),
            limit: 1000,
            ..Query::default()
        };
        each(st, q, |r| {
            if is_readable(st, &readable, &r.record) {
                records.push(r.record);
            }
            Ok(())
        })?;
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
                {
                    if let Some(i) = i.as_str() {
                        map.insert(i.to_owned(), id.to_owned());
                    }
                }
            }
        }
        let mq = mq.with_people(map);
        let store = st.store.clone();
        let blobs = move |d: &trailmark_model::Digest| -> Option<Value> {
            store
                .blob(d)
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice(&b).ok())
        };
        let n = records.len();
        Ok((
            trailmark_metrics::compute_with_blobs(records.iter(), &mq, &blobs),
            n,
        ))
    })
    .await?;
    let charts = trailmark_metrics::svg::charts(&m);
    render(&MetricsPage {
        nav: viewer.nav("metrics"),
        q,
        m,
        charts,
        records,
        since: since.strftime("%Y-%m-%d").to_string(),
    })
}
